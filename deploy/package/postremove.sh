#!/bin/sh
# bindwatch package, after removal: deb postrm, rpm %postun.
#   deb: $1 = remove (files gone, the configuration and the user kept) or
#        purge (everything gone); upgrade and the rest change nothing here.
#   rpm: $1 = 0 on removal, which rpm has no purge for: like purge, but rpm
#        itself keeps an edited configuration as .rpmsave. 1+ on an upgrade.
set -e

case "$1" in
remove) purge= ;;
purge | 0) purge=1 ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
[ -n "$purge" ] || exit 0

# The spool holds events never sent; purging the package means them too.
if [ -e /var/lib/bindwatch/.user-created-by-package ]; then
	userdel bindwatch 2>/dev/null || true
	if getent group bindwatch >/dev/null; then
		groupdel bindwatch 2>/dev/null || true
	fi
fi
rm -rf /var/lib/bindwatch
