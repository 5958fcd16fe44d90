#!/usr/bin/env bash
# README command 1: install, build, make the demo model and export it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
/usr/bin/python3 tests/models/make_models.py --out tests/models --only bert_tiny
build/mexport export --strategy auto --config configs/bert.yaml
