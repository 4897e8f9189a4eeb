#!/usr/bin/env bash
# Makes sure the real services the tests start are installed: mosquitto, influxd and the headless
# chromium that drives the web pages (Debian's packages). Installs them when missing and we are
# root; otherwise says what to install.
set -euo pipefail

missing=()
command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || missing+=(mosquitto)
command -v influxd >/dev/null 2>&1 || [ -x /usr/bin/influxd ] || missing+=(influxdb)
[ -x /usr/bin/chromium ] || missing+=(chromium)  # tests/web drive it through Playwright
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} (Debian packages) for the tests ..."
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # policy-rc.d keeps the packages from starting system-wide services we do not use
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    apt-get install -y -qq "${missing[@]}" >/dev/null
    exit 0
fi

echo "The tests start real services that are not installed: ${missing[*]}." >&2
echo "Install them first, e.g.:  sudo apt-get install -y ${missing[*]}" >&2
exit 1
