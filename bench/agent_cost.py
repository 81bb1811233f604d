"""Agent cost: CPU per round and steady RSS of the netroom agent and its peers.

Method: every subject runs at once, in the same window, at 1 s per round, so
machine noise (other people's tests) hits them alike. After a warm-up, the
CPU time (user + system, of the process and its children) over the window is
divided by the rounds the subject really completed, counted from its output:
metrics messages reaching a real mosquitto (the agent), lines on stdout,
rows in collectd's CSV, our own scrapes of node_exporter. RSS and USS are
sampled every few seconds in the window. Every subject is restarted for each
repeat; figures are medians over the repeats. Loopback only: the broker and
node_exporter listen on 127.0.0.1, Glances runs without its cloud, public-IP,
ports and connections plugins and without the update check.

Subjects: the agent as shipped (MQTT + disk outbox), the agent's collectors
and encoding without transport, `netroom-agent --print`, a bare psutil loop,
two idle import floors (RSS only), collectd, node_exporter and Glances when
installed (see docs/benchmarks.md); a peer that is missing prints
"not installed".

Run: python3 bench/agent_cost.py [--rounds 60] [--repeat 3] [--warmup 10] [--json]
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

import paho.mqtt.client as mqtt
import psutil
import yaml
from paho.mqtt.enums import CallbackAPIVersion

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
from servers import OPENER, Mosquitto, free_port  # noqa: E402

SITE = "bench"
REF = "netroom agent (MQTT)"
TARGET_CPU_MS, TARGET_RSS_MB = 1.5, 26.0  # the project guide's targets
COLLECTD = "/usr/sbin/collectd"
NODE_EXPORTER = "/usr/bin/prometheus-node-exporter"
GLANCES = os.environ.get("GLANCES", "/tmp/glances-venv/bin/glances")
# The collectors, the message envelope and JSON, as the agent has them, minus
# paho and the outbox: what the transport costs is the difference.
NO_TRANSPORT = r"""
import sys, threading
from agent import collectors, protocol
from agent.config import load
from agent.runner import Runner
cfg = load(sys.argv[1])
out = sys.stdout.buffer
def emit(kind, body, ts):
    payload = protocol.envelope(cfg.site, cfg.host, cfg.network, cfg.role, ts)
    payload.update(body)
    out.write(protocol.topic(cfg.site, cfg.host, kind).encode() + b" "
              + protocol.encode(payload) + b"\n")
    out.flush()
Runner(collectors.jobs(cfg), emit).run_forever(threading.Event())
"""
# What a minimal Python sampler of the same facts costs (psutil only).
BARE = r"""
import sys, time, psutil
psutil.cpu_percent(interval=None)
mounts = [p.mountpoint for p in psutil.disk_partitions(all=False)]
while True:
    t = time.monotonic()
    psutil.cpu_percent(interval=None); psutil.virtual_memory(); psutil.swap_memory()
    for m in mounts:
        psutil.disk_usage(m)
    psutil.disk_io_counters(perdisk=True); psutil.net_io_counters(pernic=True); psutil.users()
    sys.stdout.write("sample\n"); sys.stdout.flush()
    time.sleep(max(0.0, 1.0 - (time.monotonic() - t)))
"""
IDLE = "import time\n{imports}\nprint('ready', flush=True)\ntime.sleep(86400)\n"
FLOORS = {
    "floor: python+psutil+paho+yaml+sqlite3":
        "import psutil, yaml, sqlite3, json, logging, threading, paho.mqtt.client",
    "floor: netroom agent imports": "import psutil, agent.__main__, agent.collectors.metrics, "
        "agent.collectors.inventory, agent.collectors.isolation, agent.collectors.probes, "
        "agent.collectors.bandwidth",
}


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
            self.group.add(self.proc.pid)  # before its first round; later children inherit
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
        if self.group is not None:
            return self.group.cpu_s()
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


def agent_config(tmp: Path, host: str, port: int) -> Path:
    path = tmp / f"{host}.yaml"
    path.write_text(yaml.safe_dump({
        "mqtt": {"host": "127.0.0.1", "port": port},
        "agent": {"site": SITE, "host": host, "network": "gov", "role": "room",
                  "interval": 1, "state_dir": str(tmp / f"state-{host}")}}))
    return path


def collectd_config(tmp: Path) -> Path:
    path = tmp / "collectd.conf"
    plugins = "".join(f"LoadPlugin {p}\n" for p in (
        "cpu", "load", "memory", "swap", "df", "disk", "interface", "users", "uptime", "csv"))
    path.write_text(f"""Hostname "bench"
FQDNLookup false
BaseDir "{tmp}"
PIDFile "{tmp}/collectd.pid"
PluginDir "/usr/lib/collectd"
TypesDB "/usr/share/collectd/types.db"
Interval 1
LoadPlugin logfile
<Plugin logfile>
  LogLevel warning
  File "{tmp}/collectd.log"
</Plugin>
{plugins}<Plugin csv>
  DataDir "{tmp}/csv"
</Plugin>
""")
    return path


def csv_rows(folder: Path) -> int:
    return sum(len(f.read_bytes().splitlines()) for f in folder.glob("load-*"))


def scraper(url: str, stop: threading.Event) -> Callable[[], int]:
    """Scrape ``url`` once a second until ``stop``; return the count of good scrapes."""
    done = [0]

    def loop() -> None:
        while not stop.wait(1.0 - time.time() % 1.0):
            with contextlib.suppress(OSError), OPENER.open(url, timeout=5) as r:
                r.read()
                done[0] += 1
    threading.Thread(target=loop, daemon=True).start()
    return lambda: done[0]


def subjects(tmp: Path, mosq: Mosquitto, counts: dict[str, int], run: int,
             stop: threading.Event) -> tuple[list[Subject], dict[str, str]]:
    """The subjects of one repeat, and the peers that are missing (name -> why)."""
    py = sys.executable
    host = f"bench-mqtt-{run}"
    real = Subject(REF, [py, "-m", "agent", "--config", str(agent_config(tmp, host, mosq.port)),
                         "--log-level", "WARNING"])
    real.count = lambda: counts.get(host, 0)
    quiet_cfg = str(agent_config(tmp, f"bench-local-{run}", mosq.port))
    out = [real,
           Subject("netroom collect+encode (no transport)", [py, "-c", NO_TRANSPORT, quiet_cfg],
                   needle=b"/metrics "),
           Subject("netroom-agent --print", [py, "-m", "agent", "--config", quiet_cfg, "--print",
                                             "--log-level", "WARNING"], needle=b'/metrics"'),
           Subject("bare psutil sample", [py, "-c", BARE], needle=b"sample")]
    out += [Subject(name, [py, "-c", IDLE.format(imports=imp)], needle=b"ready", per_round=False)
            for name, imp in FLOORS.items()]
    missing: dict[str, str] = {}
    if os.access(COLLECTD, os.X_OK):
        cd = Subject("collectd 5 (csv)", [COLLECTD, "-f", "-C", str(collectd_config(tmp))])
        cd.count = lambda: csv_rows(tmp / "csv" / "bench" / "load")
        out.append(cd)
    else:
        missing["collectd"] = f"not installed ({COLLECTD})"
    if os.access(NODE_EXPORTER, os.X_OK):
        port = free_port()
        ne = Subject("node_exporter (scraped 1/s)", [NODE_EXPORTER,
                     f"--web.listen-address=127.0.0.1:{port}"])
        ne.count = scraper(f"http://127.0.0.1:{port}/metrics", stop)
        out.append(ne)
    else:
        missing["node_exporter"] = f"not installed ({NODE_EXPORTER})"
    if os.access(GLANCES, os.X_OK):
        conf = tmp / "glances.conf"
        conf.write_text("")  # no user config: defaults only
        base = [GLANCES, "-C", str(conf), "--disable-check-update", "-t", "1",
                "--stdout", "cpu.total"]
        same = "cpu,mem,memswap,load,fs,diskio,network,uptime,processcount"
        env = {**os.environ, "HOME": str(tmp)}  # keeps its log and cache in tmp
        out += [Subject("Glances (netroom's set of plugins)",
                        [*base, "--disable-plugin", "all", "--enable-plugin", same],
                        needle=b"cpu.total", env=env),
                Subject("Glances (defaults, no network plugins)",
                        [*base, "--disable-plugin", "cloud,ip,ports,connections"],
                        needle=b"cpu.total", env=env)]
    else:
        missing["Glances"] = f"not installed ({GLANCES}; set GLANCES=path)"
    return out, missing


def measure(tmp: Path, mosq: Mosquitto, counts: dict[str, int], run: int,
            args: argparse.Namespace) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """One repeat: start all, warm up, measure one window, stop all."""
    stop = threading.Event()
    subs, missing = subjects(tmp, mosq, counts, run, stop)
    res: dict[str, dict[str, Any]] = {}
    logs: dict[str, Path] = {}
    try:
        for s in subs:
            s.start(tmp / f"stderr-{len(logs)}.log")
            logs[s.name] = tmp / f"stderr-{len(logs)}.log"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(s.count() for s in subs):
            time.sleep(0.2)
        time.sleep(args.warmup)
        live = []
        for s in subs:
            assert s.proc is not None
            if s.proc.poll() is not None or not s.count():
                tail = logs[s.name].read_text(errors="replace").strip().splitlines()[-1:]
                res[s.name] = {"error": f"no output; stderr: {' '.join(tail)[:200]}"}
            else:
                live.append(s)
        t0 = {s.name: (s.cpu_s(), s.count()) for s in live}
        mem: dict[str, list[tuple[float, float]]] = {s.name: [] for s in live}
        end = time.monotonic() + args.rounds
        while time.monotonic() < end:
            for s in live:
                with contextlib.suppress(psutil.Error):
                    mem[s.name].append(s.memory_mb())
            time.sleep(min(5.0, max(0.0, end - time.monotonic())))
        for s in live:
            cpu0, n0 = t0[s.name]
            cpu, n = s.cpu_s() - cpu0, s.count() - n0
            rss = statistics.median(m[0] for m in mem[s.name])
            uss = statistics.median(m[1] for m in mem[s.name])
            r: dict[str, Any] = {"rss_mb": round(rss, 1), "uss_mb": round(uss, 1),
                                 "cpu_s": round(cpu, 4), "rounds": n if s.per_round else None,
                                 "cpu_source": "cgroup" if s.group else "proc ticks (10 ms)"}
            if s.per_round:
                r["cpu_ms_per_round"] = round(cpu * 1000 / n, 3) if n else None
            res[s.name] = r
    finally:
        stop.set()
        for s in subs:
            s.stop()
    return res, missing


def subscribe(mosq: Mosquitto, counts: dict[str, int]) -> mqtt.Client:
    """Count metrics messages per host as they reach the broker."""
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="bench-agent-cost")

    def on_message(cl: mqtt.Client, u: Any, m: mqtt.MQTTMessage) -> None:
        host = m.topic.split("/")[3]
        counts[host] = counts.get(host, 0) + 1
    c.on_message = on_message
    c.connect(mosq.host, mosq.port)
    c.subscribe(f"netroom/v1/{SITE}/+/metrics", qos=0)
    c.loop_start()
    return c


def machine() -> dict[str, Any]:
    model = platform.processor()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {"nproc": os.cpu_count(), "cpu": model, "loadavg": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "psutil": psutil.__version__,
            "mem_total_gb": round(psutil.virtual_memory().total / 1e9, 1)}


def summarise(runs: list[dict[str, dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    names = list(dict.fromkeys(n for r in runs for n in r))
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        rows = [r[name] for r in runs if name in r and "error" not in r[name]]
        if not rows:
            out[name] = {"error": next(r[name]["error"] for r in runs if name in r)}
            continue
        s: dict[str, Any] = {"runs": len(rows)}
        for key in ("cpu_ms_per_round", "rss_mb", "uss_mb"):
            vals = [x[key] for x in rows if x.get(key) is not None]
            s[key] = round(statistics.median(vals), 3 if key.startswith("cpu") else 1) if vals else None
            if key.startswith("cpu") and vals:
                s["cpu_ms_per_round_all"] = vals
        out[name] = s
    ref = out.get(REF, {})
    for s in out.values():
        for key, ratio in (("cpu_ms_per_round", "cpu_x_netroom"), ("rss_mb", "rss_x_netroom")):
            if s.get(key) is not None and ref.get(key):
                s[ratio] = round(s[key] / ref[key], 2)
    return out


def table(summary: dict[str, dict[str, Any]], missing: dict[str, str]) -> str:
    def f(v: Any, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)
    lines = [f"{'subject':42} {'ms CPU/round':>12} {'RSS MB':>7} {'USS MB':>7} "
             f"{'CPU x':>6} {'RSS x':>6}"]
    for name, s in summary.items():
        if "error" in s:
            lines.append(f"{name:42} {s['error']}")
            continue
        lines.append(f"{name:42} {f(s.get('cpu_ms_per_round'), '12.3f')} {f(s['rss_mb'], '7.1f')} "
                     f"{f(s['uss_mb'], '7.1f')} {f(s.get('cpu_x_netroom'), '6.2f')} "
                     f"{f(s.get('rss_x_netroom'), '6.2f')}")
    lines += [f"{name:42} {why}" for name, why in missing.items()]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=60, help="measured rounds (s) per repeat")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--warmup", type=float, default=10.0, help="s after the first round")
    ap.add_argument("--json", action="store_true", help="print JSON instead of the table")
    args = ap.parse_args()
    info = {"before": machine()}
    runs: list[dict[str, dict[str, Any]]] = []
    missing: dict[str, str] = {}
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory(prefix="netroom-agent-cost-") as d:
        tmp = Path(d)
        with Mosquitto(tmp / "mq") as mosq:
            sub = subscribe(mosq, counts)
            try:
                for i in range(args.repeat):
                    run_dir = tmp / f"run{i}"
                    run_dir.mkdir()
                    res, missing = measure(run_dir, mosq, counts, i, args)
                    runs.append(res)
                    ref = res.get(REF, {})
                    print(f"run {i}: netroom {ref.get('cpu_ms_per_round')} ms CPU/round, "
                          f"{ref.get('rss_mb')} MB RSS; load {os.getloadavg()[0]:.2f}",
                          file=sys.stderr, flush=True)
            finally:
                sub.disconnect()
                sub.loop_stop()
    info["after"] = machine()
    summary = summarise(runs)
    ref = summary.get(REF, {})
    verdict = {"cpu_ms_per_round_target": TARGET_CPU_MS, "rss_mb_target": TARGET_RSS_MB,
               "cpu_ok": bool(ref.get("cpu_ms_per_round") is not None
                              and ref["cpu_ms_per_round"] <= TARGET_CPU_MS),
               "rss_ok": bool(ref.get("rss_mb") is not None and ref["rss_mb"] <= TARGET_RSS_MB)}
    result = {"rounds": args.rounds, "repeat": args.repeat, "warmup_s": args.warmup,
              "machine": info, "summary": summary, "missing": missing, "targets": verdict,
              "runs": runs}
    m = info["before"]
    head = (f"{m['nproc']} x {m['cpu']}, load {info['before']['loadavg']} -> "
            f"{info['after']['loadavg']}; {args.repeat} x {args.rounds} rounds of 1 s, medians")
    text = (f"{head}\n{table(summary, missing)}\ntargets: <= {TARGET_CPU_MS} ms CPU/round "
            f"({'met' if verdict['cpu_ok'] else 'MISSED'}), <= {TARGET_RSS_MB} MB RSS "
            f"({'met' if verdict['rss_ok'] else 'MISSED'})")
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(result, indent=1))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
