#!/usr/bin/env bash
# Runs every test: one debug build, the kill -9 durability test, the browser EventSource test and the web console
# test (headless Chromium, installed when missing; screenshots in ci-output/console), the `rewind tail` restart test,
# the fan-out check, schemathesis against openapi.yaml and the flood of invalid requests against the built binary,
# then the Swift suites (unit tests and in-process servers over real loopback HTTP). The test runner's summary is
# the last output.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/check-format.sh
swift build --build-tests
python3 scripts/durability-test.py --binary .build/debug/rewind --rounds 3
python3 scripts/browser-test.py --binary .build/debug/rewind --restarts 2
python3 scripts/console-test.py --binary .build/debug/rewind --output ci-output/console
python3 scripts/sse-clients-test.py --binary .build/debug/rewind
python3 scripts/disk-full-test.py --binary .build/debug/rewind
python3 scripts/proxy-test.py --binary .build/debug/rewind
python3 scripts/maintenance-test.py --binary .build/debug/rewind
python3 scripts/tail-restart-test.py --binary .build/debug/rewind --restarts 3
python3 scripts/fanout-check.py --binary .build/debug/rewind --subscribers 200 --rate 100 --duration 10 --publishers 16 \
    --slow 2 --window-events 256 --no-rate-check
scripts/schemathesis-run.sh .build/debug/rewind
python3 scripts/flood-test.py --binary .build/debug/rewind --duration 20
python3 scripts/flood-test.py --binary .build/debug/rewind --duration 10 --auth
# One test at a time: several tests bound how soon something happens (a poll, a deadline, a retention window), and
# on a 2-core machine the others running beside them would decide those figures instead.
swift test --skip-build --no-parallel
