"""``netroom simulate``: a made-up fleet of agents publishing to a broker (docs/simulate.md)."""
from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path
from typing import Any

import yaml

from collector.simulate import fleet as sim
from collector.simulate.publisher import Publisher, check_fds
from netroom import schema
from netroom.agentsettings import split_host_port
from netroom.mqtt import MqttConfig, read_mqtt
from netroom.settings import ConfigError, load_yaml

# History older than collector.clock_behind is stored at its arrival time.
MAX_BACKFILL_H = schema.CLOCK_BEHIND_MS // schema.HOUR_MS - 1


def add_simulate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate", help="simulated agents publishing to a broker (demos, benchmarks)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run a made-up fleet of N sites x M PCs as real MQTT clients from one "
        "process, publishing what agents publish (netroom.protocol), with QoS 1. Each site "
        "passes every rule, except a share of them shaped to fail the rules of --fail. "
        "Deterministic from --seed. Exits 0 when the broker acknowledged every message.",
        epilog="One connection per PC (client id and user <site>/<host>, as the production "
        "broker wants: give --passwords DIR from netroom_credentials.py sync, fed with "
        "--write-pcs FILE). --connections K shares K connections among all PCs: only "
        "against a broker WITHOUT per-PC users and ACLs (a test broker). "
        "--write-sites FILE writes the fleet's `sites:` tree for the collector's "
        "config.yaml; without --broker/--config only the files are written.")
    p.add_argument("--sites", type=int, required=True, metavar="N", help="number of sites")
    p.add_argument("--pcs", type=int, required=True, metavar="M",
                   help=f"PCs per site (at least {sim.MIN_PCS})")
    p.add_argument("--duration", type=float, default=0.0, metavar="S",
                   help="seconds to publish live (default 0: until Ctrl-C or SIGTERM)")
    p.add_argument("--interval", type=float, default=60.0, metavar="S",
                   help="the agents' interval: a heartbeat (metrics) per PC every S "
                   "seconds; probes and isolation checks every 60 s or every S if longer "
                   "(default 60)")
    p.add_argument("--backfill", type=float, default=0.0, metavar="HOURS",
                   help="first publish this many hours of history, up to now (at most "
                   f"{MAX_BACKFILL_H})")
    p.add_argument("--fail", default="", metavar="RULE[,RULE]",
                   help="rules the shaped sites fail: " + ", ".join(sim.RULE_NAMES))
    p.add_argument("--fail-share", type=float, default=0.2, metavar="F",
                   help="share of sites shaped to fail --fail (default 0.2, at least one)")
    p.add_argument("--seed", type=int, default=0, help="the same seed, the same fleet")
    p.add_argument("--prefix", default="sim",
                   help="id prefix of the tree's nodes: <prefix>-sq001... (default sim)")
    p.add_argument("--names", choices=tuple(sim.NAMES), default="zh",
                   help="names in the sites tree: 第1中队 (zh, default) or Squadron 1 (en)")
    p.add_argument("--config", "-c", help="config.yaml: the broker from its mqtt section")
    p.add_argument("--broker", metavar="HOST:PORT", help="the broker (overrides --config's)")
    p.add_argument("--passwords", metavar="DIR",
                   help="per-PC passwords: the <site>.txt files (user:password lines) "
                   "netroom_credentials.py sync writes")
    p.add_argument("--connections", type=int, default=0, metavar="K",
                   help="share K connections among all PCs (a broker without per-PC ACLs)")
    p.add_argument("--connect-rate", type=float, default=50.0, metavar="R",
                   help="new connections per second at most (default 50)")
    p.add_argument("--write-sites", metavar="FILE", help="write the fleet's sites: tree (YAML)")
    p.add_argument("--write-pcs", metavar="FILE",
                   help="write '<site>,<host>' lines, for netroom_credentials.py sync --pcs")
    p.set_defaults(run=run_simulate)


def run_simulate(args: argparse.Namespace) -> int:
    if not 0 <= args.backfill <= MAX_BACKFILL_H:
        raise ConfigError(f"--backfill: must be 0 to {MAX_BACKFILL_H} hours (older history "
                          f"is stored at its arrival time), got {args.backfill:g}")
    if args.duration < 0:
        raise ConfigError(f"--duration: must be >= 0 s (0: until stopped), got {args.duration:g}")
    if args.connect_rate <= 0:
        raise ConfigError(f"--connect-rate: must be > 0, got {args.connect_rate:g}")
    if args.connections < 0:
        raise ConfigError(f"--connections: must be >= 0 (0: one per PC), got {args.connections}")
    if args.connections and args.passwords:
        raise ConfigError("--connections and --passwords: per-PC users need one connection "
                          "per PC; shared connections are for a broker without per-PC ACLs")
    cfg = broker(args)
    if cfg is None and not (args.write_sites or args.write_pcs):
        raise ConfigError("no broker: give --broker HOST:PORT or --config FILE (or only "
                          "--write-sites FILE / --write-pcs FILE to write files)")
    if cfg is not None and args.sites > 0 and args.pcs >= sim.MIN_PCS:
        # Up front: before a large fleet is built, or any connection is made.
        pcs = args.sites * args.pcs
        check_fds(min(args.connections, pcs) if args.connections > 0 else pcs)
    fleet = sim.build(args.sites, args.pcs, sim.parse_rules(args.fail), args.fail_share,
                      args.seed, args.interval, args.prefix, args.names)
    passwords = read_passwords(args.passwords, fleet) if args.passwords else None
    for line in sim.describe(fleet):
        say(line)
    if args.write_sites:
        write(args.write_sites, sites_yaml(fleet, args))
        say(f"wrote the sites tree to {args.write_sites}")
    if args.write_pcs:
        write(args.write_pcs, "".join(f"{pc.site},{pc.host}\n" for pc in fleet.pcs))
        say(f"wrote {len(fleet.pcs)} PCs to {args.write_pcs}")
    if cfg is None:
        return 0
    pub = Publisher(cfg, fleet, connections=args.connections, passwords=passwords,
                    connect_rate=args.connect_rate, say=say)
    previous = {sig: signal.signal(sig, lambda *_: pub.stop())
                for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        s = pub.run(args.duration, args.backfill * 3600)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    rate = s.sent / s.elapsed_s if s.elapsed_s else 0.0
    print(f"netroom simulate: {s.pcs} PCs over {s.connections} connections "
          f"({s.connected} connected, {len(s.refused)} refused): sent {s.sent}, acked "
          f"{s.acked}, failed {s.failed} ({s.backfilled} of history) in {s.elapsed_s:.1f} s, "
          f"{rate:.0f} msg/s", flush=True)
    return 0 if s.ok else 1


def say(line: str) -> None:
    print(f"netroom simulate: {line}", file=sys.stderr, flush=True)


def broker(args: argparse.Namespace) -> MqttConfig | None:
    """The broker's settings from --config and --broker; None without either."""
    if not args.config and not args.broker:
        return None
    cfg = read_mqtt(load_yaml(args.config).get("mqtt")) if args.config else MqttConfig()
    if args.broker:
        try:
            host, port = split_host_port(args.broker, 1883)
        except ValueError as exc:
            raise ConfigError(f"--broker: {args.broker!r}: {exc} (e.g. 127.0.0.1:1883)") from None
        cfg = cfg._replace(host=host, port=port)
    return cfg


def read_passwords(folder: str, fleet: sim.Fleet) -> dict[str, str]:
    """user -> password from ``folder``'s *.txt files; ConfigError naming a PC without one."""
    path = Path(folder)
    if not path.is_dir():
        raise ConfigError(f"--passwords: {folder!r} is not a folder")
    out = {}
    for f in sorted(path.glob("*.txt")):
        for line in f.read_text(encoding="utf-8").splitlines():
            user, sep, password = line.partition(":")
            if sep and user.strip():
                out[user.strip()] = password
    missing = [f"{pc.site}/{pc.host}" for pc in fleet.pcs if f"{pc.site}/{pc.host}" not in out]
    if missing:
        raise ConfigError(f"--passwords: no password for {len(missing)} PCs in {folder} (first: "
                          f"{missing[0]}); create their users with netroom_credentials.py "
                          "sync --pcs FILE, FILE from --write-pcs")
    return out


def sites_yaml(fleet: sim.Fleet, args: argparse.Namespace) -> str:
    shape = (f"--sites {args.sites} --pcs {args.pcs} --seed {args.seed} --interval "
             f"{args.interval:g} --prefix {args.prefix} --names {args.names}"
             + (f" --fail {args.fail} --fail-share {args.fail_share:g}" if args.fail else ""))
    head = ["# The sites tree of a simulated fleet, for config.yaml's `sites:` key.",
            f"# The same fleet: netroom simulate {shape}"]
    head += [f"# {line.strip()}" for line in sim.describe(fleet)]
    doc: dict[str, Any] = {"sites": sim.sites_tree(fleet)}
    body = yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, default_flow_style=None)
    return "\n".join(head) + "\n" + body


def write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write: {exc.strerror}") from None
