"""The agent's disk outbox (agent/outbox.py) and the collector's spool queue."""
from __future__ import annotations

from pathlib import Path

from agent.outbox import Outbox
from collector.ingest.diskqueue import DiskQueue


def test_outbox_survives_a_restart_in_order(tmp_path: Path) -> None:
    box = Outbox(str(tmp_path / "o"))
    ids = box.put([b"one", "二".encode(), b"three"])
    assert ids == sorted(ids) and len(box) == 3
    box.delete([ids[1]])
    (tmp_path / "o" / "000000000099.msg.tmp").write_bytes(b"half a mess")  # crash mid-write
    again = Outbox(str(tmp_path / "o"))
    assert [item for _, item in again.peek(10)] == [b"one", b"three"]
    assert not list((tmp_path / "o").glob("*.tmp"))
    newer = again.put([b"four"])
    assert newer[0] > ids[-1]  # ids keep increasing across restarts
    assert [item for _, item in again.peek(10, after=ids[0])] == [b"three", b"four"]


def test_outbox_peek_after_and_limit(tmp_path: Path) -> None:
    box = Outbox(str(tmp_path))
    ids = box.put([str(i).encode() for i in range(10)])
    assert [i for i, _ in box.peek(3, after=ids[4])] == ids[5:8]
    box.delete(ids[:9])
    box.delete(ids[:2])  # deleting twice is harmless
    assert box.peek(5) == [(ids[9], b"9")] and len(box) == 1


def test_outbox_full_drops_the_oldest(tmp_path: Path) -> None:
    box = Outbox(str(tmp_path), max_items=3)
    box.put([b"a", b"b"])
    box.put([b"c", b"d", b"e"])
    assert [item for _, item in box.peek(10)] == [b"c", b"d", b"e"]
    assert box.dropped == 2
    assert len(list(tmp_path.glob("*.msg"))) == 3


def test_spool_queue_survives_a_restart(tmp_path: Path) -> None:
    q = DiskQueue(str(tmp_path / "s.sqlite"), fsync=True)
    ids = q.put([b"x", b"y"])
    q.delete(ids[:1])
    q.close()
    q = DiskQueue(str(tmp_path / "s.sqlite"))
    assert len(q) == 1 and q.peek(5) == [(ids[1], b"y")]


def test_outbox_item_format_round_trips_any_payload() -> None:
    from agent.transport import pack, unpack

    payload = '{"hostname":"政务网-01","errors":"a\\nb"}\n'.encode()
    for retain in (True, False):
        assert unpack(pack("netroom/v1/sq-1/pc-1/status", payload, retain)) == (
            "netroom/v1/sq-1/pc-1/status", payload, retain)
