#!/usr/bin/env bash
# One command: install what is missing, then run the local demo (loopback only).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec python3 scripts/demo.py
