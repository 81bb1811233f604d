#!/usr/bin/env bash
# Full check: setup, then lint, types and tests. All three always run, in that
# order; the exit code is the first failing step's (0 if all pass).
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup.sh || { echo "test.sh: setup failed" >&2; exit 1; }

# Same interpreter choice as setup.sh: python3 from PATH if >= 3.9, else Debian's.
PY=python3
if ! python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
    PY=/usr/bin/python3
fi

first_rc=0
step() {
    local name=$1; shift
    echo "==> $name: $*"
    "$@"
    local rc=$?
    if [ "$name" = tests ] && [ "$rc" -eq 5 ]; then
        echo "test.sh: pytest collected no tests (exit 5): failing" >&2
    fi
    if [ "$rc" -ne 0 ]; then
        echo "test.sh: $name failed (exit $rc)" >&2
        if [ "$first_rc" -eq 0 ]; then first_rc=$rc; fi
    fi
}

step lint "$PY" -m ruff check .
step types "$PY" -m mypy
step tests "$PY" -m pytest -q

if [ "$first_rc" -eq 0 ]; then echo "==> all checks passed"; fi
exit "$first_rc"
