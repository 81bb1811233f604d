"""The subjects of bench/agent_cost.py: the netroom agent, its parts, and its peers.

Everything listens on or talks to 127.0.0.1 only. A peer that is not
installed is reported as missing, with the path looked for.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Sequence

import yaml
from procmeter import Subject

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from servers import OPENER, Mosquitto, free_port

SITE = "bench"
REF = "netroom agent (MQTT)"
# Debian's paths (apt-get install collectd-core prometheus-node-exporter);
# Glances from its own venv (docs/benchmarks.md), or GLANCES=/path/to/glances.
COLLECTD = shutil.which("collectd") or "/usr/sbin/collectd"
NODE_EXPORTER = (shutil.which("prometheus-node-exporter") or shutil.which("node_exporter")
                 or "/usr/bin/prometheus-node-exporter")
GLANCES = os.environ.get("GLANCES") or "/tmp/glances-venv/bin/glances"
# The collectors, the message envelope and JSON, as the agent has them, minus
# paho and the outbox: what the transport costs is the difference.
NO_TRANSPORT = r"""
import sys, threading
from agent import collectors
from netroom import protocol
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
# The fixed cost of a Python process that wakes once a second and does nothing.
WAKE = r"""
import sys, time
while True:
    time.sleep(1.0 - time.time() % 1.0)
    sys.stdout.write("tick\n"); sys.stdout.flush()
"""
IDLE = "import time\n{imports}\nprint('ready', flush=True)\ntime.sleep(86400)\n"
FLOORS = {
    "floor: python+psutil+paho+yaml": "import psutil, yaml, json, logging, threading, "
        "paho.mqtt.client",
    "floor: netroom agent imports": "import psutil, agent.__main__, agent.collectors.metrics, "
        "agent.collectors.inventory, agent.collectors.isolation, agent.collectors.probes, "
        "agent.collectors.bandwidth",
}


def agent_config(tmp: Path, host: str, port: int, protocol: str = "5") -> Path:
    path = tmp / f"{host}.yaml"
    path.write_text(yaml.safe_dump({
        "mqtt": {"host": "127.0.0.1", "port": port, "protocol": protocol},
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


def mqtt_agent(name: str, py: str, cfg: Path, host: str, counts: dict[str, int]) -> Subject:
    """The agent publishing to the broker; its rounds are its messages that arrived."""
    sub = Subject(name, [py, "-m", "agent", "--config", str(cfg), "--log-level", "WARNING"])
    sub.count = lambda: counts.get(host, 0)
    return sub


def python_version(py: str) -> str:
    return subprocess.run([py, "-c", "import platform; print(platform.python_version())"],
                          check=True, capture_output=True, text=True, timeout=30).stdout.strip()


def subjects(tmp: Path, mosq: Mosquitto, counts: dict[str, int], run: int,
             stop: threading.Event, pythons: Sequence[str] = ()
             ) -> tuple[list[Subject], dict[str, str]]:
    """The subjects of one repeat, and the peers that are missing (name -> why).

    ``pythons``: more interpreters (with psutil, paho-mqtt and PyYAML) to run
    the agent and the import floor on, e.g. the 3.8 of Kylin V10.
    """
    py = sys.executable
    hosts = {"5": f"bench-mqtt-{run}", "3.1.1": f"bench-mqtt311-{run}"}
    cfgs = {v: agent_config(tmp, h, mosq.port, v) for v, h in hosts.items()}
    real = mqtt_agent(REF, py, cfgs["5"], hosts["5"], counts)
    v311 = mqtt_agent("netroom agent (MQTT 3.1.1)", py, cfgs["3.1.1"], hosts["3.1.1"], counts)
    local = str(agent_config(tmp, f"bench-local-{run}", mosq.port))
    printing = str(agent_config(tmp, f"bench-print-{run}", mosq.port))
    out = [real, v311,
           Subject("netroom collect+encode (no transport)", [py, "-c", NO_TRANSPORT, local],
                   needle=b"/metrics "),
           Subject("netroom-agent --print", [py, "-m", "agent", "--config", printing, "--print",
                                             "--log-level", "WARNING"], needle=b'/metrics"'),
           Subject("bare psutil sample", [py, "-c", BARE], needle=b"sample"),
           Subject("python waking 1/s, no work", [py, "-c", WAKE], needle=b"tick")]
    out += [Subject(name, [py, "-c", IDLE.format(imports=imp)], needle=b"ready", per_round=False)
            for name, imp in FLOORS.items()]
    for i, other in enumerate(pythons):
        version = python_version(other)
        host = f"bench-py{i}-{run}"
        out += [mqtt_agent(f"netroom agent (MQTT, Python {version})", other,
                           agent_config(tmp, host, mosq.port), host, counts),
                *(Subject(f"{name} (Python {version})", [other, "-c", IDLE.format(imports=imp)],
                          needle=b"ready", per_round=False) for name, imp in FLOORS.items())]
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
