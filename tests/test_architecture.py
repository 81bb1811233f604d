"""The import graph: no cycle anywhere, no layer importing upwards.

Every ``import`` counts, wherever it stands: at module level, inside a
function, under ``if TYPE_CHECKING``. ``from pkg import name`` is an edge to
``pkg.name`` when that is a module, else to ``pkg``. The graph is read from
the source with ast, so nothing has to be importable for the check to run.
"""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("netroom", "agent", "collector", "dashboards")

# Each layer may import the layers listed for it (and itself); nothing else
# of the project. Lower layers first. The shared package is the floor.
LAYERS: dict[str, tuple[str, ...]] = {
    "netroom": (),
    "agent": ("netroom",),
    "collector.compliance": ("netroom",),
    "collector.influx": ("netroom",),
    "collector.speedtest": ("netroom",),
    "collector.ingest": ("netroom", "collector.influx"),
    "collector.store": ("netroom", "collector.influx", "collector.compliance"),
    "collector.report": ("netroom", "collector.compliance"),
    # netroom simulate's fleet, messages and publisher: the contract and the rules' names.
    "collector.simulate": ("netroom", "collector.compliance"),
    # Wiring: service, passes, workers, config, __main__.
    "collector": ("netroom", "collector.compliance", "collector.influx", "collector.speedtest",
                  "collector.ingest", "collector.store"),
    # Entry points: may use the wiring (the collector's config) and every layer.
    "collector.cli": ("netroom", "collector", "collector.compliance", "collector.influx",
                      "collector.speedtest", "collector.ingest", "collector.store",
                      "collector.report", "collector.simulate", "dashboards"),
    "dashboards": ("netroom", "collector.compliance"),
}
# Third-party imports allowed in the shared package (the agent installs it).
SHARED_THIRD_PARTY = {"paho", "yaml"}
# netroom.signing's library (4.5 MB imported): only the agent's update process,
# its doctor and the collector's release command may import that module.
SIGNING_ONLY = {"netroom.signing": {"ecdsa"}}
SIGNING_IMPORTERS = {"agent.update.__main__", "agent.doctor", "collector.cli.release"}


def modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Project modules ``name`` imports; ``known`` are all project modules."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    is_pkg = path.name == "__init__.py"
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                here = name.split(".") if is_pkg else name.split(".")[:-1]
                here = here[: len(here) - (node.level - 1)]
                base = ".".join([*here, base] if base else here)
            for a in node.names:
                sub = f"{base}.{a.name}"
                out.add(sub if sub in known else base)
    return {m for m in out if m.split(".")[0] in PACKAGES}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {name: imports(name, path, known) & known for name, path in mods.items()}


def layer_of(module: str) -> str:
    best = ""
    for layer in LAYERS:
        if (module == layer or module.startswith(layer + ".")) and len(layer) > len(best):
            best = layer
    assert best, f"{module} belongs to no layer: add it to LAYERS"
    return best


def cycles(g: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1 or v in g.get(v, ()):
                out.append(sorted(comp))

    for v in sorted(g):
        if v not in index:
            visit(v)
    return out


def test_graph_is_read() -> None:
    g = graph()
    # A few edges that must exist, so an empty graph cannot pass.
    assert "netroom.protocol" in g["collector.ingest.points"]
    assert "collector.compliance.rules.base" in g["collector.compliance.rules.gov_isolation"]
    assert "agent.collectors.metrics" in g["agent.collectors"]


def test_no_import_cycles() -> None:
    assert cycles(graph()) == []


def test_cycle_detector_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_upward_imports() -> None:
    bad = []
    for module, deps in graph().items():
        mine = layer_of(module)
        for dep in deps:
            theirs = layer_of(dep)
            if theirs != mine and theirs not in LAYERS[mine]:
                bad.append(f"{module} -> {dep} ({mine} may not import {theirs})")
    assert bad == []


def test_collector_never_imports_the_agent() -> None:
    g = graph()
    bad = [f"{m} -> {d}" for m, deps in g.items() if m.startswith(("collector", "dashboards"))
           for d in deps if d.startswith("agent")]
    assert bad == []


def test_shared_package_imports_only_stdlib_paho_yaml() -> None:
    import sys

    stdlib = set(sys.stdlib_module_names)
    bad = []
    for name, path in modules().items():
        if not name.startswith("netroom"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            tops = []
            if isinstance(node, ast.Import):
                tops = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                tops = [node.module.split(".")[0]]
            bad += [f"{name}: {t}" for t in tops
                    if t not in stdlib and t not in SHARED_THIRD_PARTY and t != "netroom"
                    and t not in SIGNING_ONLY.get(name, ())]
    assert bad == []


def test_only_the_update_process_and_the_release_command_import_signing() -> None:
    g = graph()
    assert {m for m, deps in g.items() if "netroom.signing" in deps} <= SIGNING_IMPORTERS
