#!/usr/bin/env bash
# Makes the base image busybox:latest offline from Debian's busybox-static and imports it with
# `pybuild import`, like the official image: /bin/busybox, one symlink per applet, a minimal
# /etc/passwd and /etc/group, CMD ["sh"].  Usage: scripts/make-busybox.sh [PYBUILD] [--root DIR]
set -euo pipefail
PYBUILD=${1:-.venv/bin/pybuild}
shift || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,root,tmp,var/www,home}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
cat > "$root/etc/passwd" <<'PASSWD'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
bin:x:2:2:bin:/bin:/bin/false
sys:x:3:3:sys:/dev:/bin/false
www-data:x:33:33:www-data:/var/www:/bin/false
nobody:x:65534:65534:nobody:/home:/bin/false
PASSWD
cat > "$root/etc/group" <<'GROUP'
root:x:0:
daemon:x:1:
bin:x:2:
sys:x:3:
www-data:x:33:
nogroup:x:65534:
GROUP
tar --sort=name --mtime=@1700000000 --owner=0 --group=0 --numeric-owner -C "$root" -cf "$work/rootfs.tar" .
# PYBUILD may be a command with arguments ("python -m builder"): split it on purpose.
# shellcheck disable=SC2086
$PYBUILD import "$@" --change 'CMD ["sh"]' "$work/rootfs.tar" busybox:latest
