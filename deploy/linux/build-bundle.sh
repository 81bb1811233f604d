#!/usr/bin/env bash
# Build the offline agent bundle for Linux PCs: a tarball with every wheel the
# agent needs (netroom, psutil, paho-mqtt, PyYAML, speedtest-cli, and pip to
# install them) for the given platforms and Python versions, plus install.sh.
# Run it on a machine WITH access to the package index; the PCs need none.
#
#   deploy/linux/build-bundle.sh                       # the default targets below
#   deploy/linux/build-bundle.sh --current-only        # this machine only (a quick test)
#   deploy/linux/build-bundle.sh --platform manylinux2014_aarch64 --python-version 3.8
#   deploy/linux/build-bundle.sh --find-links ~/loongarch-wheels   # add wheels built elsewhere
#
# Default targets: manylinux2014 (glibc >= 2.17) on x86_64 and aarch64
# (Phytium, Kunpeng), CPython 3.8 to 3.13: Kylin V10 (3.8), UOS 20 (3.7 is
# too old: see docs/operations.md), openKylin, Debian/Ubuntu. LoongArch and
# MIPS have no wheels on PyPI: build psutil and PyYAML on one such PC
# (`pip wheel psutil PyYAML -w DIR`, needs gcc and python3-dev) and pass DIR
# with --find-links.
# Options: --out DIR (default dist/), --python PY (runs pip; default python3),
# --no-index (use only --find-links dirs: an air-gapped mirror), --update-key
# FILE (a release public key, `netroom release keygen`'s release.pub: every
# PC installed from the bundle trusts it for self-updates; repeatable).
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
OUT="$REPO/dist"
PY=python3
PLATFORMS=() VERSIONS=() LINKS=() CURRENT=0 NOINDEX=0 KEYS=()

while [ $# -gt 0 ]; do
    case "$1" in
        --out) OUT=$2; shift 2 ;;
        --python) PY=$2; shift 2 ;;
        --platform) PLATFORMS+=("$2"); shift 2 ;;
        --python-version) VERSIONS+=("$2"); shift 2 ;;
        --find-links) LINKS+=(--find-links "$(cd "$2" && pwd)"); shift 2 ;;
        --no-index) NOINDEX=1; shift ;;
        --update-key) [ -f "$2" ] || { echo "build-bundle.sh: error: --update-key: no such file '$2'" >&2; exit 2; }
            KEYS+=("$2"); shift 2 ;;
        --current-only) CURRENT=1; shift ;;
        -h|--help) sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "build-bundle.sh: error: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
done
[ ${#PLATFORMS[@]} -gt 0 ] || PLATFORMS=(manylinux2014_x86_64 manylinux2014_aarch64)
[ ${#VERSIONS[@]} -gt 0 ] || VERSIONS=(3.8 3.9 3.10 3.11 3.12 3.13)
INDEX=()
if [ "$NOINDEX" -eq 1 ]; then INDEX=(--no-index); fi

VERSION=$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' "$REPO/netroom/__init__.py")
[ -n "$VERSION" ] || { echo "build-bundle.sh: error: no __version__ in netroom/__init__.py" >&2; exit 1; }
NAME="netroom-agent-$VERSION-linux"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
STAGE="$WORK/$NAME"
mkdir -p "$STAGE/wheels" "$WORK/src" "$OUT"
OUT=$(cd "$OUT" && pwd)
pip() { "$PY" -m pip --disable-pip-version-check "$@"; }

echo "==> netroom $VERSION: building the wheel"
# Build from a clean copy: no stale build/ or egg-info from the work tree.
tar -C "$REPO" --exclude=.git --exclude=build --exclude=dist --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=.mypy_cache --exclude=.ruff_cache --exclude=.pytest_cache \
    --exclude=demo-data -cf - . | tar -C "$WORK/src" -xf -
pip wheel --quiet --no-deps "${INDEX[@]}" "${LINKS[@]}" -w "$STAGE/wheels" "$WORK/src"
WHEEL=$(ls "$STAGE"/wheels/netroom-*.whl)

if [ "$CURRENT" -eq 1 ]; then
    echo "==> dependencies for this machine ($(uname -m), $("$PY" -V))"
    pip download --quiet --only-binary=:all: "${INDEX[@]}" "${LINKS[@]}" \
        --find-links "$STAGE/wheels" -d "$STAGE/wheels" "$WHEEL" pip
else
    for plat in "${PLATFORMS[@]}"; do
        for ver in "${VERSIONS[@]}"; do
            echo "==> dependencies for $plat, CPython $ver"
            pip download --quiet --only-binary=:all: --platform "$plat" --python-version "$ver" \
                --implementation cp "${INDEX[@]}" "${LINKS[@]}" --find-links "$STAGE/wheels" \
                -d "$STAGE/wheels" "$WHEEL" pip
        done
    done
fi
# Wheels given with --find-links that pip did not pick (another arch) still belong in.
for ((i = 1; i < ${#LINKS[@]}; i += 2)); do cp -n "${LINKS[$i]}"/*.whl "$STAGE/wheels/" 2>/dev/null || true; done

echo "$VERSION" > "$STAGE/VERSION"
install -m 0755 "$HERE/install.sh" "$HERE/netroom-agent.init" "$HERE/netroom-agent-launch" "$STAGE/"
install -m 0644 "$REPO/deploy/agent.yaml.in" "$REPO/deploy/systemd/netroom-agent.service" \
    "$REPO/docs/operations.md" "$STAGE/"
install -m 0644 "$REPO/config.yaml" "$STAGE/config.example.yaml"
install -m 0644 "$HERE/README.bundle.txt" "$STAGE/README.txt"
if [ ${#KEYS[@]} -gt 0 ]; then cat "${KEYS[@]}" > "$STAGE/update-keys"; fi
(cd "$STAGE" && sha256sum wheels/*.whl > SHA256SUMS)
tar -C "$WORK" -czf "$OUT/$NAME.tar.gz" "$NAME"
echo "==> $OUT/$NAME.tar.gz ($(du -h "$OUT/$NAME.tar.gz" | cut -f1), $(ls "$STAGE/wheels" | wc -l) wheels)"
