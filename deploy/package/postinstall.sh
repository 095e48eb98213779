#!/bin/sh
# bindwatch package, after install or upgrade: deb postinst, rpm %post.
#   deb: $1 = configure, $2 = the version configured before (empty the first
#        time); other actions (abort-upgrade, ...) change nothing here.
#   rpm: $1 = 1 on a first install, 2 or more on an upgrade.
# Creates the user and the directories, enables and starts
# bindwatch-unpin.timer once (an administrator's later disable or mask
# stays), enables the unit on a first install
# and on a reinstall after a removal that disabled it (never starts it: the
# brokers must be configured first), and restarts a running agent on an
# upgrade so the new binary runs. An upgrade leaves enabled or disabled as
# the administrator left it.
set -e

case "$1" in
configure) if [ -z "$2" ]; then first=1; else first=; fi ;;
1) first=1 ;;
[0-9]*) first= ;;
*) exit 0 ;;
esac

# The user, unless it exists already (then it is not ours to delete on purge).
if ! getent passwd bindwatch >/dev/null; then
	if command -v systemd-sysusers >/dev/null; then
		systemd-sysusers bindwatch.conf
	else
		useradd --system --user-group --home-dir /var/lib/bindwatch --no-create-home \
			--shell /usr/sbin/nologin --comment "bindwatch bind auditor" bindwatch
	fi
	mkdir -p /var/lib/bindwatch
	: >/var/lib/bindwatch/.user-created-by-package
fi

# The spool (the unit's StateDirectory) and the bpffs pin directory
# (bindwatch.tmpfiles; systemd recreates it at every boot). Without bpffs
# the agent runs without pins, so a failure here is only reported.
install -d -m 0700 -o bindwatch -g bindwatch /var/lib/bindwatch /var/lib/bindwatch/spool
if command -v systemd-tmpfiles >/dev/null; then
	systemd-tmpfiles --create bindwatch.conf ||
		echo "bindwatch: could not create /sys/fs/bpf/bindwatch (is bpffs mounted?); the agent will run without pins" >&2
fi

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload
fi
if [ -n "$first" ] || [ -e /var/lib/bindwatch/.enabled-before-removal ]; then
	systemctl enable bindwatch.service
	rm -f /var/lib/bindwatch/.enabled-before-removal
	echo "bindwatch: enabled, not started. Set kafka.brokers in /etc/bindwatch/bindwatch.yaml, then: systemctl start bindwatch"
elif [ -d /run/systemd/system ]; then
	# Binds made while it restarts wait in the pinned ring buffer.
	systemctl try-restart bindwatch.service
fi

# The timer that unpins a capture no agent renews (a stopped and disabled
# agent's). Set up once per installation, an upgrade from a package without
# it included; preremove deletes the marker on removal. It never touches a running or
# restarting agent's pins (see bindwatch-unpin.service).
if [ ! -e /var/lib/bindwatch/.unpin-timer-set-up ]; then
	systemctl enable bindwatch-unpin.timer
	if [ -d /run/systemd/system ]; then
		systemctl start bindwatch-unpin.timer
	fi
	: >/var/lib/bindwatch/.unpin-timer-set-up
fi
