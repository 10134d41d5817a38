#!/usr/bin/env bash
# Fails if any Swift source is not formatted per .swift-format (fix with
#   swift format -i -r Sources Tests Plugins Package.swift)
# or if a relative link in the Markdown is dead (scripts/check-links.py).
set -euo pipefail
cd "$(dirname "$0")/.."
swift format lint --strict -r Sources Tests Plugins Package.swift
python3 scripts/check-links.py
