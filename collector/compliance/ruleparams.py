"""Reading a ``rules`` mapping (top-level or a site's): each rule's parameters
checked against its DEFAULTS (type) and LIMITS (range), plus ``enabled`` and
``waived``; one ConfigError line per problem."""
from __future__ import annotations

from types import ModuleType
from typing import Any, Mapping

from netroom.settings import ConfigError, Section


def read_rules(s: Section, known: Mapping[str, ModuleType],
               other: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """The configured parameters per rule name (defaults not filled in).

    ``known``: the rule modules by NAME; ``other``: further keys the caller
    reads itself from ``s`` (the global ``freshness_days``...), before this.
    """
    for name in s.data:
        if name not in known and name not in other:
            raise ConfigError(f"{s.key(str(name))}: unknown rule "
                              f"(known: {', '.join(sorted(known))})")
    out = {}
    for name, rule in known.items():
        if name in s.data:
            out[name] = read_params(s.sub(name), rule)
    s.done()
    return out


def read_params(s: Section, rule: ModuleType) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "enabled" in s.data:
        out["enabled"] = s.flag("enabled", True)
    if "waived" in s.data:
        out["waived"] = s.text("waived")
    limits = getattr(rule, "LIMITS", {})
    for name, default in rule.DEFAULTS.items():
        if name not in s.data:
            continue
        if isinstance(default, bool):
            out[name] = s.flag(name, default)
        elif isinstance(default, (int, float)):
            value = (s.integer(name, None) if isinstance(default, int)
                     else s.number(name, None))
            lo, hi = limits.get(name, (0, None))
            if (lo is not None and value < lo) or (hi is not None and value > hi):
                span = f">= {lo}" if hi is None else f"<= {hi}" if lo is None else \
                    f"between {lo} and {hi}"
                raise ConfigError(f"{s.key(name)}: must be {span}, got {value!r}")
            out[name] = value
        else:
            out[name] = s.text(name)
    s.done()
    return out
