#!/bin/sh
# edgepipe's install script: creates the service user and gives it what it
# needs. The .deb and .rpm run it before unpacking (so that files owned by
# group edgepipe get that group) and after; a manual install runs it by hand
# (see README.md). Safe to run any number of times; it never edits the
# configuration's content.
set -e

if ! getent group edgepipe >/dev/null; then
	groupadd --system edgepipe
fi
if ! getent passwd edgepipe >/dev/null; then
	useradd --system --gid edgepipe --home-dir /var/lib/edgepipe --no-create-home \
		--shell /usr/sbin/nologin --comment "edgepipe gateway" edgepipe
fi
# Serial ports (ttyS, ttyUSB, ttyACM) belong to group dialout.
if getent group dialout >/dev/null; then
	usermod -a -G dialout edgepipe
fi

# Queues and plugin state: the only place the service writes.
install -d -o edgepipe -g edgepipe -m 0750 /var/lib/edgepipe

# The configuration may hold secrets: readable by the service, not by others.
if [ -d /etc/edgepipe ]; then
	chown root:edgepipe /etc/edgepipe
	chmod 0750 /etc/edgepipe
	if [ -f /etc/edgepipe/edgepipe.toml ]; then
		chown root:edgepipe /etc/edgepipe/edgepipe.toml
		chmod 0640 /etc/edgepipe/edgepipe.toml
	fi
fi

if [ -d /run/systemd/system ]; then
	systemctl daemon-reload || true
fi
