"""The agent's disk outbox (agent/outbox.py)."""
from __future__ import annotations

from pathlib import Path

from agent.outbox import Outbox


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


def test_outbox_skips_held_ids_and_reads_one_item(tmp_path: Path) -> None:
    """The publisher passes the ids it holds back (refused by the broker) as ``skip``."""
    box = Outbox(str(tmp_path))
    ids = box.put([b"a", b"b", b"c", b"d"])
    held = {ids[0], ids[2]}
    assert box.peek(10, skip=held) == [(ids[1], b"b"), (ids[3], b"d")]
    assert box.peek(1, after=ids[0], skip=held) == [(ids[1], b"b")]
    assert box.first_after(0, skip=held) == ids[1]
    assert box.first_after(ids[1], skip=held) == ids[3]
    assert box.first_after(ids[3]) is None
    assert box.get(ids[2]) == b"c" and len(box) == 4  # held, still there
    box.delete([ids[2]])
    assert box.get(ids[2]) is None


def test_outbox_full_drops_the_oldest(tmp_path: Path) -> None:
    box = Outbox(str(tmp_path), max_items=3)
    box.put([b"a", b"b"])
    box.put([b"c", b"d", b"e"])
    assert [item for _, item in box.peek(10)] == [b"c", b"d", b"e"]
    assert box.dropped == 2
    assert len(list(tmp_path.glob("*.msg"))) == 3


def test_outbox_item_format_round_trips_any_payload() -> None:
    from agent.transport import pack, unpack

    payload = '{"hostname":"政务网-01","errors":"a\\nb"}\n'.encode()
    for retain in (True, False):
        assert unpack(pack("netroom/v1/sq-1/pc-1/status", payload, retain)) == (
            "netroom/v1/sq-1/pc-1/status", payload, retain)
