"""Typed reading of one YAML config section, with one-line errors.

Every program (agent, collector, admin CLI) validates the sections it needs
once at start-up with these helpers; an error names the key and the problem,
e.g. ``agent.network: must be one of gov, internet, got 'lan'``.
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml


class ConfigError(ValueError):
    """A config problem; str() is the one line shown to the user."""


_SIZE_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgt]i?b|b|)", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
               "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read the YAML file; an empty file is an empty mapping."""
    try:
        with open(path, encoding="utf-8") as fh:
            # libyaml's loader when PyYAML has it: a bureau's sites tree is
            # thousands of lines, seconds for the pure-Python one.
            data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of sections")
    return data


class Section:
    """Reads keys of one mapping, remembering which were used.

    ``done()`` rejects keys nobody asked for, so a typo is an error rather
    than a silently ignored setting.
    """

    def __init__(self, data: Any, path: str) -> None:
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: must be a mapping")
        self.data: Mapping[str, Any] = data
        self.path = path
        self._seen: set[str] = set()

    def key(self, name: str) -> str:
        return f"{self.path}.{name}" if self.path else name

    def raw(self, name: str, default: Any = None) -> Any:
        self._seen.add(name)
        return self.data.get(name, default)

    def env(self, name: str) -> str | None:
        """Secrets may come from NETROOM_<SECTION>_<KEY> (env wins)."""
        var = "NETROOM_" + self.key(name).upper().replace(".", "_")
        value = os.environ.get(var)
        if value is not None:
            self._seen.add(name)
            return value
        return self.text(name, "") or None

    def sub(self, name: str) -> Section:
        return Section(self.raw(name), self.key(name))

    def text(self, name: str, default: str | None = None) -> str:
        value = self.raw(name, default)
        if value is None:
            raise ConfigError(f"{self.key(name)}: required")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str):
            raise ConfigError(f"{self.key(name)}: must be a string, got {value!r}")
        return value

    def choice(self, name: str, choices: Sequence[str], default: str | None = None) -> str:
        value = self.text(name, default)
        if value not in choices:
            raise ConfigError(
                f"{self.key(name)}: must be one of {', '.join(choices)}, got {value!r}"
            )
        return value

    def flag(self, name: str, default: bool) -> bool:
        value = self.raw(name, default)
        if not isinstance(value, bool):
            raise ConfigError(f"{self.key(name)}: must be true or false, got {value!r}")
        return value

    def number(self, name: str, default: float | None, lo: float | None = None,
            hi: float | None = None) -> float:
        value = self.raw(name, default)
        if value is None:
            raise ConfigError(f"{self.key(name)}: required")
        if isinstance(value, bool) or not isinstance(value, (int, float)) \
                or not math.isfinite(value):
            raise ConfigError(f"{self.key(name)}: must be a number, got {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(f"{self.key(name)}: must be between {lo} and {hi}, got {value!r}")
        return float(value)

    def integer(self, name: str, default: int | None, lo: int | None = None,
            hi: int | None = None) -> int:
        value = self.raw(name, default)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.key(name)}: must be an integer, got {value!r}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ConfigError(f"{self.key(name)}: must be between {lo} and {hi}, got {value!r}")
        return value

    def size(self, name: str, default: int, lo: int = 0, hi: int | None = None) -> int:
        """A size in bytes: an integer, or text like ``512MB``, ``4GiB`` (MB =
        10^6, MiB = 2^20); 0 where ``lo`` allows it means "no bound"."""
        value = self.raw(name, default)
        if isinstance(value, str):
            m = _SIZE_RE.fullmatch(value.strip())
            if m is None:
                raise ConfigError(f"{self.key(name)}: must be a size like 512MB or 4GiB, "
                                  f"got {value!r}")
            value = int(float(m.group(1)) * _SIZE_UNITS[m.group(2).lower()])
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{self.key(name)}: must be a size in bytes, got {value!r}")
        if value < lo or (hi is not None and value > hi):
            raise ConfigError(f"{self.key(name)}: must be between {lo} and {hi} bytes, "
                              f"got {value!r}")
        return value

    def seq(self, name: str) -> list[Any]:
        value = self.raw(name, [])
        if value is None:
            return []
        if not isinstance(value, list):
            raise ConfigError(f"{self.key(name)}: must be a list")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self._seen)
        if unknown:
            raise ConfigError(f"{self.key(unknown[0])}: unknown key")
