"""The wheel, installed: the console commands start and the data files came along.

The wheel is built from a copy of the source tree (no stale ``build/`` of
the working tree can leak into it, nothing is written there), installed with
``--no-deps`` into a venv that sees this interpreter's site-packages (so the
dependencies are found without a network), and every command is run from a
directory outside the source tree, by the venv's absolute paths. A
development machine's editable install of netroom (``pip install -e .``) is
visible through those site-packages too: the test checks the venv's own copy
wins, and says so plainly when it does not.
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, NamedTuple

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Not part of a build: VCS, caches, earlier builds, demo output.
IGNORE = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".benchmarks",
    "demo-data", ".venv", "venv",
)

# (command line after the venv's bin/, a word its help must contain)
HELP = [
    (["netroom-agent", "--help"], "--once"),
    (["netroom-collector", "--help"], "--config"),
    (["netroom", "--help"], "availability"),
    (["netroom", "report", "--help"], "--format"),
    (["netroom", "availability", "--help"], "--date"),
    (["netroom", "isolation", "--help"], "--all"),
    (["netroom", "speedserver", "--help"], "--listen"),
    (["netroom", "dashboards", "push", "--help"], "--url"),
]


class Installed(NamedTuple):
    venv: Path
    bin: Path
    python: Path
    cwd: Path  # outside the source tree
    env: Dict[str, str]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PYTHONUSERBASE",
                        "VIRTUAL_ENV", "PIP_USER", "PIP_TARGET", "PIP_PREFIX"}}
    # Offline: everything the build and the install need is already here.
    env.update(PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PIP_NO_INPUT="1",
               PYTHONNOUSERSITE="1", PIP_ROOT_USER_ACTION="ignore")
    return env


def _run(cmd: List[str], cwd: Path, env: dict[str, str], timeout: float = 120
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def _ok(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 0, (
        f"{' '.join(map(str, p.args))} exited {p.returncode}\n"
        f"--- stdout\n{p.stdout[-3000:]}\n--- stderr\n{p.stderr[-3000:]}")
    return p.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    # --no-build-isolation: the build requirements must be in this interpreter.
    for mod in ("setuptools", "wheel"):
        if importlib.util.find_spec(mod) is None:
            pytest.fail(f"{mod} is not installed (pyproject.toml's build requirement, "
                        "in the dev extra): run scripts/setup.sh")
    tmp = tmp_path_factory.mktemp("packaging")
    env = _env()
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    dist = tmp / "dist"
    _ok(_run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
              "-w", str(dist), str(src)], tmp, env))
    wheels = sorted(dist.glob("netroom-*.whl"))
    assert len(wheels) == 1, f"expected one netroom wheel in {dist}: {wheels}"

    venv = tmp / "venv"
    # The venv's python imports pip from the system site-packages, so no ensurepip.
    _ok(_run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip",
              str(venv)], tmp, env))
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    # --ignore-installed: an editable netroom in the system site-packages is
    # "already satisfied" otherwise, and nothing would land in the venv.
    _ok(_run([str(python), "-m", "pip", "install", "-q", "--no-deps", "--ignore-installed",
              str(wheels[0])], tmp, env))
    cwd = tmp / "elsewhere"
    cwd.mkdir()
    return Installed(venv, bindir, python, cwd, env)


def _py(inst: Installed, code: str) -> str:
    return _ok(_run([str(inst.python), "-c", code], inst.cwd, inst.env, timeout=60))


def test_packages_import_from_the_venv_not_the_source_tree(installed: Installed) -> None:
    out = _py(installed, "import agent, collector, dashboards, netroom\n"
                         "for m in (agent, collector, dashboards, netroom): print(m.__file__)")
    venv = installed.venv.resolve()
    for line in out.split():
        path = Path(line).resolve()
        assert venv in path.parents, (
            f"{line} is not the venv's copy: the installed wheel is shadowed (by an "
            f"editable install's .pth in the system site-packages that --system-site-packages "
            f"pulls in, or by PYTHONPATH); the test would check {ROOT}, not the wheel")
        assert ROOT not in path.parents


@pytest.mark.parametrize(("argv", "word"), HELP, ids=[" ".join(a[:-1]) for a, _ in HELP])
def test_console_command_help(installed: Installed, argv: list[str], word: str) -> None:
    script = installed.bin / argv[0]
    assert script.is_file(), f"{argv[0]} was not installed into {installed.bin}"
    first = script.read_text(encoding="utf-8", errors="replace").splitlines()[0]
    assert str(installed.venv) in first, f"{script} does not run the venv's python: {first}"
    out = _ok(_run([str(script), *argv[1:]], installed.cwd, installed.env, timeout=60))
    assert out.startswith(f"usage: {' '.join(argv[:-1])}"), out[:200]
    assert word in out, f"{' '.join(argv)}: {word!r} not in\n{out}"


def test_version(installed: Installed) -> None:
    import netroom

    out = _ok(_run([str(installed.bin / "netroom"), "--version"], installed.cwd,
                   installed.env, timeout=60))
    assert netroom.__version__ in out


def test_generated_dashboards_are_installed(installed: Installed) -> None:
    out = _py(installed, "from dashboards.build import GENERATED\n"
                         "print(GENERATED)\n"
                         "print(len(list(GENERATED.glob('*.json'))))")
    where, count = out.split()
    assert installed.venv.resolve() in Path(where).resolve().parents
    source = list((ROOT / "dashboards" / "generated").glob("*.json"))
    assert source, "no generated dashboards in the source tree"
    assert int(count) == len(source), (
        f"{where}: {count} dashboards, the source tree has {len(source)}")


def test_report_template_is_installed(installed: Installed) -> None:
    # The same loader collector.report.html uses, so a missing file fails here.
    out = _py(installed, "import collector.report as r, pathlib\n"
                         "from jinja2 import Environment, PackageLoader\n"
                         "t = pathlib.Path(r.__file__).parent / 'templates' / 'report.html'\n"
                         "print(t.is_file())\n"
                         "loader = PackageLoader('collector.report', 'templates')\n"
                         "print(Environment(loader=loader).get_template('report.html').filename)")
    is_file, filename = out.split()
    assert is_file == "True"
    assert installed.venv.resolve() in Path(filename).resolve().parents
