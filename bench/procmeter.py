"""Measuring one process for the benchmarks: its rounds, CPU time and memory.

CPU comes from a cgroup of our own when we may make one (root): it counts
every thread and child, exited ones too, in ns or us. Otherwise from /proc,
whose utime and stime tick in 10 ms: too coarse for rounds of about 1 ms
unless the window is long.
"""
from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable

import psutil

REPO = Path(__file__).resolve().parent.parent
# `python -c CLI_CHILD <netroom args>`: the netroom command, then its peak RSS
# (kB) on stderr's last line. From VmHWM, not ru_maxrss: a child inherits its
# parent's ru_maxrss across fork and keeps it across exec on Linux, so a large
# bench process would be measured instead (reports showed 154 MB for 96).
CLI_CHILD = ("import re, sys\nfrom collector.cli.main import main\nrc = main(sys.argv[1:])\n"
             "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1), "
             "file=sys.stderr)\nsys.exit(rc)\n")

# A command timed as users run it: an installed netroom's modules are
# compiled once (pip does it at install), so a process that imports them
# does not compile them again. A checkout run with PYTHONDONTWRITEBYTECODE
# would compile every module in every timed process; without it the first
# run writes __pycache__ (ignored by git) and the timed ones read it.
INSTALLED_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def peak_rss_mb() -> float:
    """This process's peak RSS, MB (VmHWM; see CLI_CHILD for why not ru_maxrss)."""
    status = Path("/proc/self/status").read_text()
    return int(status.split("VmHWM:", 1)[1].split()[0]) / 1024


class CpuGroup:
    """A cgroup of our own: CPU time of every thread and child, exited ones too.

    /proc's utime and stime come in 10 ms ticks, too coarse for 1 ms rounds;
    a cgroup counts in ns (v1 cpuacct) or us (v2). Needs root; else None.
    """

    ROOTS = ("/sys/fs/cgroup", "/sys/fs/cgroup/unified", "/sys/fs/cgroup/cpuacct")

    def __init__(self, path: str, v2: bool) -> None:
        self.path, self.v2 = path, v2

    @classmethod
    def make(cls, name: str) -> CpuGroup | None:
        for root in cls.ROOTS:
            v2 = os.path.exists(os.path.join(root, "cgroup.controllers"))
            if not v2 and not os.path.exists(os.path.join(root, "cpuacct.usage")):
                continue
            path = os.path.join(root, name)
            try:
                os.mkdir(path)
            except OSError:
                continue
            group = cls(path, v2)
            try:
                group.cpu_s()
                return group
            except (OSError, ValueError):
                group.remove()
        return None

    def add(self, pid: int) -> None:
        with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
            f.write(str(pid))

    def cpu_s(self) -> float:
        if self.v2:
            text = Path(self.path, "cpu.stat").read_text()
            return int(text.split("usage_usec", 1)[1].split()[0]) / 1e6
        return int(Path(self.path, "cpuacct.usage").read_text()) / 1e9

    def remove(self) -> None:
        for _ in range(50):  # the kernel lets go of exited tasks a moment later
            try:
                os.rmdir(self.path)
                return
            except FileNotFoundError:
                return
            except OSError:
                time.sleep(0.1)


class Subject:
    """One process under measurement; ``count()`` gives its completed rounds."""

    def __init__(self, name: str, argv: list[str], needle: bytes | None = None,
                 per_round: bool = True, env: dict[str, str] | None = None) -> None:
        self.name, self.argv, self.needle, self.per_round = name, argv, needle, per_round
        self.env = env
        self.count: Callable[[], int] = lambda: self._lines
        self._lines = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.ps: psutil.Process | None = None
        self.group: CpuGroup | None = None

    def start(self, log: Path) -> None:
        with open(log, "ab") as err:
            self.proc = subprocess.Popen(
                self.argv, cwd=REPO, env=self.env, stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE if self.needle else subprocess.DEVNULL,
                stderr=err, start_new_session=True)
        self.ps = psutil.Process(self.proc.pid)
        self.group = CpuGroup.make(f"netroom-bench-{os.getpid()}-{self.proc.pid}")
        if self.group is not None:
            try:
                self.group.add(self.proc.pid)  # before its first round; children inherit
            except OSError:
                self.group.remove()
                self.group = None
        if self.needle:
            threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        for line in self.proc.stdout:
            if self.needle and self.needle in line:
                self._lines += 1

    def tree(self) -> list[psutil.Process]:
        assert self.ps is not None
        return [self.ps, *self.ps.children(recursive=True)]

    def cpu_s(self) -> float:
        """CPU seconds (user + system) of the process, its threads and children."""
        return self.group.cpu_s() if self.group is not None else self.ticks_s()

    def ticks_s(self) -> float:
        """The same from /proc (10 ms ticks; children only once reaped)."""
        assert self.ps is not None
        t = self.ps.cpu_times()
        total = t.user + t.system + t.children_user + t.children_system
        for child in self.tree()[1:]:
            with contextlib.suppress(psutil.Error):
                c = child.cpu_times()
                total += c.user + c.system
        return total

    def memory_mb(self) -> tuple[float, float]:
        """(RSS, USS) in MB (10^6 bytes) of the process tree."""
        rss = uss = 0
        for p in self.tree():
            with contextlib.suppress(psutil.Error):
                m = p.memory_full_info()
                rss, uss = rss + m.rss, uss + m.uss
        return rss / 1e6, uss / 1e6

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)  # our own session (start_new_session)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        if self.group is not None:
            self.group.remove()
