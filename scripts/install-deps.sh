#!/usr/bin/env bash
# Installs the Debian packages the tests need: SQLite's headers and shell, Python with venv (PyPI clients,
# schemathesis), Chromium (a real EventSource), nginx and Caddy (proxies in front), PostgreSQL 15 (the shared log's
# backend; the tests run their own cluster, never the system service), Prometheus, systemd and util-linux (unshare).
#
#   scripts/install-deps.sh           install the ones missing (what scripts/test.sh does first)
#   scripts/install-deps.sh --all     apt-get install all of them every time (what .ci/run does)
#
# Needs root to install; without it, a missing package stops the run with the apt-get line to run.
set -euo pipefail
packages=(libsqlite3-dev sqlite3 python3 python3-venv curl openssl chromium nginx caddy postgresql prometheus
    systemd util-linux mount)
if [[ "${1:-}" == --all ]]; then
    missing=("${packages[@]}")
else
    missing=()
    for package in "${packages[@]}"; do
        dpkg-query --show --showformat='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
            missing+=("$package")
    done
fi
[[ ${#missing[@]} -gt 0 ]] || exit 0
if [[ $(id -u) -ne 0 ]]; then
    echo "$0: missing Debian packages; run as root: apt-get install -y ${missing[*]}" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq || echo "apt-get update failed; using the package lists already on the machine"
apt-get install -y -qq "${missing[@]}" >/dev/null
