#!/usr/bin/env bash
# Checks deploy/rewind.service with `systemd-analyze verify`: a copy whose ExecStart names the built binary (verify
# needs it to exist), everything else as shipped. Also checks that the hardening and reload lines are there.
#
# Usage: scripts/systemd-test.sh [BINARY]      (default .build/debug/rewind)
set -euo pipefail
cd "$(dirname "$0")/.."
binary=$(realpath "${1:-.build/debug/rewind}")
unit=deploy/rewind.service
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
sed "s|^ExecStart=/usr/local/bin/rewind |ExecStart=$binary |" "$unit" > "$work/rewind.service"
grep -q "^ExecStart=$binary serve" "$work/rewind.service"
for line in DynamicUser=yes StateDirectory=rewind ProtectSystem=strict NoNewPrivileges=yes 'ExecReload=/bin/kill -HUP $MAINPID'; do
    grep -qxF "$line" "$unit" || { echo "systemd test FAILED: $unit lacks '$line'"; exit 1; }
done
nofile=$(sed -n 's/^LimitNOFILE=//p' "$unit")
if [ -z "$nofile" ] || [ "$nofile" -lt 65536 ]; then
    echo "systemd test FAILED: LimitNOFILE '$nofile' is below 65536"
    exit 1
fi
if ! output=$(systemd-analyze verify "$work/rewind.service" 2>&1); then
    echo "systemd test FAILED: systemd-analyze verify:"
    echo "$output"
    exit 1
fi
# verify exits 0 on some warnings; any line about this unit is a finding.
if grep -F "rewind.service" <<< "$output"; then
    echo "systemd test FAILED: systemd-analyze verify reported the lines above"
    exit 1
fi
echo "systemd test passed: systemd-analyze verify found nothing in $unit"
