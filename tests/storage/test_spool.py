"""The InfluxDB spool on a real SQLite file: sent rows are deleted soon, the WAL stays small."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

from storage.spool import Spool


def _rows_in_file(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return int(db.execute("SELECT count(*) FROM spool").fetchone()[0])


def _fill(spool: Spool, rows: int, first: int = 0) -> None:
    for n in range(first, first + rows):
        spool.enqueue([(f"key-{n}", [f"m,device=d{n} v=1 {n}"])])


def test_sent_rows_are_deleted_soon_and_none_is_sent_twice(tmp_path: Path) -> None:
    """A crash re-sends only what was sent and not deleted yet: a few batches at most."""
    path = tmp_path / "spool.db"
    spool = Spool(path, chunk_lines=1)
    try:
        _fill(spool, 30)
        sent: list[str] = []
        while (batch := spool.head(1)) is not None:
            sent.append(batch.body)
            spool.remove(batch)
            assert _rows_in_file(path) >= spool.rows
            assert _rows_in_file(path) - spool.rows <= 4  # sent, waiting to be deleted
        assert sent == [f"m,device=d{n} v=1 {n}" for n in range(30)]  # in order, once each
        assert (spool.rows, spool.lines, _rows_in_file(path)) == (0, 0, 0)

        _fill(spool, 3, first=30)
        batch = spool.head(1)
        assert batch is not None
        spool.remove(batch)
        assert _rows_in_file(path) == 3  # the sender did not delete it ...
        _fill(spool, 1, first=33)
        assert _rows_in_file(path) == 3  # ... the next enqueue did
        assert spool.head(10) == spool.head(10)  # reading does not consume
        head = spool.head(10)
        assert head is not None and head.body.split("\n")[0] == "m,device=d31 v=1 31"
    finally:
        spool.close()
    reopened = Spool(path)
    try:
        assert (reopened.rows, reopened.lines) == (3, 3)  # what was not sent survives
    finally:
        reopened.close()


def test_the_wal_is_checkpointed_while_writing(tmp_path: Path) -> None:
    """A thread of the spool copies the WAL into the file as it grows (the writer's own
    checkpoint, fsyncs included, waits for 32 MiB of WAL)."""
    path = tmp_path / "spool.db"
    spool = Spool(path)
    line = "m,device=d v=" + "1" * 500 + " 1"
    try:
        for n in range(20):  # 20 x 1 MiB
            spool.enqueue([(f"key-{n}", [line] * 2000)])
        deadline = time.monotonic() + 20
        while path.stat().st_size < 10 * 2**20 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert path.stat().st_size >= 10 * 2**20  # in the file, not only in the WAL
    finally:
        spool.close()


def test_batches_fill_up_to_the_line_limit(tmp_path: Path) -> None:
    """Rows are a fifth of a batch (InfluxStore's chunk_lines): writes of 3,000 lines make
    batches of 5,000 lines, never more, in order."""
    spool = Spool(tmp_path / "spool.db", chunk_lines=1_000)
    try:
        for w in range(4):
            spool.enqueue([(None, [f"m v={w * 3000 + i} {i}" for i in range(3000)])])
        sizes, values = [], []
        while (batch := spool.head(5_000)) is not None:
            sizes.append(batch.lines)
            values += [line.split(" ")[1] for line in batch.body.split("\n")]
            spool.remove(batch)
        assert sizes == [5_000, 5_000, 2_000]
        assert values == [f"v={n}" for n in range(12_000)]
    finally:
        spool.close()
