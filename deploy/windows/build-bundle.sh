#!/usr/bin/env bash
# Build the offline agent bundle for Windows PCs (a .zip) on a Linux machine
# WITH access to the package index. See deploy/windows/README.md.
#
#   deploy/windows/build-bundle.sh --python-embed python-3.8.10-embed-amd64.zip
#   deploy/windows/build-bundle.sh --arch win32 --python-embed python-3.8.10-embed-win32.zip
#   deploy/windows/build-bundle.sh                # no Python inside: PCs need Python >= 3.8
#
# --arch amd64|win32      wheel architecture (default amd64)
# --python-embed ZIP      the embeddable Python (python.org, "Windows embeddable
#                         package"), unpacked into the bundle as python\; its
#                         version decides the wheels' Python version
# --python-version X.Y    without --python-embed: versions to include (repeatable;
#                         default 3.8 to 3.13)
# --constraint FILE       pip constraints, e.g. deploy/windows/constraints-win7.txt
# --out DIR (default dist/), --python PY (runs pip; default python3)
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="$REPO/dist" PY=python3 ARCH=amd64 EMBED="" CONSTRAINT=()
VERSIONS=()
while [ $# -gt 0 ]; do
    case "$1" in
        --arch) ARCH=$2; shift 2 ;;
        --python-embed) EMBED=$(cd "$(dirname "$2")" && pwd)/$(basename "$2"); shift 2 ;;
        --python-version) VERSIONS+=("$2"); shift 2 ;;
        --constraint) CONSTRAINT=(--constraint "$(cd "$(dirname "$2")" && pwd)/$(basename "$2")"); shift 2 ;;
        --out) OUT=$2; shift 2 ;;
        --python) PY=$2; shift 2 ;;
        -h|--help) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-bundle.sh: error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
case "$ARCH" in amd64) PLATFORM=win_amd64 ;; win32) PLATFORM=win32 ;;
    *) echo "build-bundle.sh: error: --arch: must be amd64 or win32, got '$ARCH'" >&2; exit 2 ;; esac
if [ -n "$EMBED" ]; then
    # python-3.8.10-embed-amd64.zip -> 3.8
    ver=$(basename "$EMBED" | sed -n 's/^python-\([0-9]*\.[0-9]*\)\..*-embed-.*\.zip$/\1/p')
    [ -n "$ver" ] || { echo "build-bundle.sh: error: --python-embed: expected python-X.Y.Z-embed-$ARCH.zip" >&2; exit 2; }
    VERSIONS=("$ver")
fi
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(3.8 3.9 3.10 3.11 3.12 3.13)

VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO/netroom/__init__.py")
NAME="netroom-agent-$VERSION-windows-$ARCH"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STAGE="$WORK/$NAME"
mkdir -p "$STAGE/wheels" "$WORK/src" "$OUT"
OUT=$(cd "$OUT" && pwd)
pip() { "$PY" -m pip --disable-pip-version-check "$@"; }

tar -C "$REPO" --exclude=.git --exclude=build --exclude=dist --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache \
    --exclude=demo-data -cf - . | tar -C "$WORK/src" -xf -
pip wheel --quiet --no-deps -w "$STAGE/wheels" "$WORK/src"
WHEEL=$(ls "$STAGE"/wheels/netroom-*.whl)
for ver in "${VERSIONS[@]}"; do
    echo "==> dependencies for $PLATFORM, CPython $ver"
    pip download --quiet --only-binary=:all: --platform "$PLATFORM" --python-version "$ver" \
        --implementation cp "${CONSTRAINT[@]}" --find-links "$STAGE/wheels" \
        -d "$STAGE/wheels" "$WHEEL" pip
done
if [ -n "$EMBED" ]; then
    "$PY" -m zipfile -e "$EMBED" "$STAGE/python"
fi
crlf() { sed 's/\r\{0,1\}$/\r/' "$1" > "$2"; }  # cmd.exe reads CRLF batch files reliably
crlf "$HERE/install.ps1" "$STAGE/install.ps1"
crlf "$HERE/install.cmd" "$STAGE/install.cmd"
crlf "$HERE/run-agent.cmd.in" "$STAGE/run-agent.cmd.in"
crlf "$HERE/README.md" "$STAGE/README.md"
cp "$HERE/netroom-agent.task.xml" "$REPO/deploy/agent.yaml.in" "$STAGE/"
crlf "$REPO/config.yaml" "$STAGE/config.example.yaml"
echo "$VERSION" > "$STAGE/VERSION"
(cd "$STAGE" && sha256sum wheels/*.whl > SHA256SUMS)
rm -f "$OUT/$NAME.zip"
(cd "$WORK" && "$PY" -m zipfile -c "$OUT/$NAME.zip" "$NAME")
echo "==> $OUT/$NAME.zip ($(du -h "$OUT/$NAME.zip" | cut -f1), $(ls "$STAGE/wheels" | wc -l) wheels)"
