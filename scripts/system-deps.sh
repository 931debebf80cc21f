#!/usr/bin/env bash
# Debian packages seqhub's test suite needs, installed only when missing (CI and a newcomer's machine run as root).
#   rabbitmq-server: the real broker for integration tests    bcftools: the beacon's oracle
#   prometheus: promtool for rule and metrics checks    chromium: login and consent pages in a real browser
#   wrk: the HTTP load generator of `make bench` (bench/repository.py), a process apart from what it measures
set -euo pipefail
packages=(rabbitmq-server bcftools prometheus chromium wrk)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "missing Debian packages: ${missing[*]} — run: sudo apt-get install -y ${missing[*]}" >&2
  exit 1
fi
echo "installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# in containers without systemd the post-install start is refused by policy-rc.d; we start the broker ourselves
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
