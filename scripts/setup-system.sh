#!/usr/bin/env bash
# Installs the Debian packages pybuild and its test suite need. Idempotent and quick when
# everything is present; needs root (or sudo) only when something is missing.
set -euo pipefail
# runc (crun): RUN steps and containers; slirp4netns: their private network; conmon: detached
# containers' monitor; busybox-static: the offline base image; docker-registry, apache2-utils
# (htpasswd): registry tests; skopeo, umoci: interoperability tests; openssh-client: --ssh tests.
PKGS=(python3 python3-venv git runc crun conmon slirp4netns busybox-static docker-registry apache2-utils skopeo umoci openssl pigz openssh-client)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# A pyenv or other non-Debian python3 with a working venv module is fine too.
if python3 -c 'import venv, ensurepip' 2>/dev/null; then
  missing=("${missing[@]/python3-venv}"); missing=("${missing[@]/python3}")
fi
read -r -a missing <<< "${missing[*]:-}"
[ "${#missing[@]}" -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
