"""`netroom deadletter list|show|replay|purge`: the messages the collector set aside.

For the IT staff running the collector. A message is set aside (and
acknowledged) when it is invalid, cannot be encoded, or InfluxDB refuses its
lines; `list` shows what and why, `show` one letter in full, `replay` sends
letters through today's validation and encoding to InfluxDB once the cause
is fixed (a letter that lands is deleted; one that fails again stays, with
the reason), `purge` deletes them. With `collector.workers` > 1 each worker
has its own store; ids are then written `<worker>-<id>`.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from dataclasses import dataclass

from collector.config import CollectorConfig, load
from collector.influx.client import InfluxSink
from collector.influx.line import LineEncoder
from collector.ingest.deadletter import FILENAME, DeadLetters, Letter
from collector.ingest.delivery import Delivery
from collector.ingest.entry import Entry
from collector.ingest.subscriber import encode_message
from collector.report.format import grid, safe_text
from collector.report.i18n import LANGS, label
from netroom import protocol
from netroom.settings import ConfigError


@dataclass
class Store:
    name: str  # "" for a single collector, else the worker index
    letters: DeadLetters

    def ref(self, letter: Letter) -> str:
        return f"{self.name}-{letter.id}" if self.name else str(letter.id)


def stores(cfg: CollectorConfig) -> list[Store]:
    """Every dead-letter store of this collector (one per worker)."""
    if cfg.workers == 1:
        dirs = [("", cfg.spool_dir)]
    else:
        dirs = [(str(i), os.path.join(cfg.spool_dir, str(i))) for i in range(cfg.workers)]
    return [Store(name, DeadLetters(d)) for name, d in dirs
            if os.path.exists(os.path.join(d, FILENAME))]


def add_deadletter(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("deadletter", help="messages the collector set aside",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    for name, text in (("list", "newest letters and counts per reason"),
                       ("show", "letters in full: payload and refused lines"),
                       ("replay", "write letters to InfluxDB again; delete those that land"),
                       ("purge", "delete letters")):
        a = actions.add_parser(name, help=text, description=text)
        a.add_argument("--config", "-c", required=True, help="path to config.yaml")
        if name == "list":
            a.add_argument("--limit", type=int, default=50, help="newest N (default 50)")
            a.add_argument("--format", choices=("table", "json"), default="table")
            a.add_argument("--lang", choices=LANGS, default="zh", help="labels (default: zh)")
        if name != "list":
            a.add_argument("ids", nargs="*", help="letter ids (default: all, or --reason)")
        a.add_argument("--reason", default="", help="only letters with this reason")
        if name == "purge":
            a.add_argument("--all", action="store_true", help="purge every letter")
    p.set_defaults(run=run_deadletter)


def run_deadletter(args: argparse.Namespace) -> int:
    cfg = load(args.config)
    found = stores(cfg)
    try:
        if args.action == "list":
            return _list(found, args)
        selected = _select(found, args)
        if args.action == "show":
            return _show(selected)
        if args.action == "replay":
            return _replay(cfg, selected)
        return _purge(selected)
    finally:
        for s in found:
            s.letters.close()


def _select(found: list[Store], args: argparse.Namespace) -> list[tuple[Store, Letter]]:
    if args.action == "purge" and not (args.ids or args.reason or args.all):
        raise ConfigError("purge: name letter ids, --reason or --all")
    wanted: dict[str, list[int]] = {}
    for ref in args.ids:
        name, _, num = ref.rpartition("-")
        if not num.isdigit():
            raise ConfigError(f"{ref!r}: not a letter id (see `netroom deadletter list`)")
        wanted.setdefault(name, []).append(int(num))
    out = []
    for s in found:
        ids = wanted.get(s.name, []) if args.ids else s.letters.ids(args.reason)
        out += [(s, x) for x in s.letters.get(ids) if not args.reason or x.reason == args.reason]
    return out


def _when(ms: int) -> str:
    return dt.datetime.fromtimestamp(ms / 1000).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _source(x: Letter) -> str:
    """site/host from the topic netroom/v1/<site>/<host>/<kind>, else the topic."""
    parts = x.topic.split("/")
    return "/".join(parts[2:5]) if len(parts) == 5 else x.topic


def clean(text: str, limit: int = 0) -> str:
    """Agent-supplied text made safe for a terminal (a letter holds whatever a
    hostile PC sent), cut to ``limit`` characters."""
    out = safe_text(text)
    return out if not limit or len(out) <= limit else out[:limit] + "..."


def _list(found: list[Store], args: argparse.Namespace) -> int:
    rows = [(s, x) for s in found for x in s.letters.newest(args.limit, args.reason)]
    rows.sort(key=lambda r: -r[1].time_ms)
    rows = rows[:args.limit]
    totals: dict[str, int] = {}
    for s in found:
        for reason, n in s.letters.by_reason().items():
            totals[reason] = totals.get(reason, 0) + n
    if args.format == "json":
        json.dump({"counts": totals, "letters": [
            {"id": s.ref(x), "time_ms": x.time_ms, "reason": x.reason, "topic": x.topic,
             "bytes": len(x.payload), "detail": x.detail} for s, x in rows]},
            sys.stdout, ensure_ascii=False, indent=1)
        sys.stdout.write("\n")
        return 0
    def t(key: str) -> str:
        return label(key, args.lang)

    summary = ", ".join(f"{k} {v}" for k, v in sorted(totals.items())) or t("none")
    print(f"{t('deadletters')}: {summary}")
    table = [["id", t("received_at"), t("reason"), t("source"), t("bytes"), t("detail")]]
    table += [[s.ref(x), _when(x.time_ms), x.reason, clean(_source(x), 80),
               str(len(x.payload)), clean(x.detail, 100)] for s, x in rows]
    print("\n".join(grid(table)))
    return 0


def _show(selected: list[tuple[Store, Letter]]) -> int:
    for s, x in selected:
        print(f"id: {s.ref(x)}\nreceived: {_when(x.time_ms)}\nreason: {x.reason}\n"
              f"detail: {clean(x.detail)}\ntopic: {clean(x.topic)}\n"
              f"payload ({len(x.payload)} bytes):\n"
              f"{clean(x.payload.decode('utf-8', 'backslashreplace'))}")
        if x.lines:
            print("refused lines:")
            for line in x.lines:
                print(f"  {clean(line)}")
        print()
    return 0


def _replay(cfg: CollectorConfig, selected: list[tuple[Store, Letter]]) -> int:
    sink = InfluxSink(cfg.influxdb)
    delivery = Delivery(sink.write, cfg.max_body_bytes)
    encoder = LineEncoder()
    landed = kept = 0
    try:
        for s, x in selected:
            why = _replay_one(x, cfg, delivery, encoder)
            if why:
                kept += 1
                print(f"{s.ref(x)}: kept: {clean(why, 200)}")
            else:
                s.letters.delete([x.id])
                landed += 1
    finally:
        sink.close()
    print(f"replayed {landed}, kept {kept}")
    return 1 if kept else 0


def _replay_one(x: Letter, cfg: CollectorConfig, delivery: Delivery,
                encoder: LineEncoder) -> str:
    """Write one letter (SinkError propagates); '' if it landed, else why not."""
    if x.topic:
        try:
            msg = protocol.decode(x.topic, x.payload)
        except protocol.ProtocolError as exc:
            return f"invalid: {exc}"
        try:
            lines, _ = encode_message(msg, encoder, cfg.org.tags_for(msg.site), x.time_ms,
                                      cfg.subscriber)
        except Exception as exc:  # noqa: BLE001 - reported, the letter stays
            return f"unencodable: {type(exc).__name__}: {exc}"
    elif x.lines:
        lines = list(x.lines)  # the collector's own points: no payload
    else:
        # corrupt_spool: the raw bytes of an unreadable spool batch.
        return f"{x.reason}: nothing to replay automatically (see `show`)"
    outcome = delivery.deliver([Entry(0, 0, lines, x.topic, x.payload)])
    if not outcome.written:
        return "; ".join(r.detail for r in outcome.refused) or "nothing written"
    return "; ".join(r.detail for r in outcome.refused)


def _purge(selected: list[tuple[Store, Letter]]) -> int:
    n = 0
    for s, x in selected:
        n += s.letters.delete([x.id])
    print(f"purged {n}")
    return 0
