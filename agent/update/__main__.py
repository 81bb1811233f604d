"""``python -m agent.update``: fetch, check and stage one agent release.

Run by the agent (agent.update.job) in a child process. Exit 0 with one line
on stdout when the new version is staged: installed beside the running one,
``<prefix>/venv`` switched to it and its trial written (the agent then
restarts through the launcher); exit 1 with one line on stderr naming the
cause, the running install untouched; exit 2 for bad arguments.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys

from agent.update import fetch, files, unpack
from netroom import release, signing

# Room to unpack a bundle and build a venv from it, beyond the bundle itself.
SPARE_BYTES = 200 << 20
INSTALL_TIMEOUT_S = 1200


class UpdateError(Exception):
    """Why the release could not be staged (one line)."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m agent.update", description=__doc__)
    p.add_argument("--prefix", required=True, help="the install's prefix (/opt/netroom)")
    p.add_argument("--url", required=True, help="where releases are served")
    p.add_argument("--version", required=True, help="the release to stage")
    p.add_argument("--key", action="append", required=True, help="a trusted public key")
    p.add_argument("--config", required=True, help="the agent's config (the new one's test)")
    p.add_argument("--deadline", type=float, default=600.0,
                   help="s the new version has to report before it is rolled back")
    return p.parse_args(argv)


def stage(args: argparse.Namespace) -> str:
    """Stage the release; the line to print. Raises UpdateError."""
    base = f"{args.url.rstrip('/')}/{args.version}"
    work = os.path.join(files.update_dir(args.prefix), files.WORK)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    try:
        data = fetch.get(f"{base}/{release.MANIFEST}", release.MAX_MANIFEST_BYTES)
        sig = fetch.get(f"{base}/{release.SIGNATURE}", 1024)
        manifest = signing.verify(data, sig, args.key)
        if manifest.version != args.version:
            raise UpdateError(f"{base}/{release.MANIFEST} is release {manifest.version}, "
                              f"not {args.version}")
        bundle = manifest.files.get("linux")
        if bundle is None:
            raise UpdateError(f"release {args.version} has no Linux bundle")
        free = shutil.disk_usage(args.prefix).free
        if free < 2 * bundle.size + SPARE_BYTES:
            raise UpdateError(f"{args.prefix}: {free >> 20} MB free, the update needs "
                              f"{(2 * bundle.size + SPARE_BYTES) >> 20} MB")
        archive = os.path.join(work, bundle.name)
        fetch.download(f"{base}/{bundle.name}", archive, bundle.size, bundle.sha256)
        unpack.untar(archive, os.path.join(work, "x"))
        return install(os.path.join(work, "x"), args)
    except (release.ReleaseError, fetch.FetchError, unpack.UnpackError) as exc:
        raise UpdateError(str(exc)) from None
    except OSError as exc:
        raise UpdateError(f"{type(exc).__name__}: {exc}") from None
    finally:
        shutil.rmtree(work, ignore_errors=True)


def install(unpacked: str, args: argparse.Namespace) -> str:
    """Run the bundle's own ``install.sh --update``: it knows its layout."""
    tops = os.listdir(unpacked)
    script = os.path.join(unpacked, tops[0], "install.sh") if len(tops) == 1 else ""
    if not os.path.isfile(script):
        raise UpdateError("the bundle holds no <dir>/install.sh")
    with open(os.path.join(os.path.dirname(script), "VERSION"), encoding="utf-8") as f:
        inside = f.read().strip()
    if inside != args.version:
        raise UpdateError(f"the bundle's VERSION is {inside!r}, not {args.version}")
    env = {**os.environ, "NETROOM_PREFIX": args.prefix}
    # The venv's python links to the interpreter it was made with: the new
    # venv is made with the same one, so the bundle's wheels fit as before.
    cmd = ["bash", script, "--update", "--python", os.path.realpath(sys.executable),
           "--config", args.config, "--trial-deadline", f"{args.deadline:.0f}"]
    try:
        p = subprocess.run(cmd, env=env, capture_output=True, text=True,
                           timeout=INSTALL_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise UpdateError(f"install.sh --update took more than {INSTALL_TIMEOUT_S} s") from None
    if p.returncode != 0:
        last = (p.stderr.strip().splitlines() or [f"exit status {p.returncode}"])[-1]
        raise UpdateError(f"install.sh --update: {last}")
    return (p.stdout.strip().splitlines() or [f"staged {args.version}"])[-1]


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        print(stage(args), flush=True)
    except UpdateError as exc:
        print(f"update to {args.version}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
