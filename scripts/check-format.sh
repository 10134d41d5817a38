#!/usr/bin/env bash
# Fails if any Swift source is not formatted per .swift-format. Fix with:
#   swift format -i -r Sources Tests Plugins Package.swift
set -euo pipefail
cd "$(dirname "$0")/.."
swift format lint --strict -r Sources Tests Plugins Package.swift
