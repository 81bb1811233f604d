#!/usr/bin/env bash
# Set up a Debian 12 machine (as root) to build, test and demo netroom.
# Idempotent: apt runs only when a package is missing; pip re-installs the
# project in editable mode with the collector, grafana and dev extras.
# No services are started (there is no systemd here; tests start their own).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '==> %s\n' "$*"; }

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "setup.sh: run as root (or install sudo)" >&2; exit 1; }
    SUDO="sudo"
fi

# Use python3 from PATH if it is >= 3.9, else Debian's.
PY=""
if command -v python3 >/dev/null && python3 -c 'import sys; sys.exit(sys.version_info < (3, 9))'; then
    PY="$(command -v python3)"
fi

# chromium + fonts-noto-cjk render the HTML report (Chinese) in tests; openssl
# makes the doctor tests' certificates.
PKGS=(mosquitto influxdb chromium fonts-noto-cjk iproute2 openssl)
if [ -z "$PY" ]; then
    PKGS+=(python3 python3-venv python3-pip)
elif [ "$PY" = /usr/bin/python3 ] && ! "$PY" -c 'import ensurepip' 2>/dev/null; then
    # Debian keeps ensurepip (venvs; the bundle tests take pip's wheel from it)
    # in python3-venv.
    PKGS+=(python3-venv)
fi

missing=()
for p in "${PKGS[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
        missing+=("$p")
    fi
done

if [ "${#missing[@]}" -gt 0 ]; then
    say "apt: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    # Package postinst scripts try to start mosquitto/influxdb through
    # invoke-rc.d; policy-rc.d exit 101 forbids that (no init system here).
    made_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee /usr/sbin/policy-rc.d >/dev/null
        $SUDO chmod 755 /usr/sbin/policy-rc.d
        made_policy=1
    fi
    cleanup() { if [ -n "$made_policy" ]; then $SUDO rm -f /usr/sbin/policy-rc.d; fi; }
    trap cleanup EXIT
    $SUDO apt-get update -qq
    $SUDO apt-get install -y -qq --no-install-recommends -o Dpkg::Use-Pty=0 "${missing[@]}" >/dev/null
    cleanup
    trap - EXIT
else
    say "apt: ${PKGS[*]} already installed"
fi

if [ -z "$PY" ]; then
    PY=/usr/bin/python3
fi
for bin in /usr/sbin/mosquitto /usr/bin/influxd; do
    [ -x "$bin" ] || { echo "setup.sh: $bin missing after install" >&2; exit 1; }
done

export PIP_ROOT_USER_ACTION=ignore
PIP_FLAGS=(-q --disable-pip-version-check)
# Debian's own python3 is "externally managed" (PEP 668): allow pip into it.
if [ -e "$("$PY" -c 'import sysconfig; print(sysconfig.get_path("stdlib"))')/EXTERNALLY-MANAGED" ]; then
    PIP_FLAGS+=(--break-system-packages)
fi
say "pip: installing netroom[collector,grafana,dev] into $("$PY" -c 'import sys; print(sys.executable)') ($("$PY" -V))"
"$PY" -m pip install "${PIP_FLAGS[@]}" -e '.[collector,grafana,dev]'
# pyenv only exposes newly installed console scripts (ruff, mypy...) after a rehash.
if command -v pyenv >/dev/null; then pyenv rehash || true; fi
say "setup done"
