#!/usr/bin/env bash
# Runs every test: one debug build, the kill -9 durability test, the browser EventSource test (headless
# Chromium, installed when missing) and the `rewind tail` restart test against the built binary, then the Swift suites
# (unit tests and in-process servers over real loopback HTTP). The test runner's summary is the last output.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/check-format.sh
swift build --build-tests
python3 scripts/durability-test.py --binary .build/debug/rewind --rounds 3
python3 scripts/browser-test.py --binary .build/debug/rewind --restarts 2
python3 scripts/tail-restart-test.py --binary .build/debug/rewind --restarts 3
python3 scripts/fanout-check.py --binary .build/debug/rewind --subscribers 200 --rate 100 --duration 10 --publishers 16 \
    --slow 2 --window-events 256 --no-rate-check
swift test --skip-build
