#!/bin/sh
# bindwatch package, before removal: deb prerm, rpm %preun.
#   deb: $1 = remove on removal; upgrade, deconfigure and failed-upgrade
#        change nothing here.
#   rpm: $1 = 0 on removal, 1 or more on an upgrade.
# On removal only: stop and disable the unit, and remove the pins, which
# would otherwise keep the BPF programs capturing into a ring buffer nobody
# reads. On an upgrade the agent keeps running, and the pins with it, so no
# bind is missed; the new package's postinstall restarts it.
set -e

case "$1" in
remove | 0) ;;
*) exit 0 ;;
esac

if [ -d /run/systemd/system ]; then
	systemctl stop bindwatch-unpin.timer bindwatch-unpin.service bindwatch.service || true
fi
# Remembered for a reinstall before a purge (dpkg -r, then dpkg -i), which
# dpkg tells postinstall apart from a first install: enabled it comes back.
if systemctl --quiet is-enabled bindwatch.service 2>/dev/null; then
	mkdir -p /var/lib/bindwatch
	: >/var/lib/bindwatch/.enabled-before-removal
fi
systemctl disable bindwatch.service || true
systemctl disable bindwatch-unpin.timer || true
# A reinstall sets the timer up again, as a first install does.
rm -f /var/lib/bindwatch/.unpin-timer-set-up

# The configuration names the pin directory; one that no longer loads must
# not make the package impossible to remove, hence the default after it.
if ! /usr/bin/bindwatch unpin --config /etc/bindwatch/bindwatch.yaml; then
	/usr/bin/bindwatch unpin --pin-dir /sys/fs/bpf/bindwatch ||
		echo "bindwatch: could not remove the pins; run bindwatch unpin --pin-dir DIR" >&2
fi
