"""Replay: uplinks from a file (JSON lines, or one JSON document or array) through the pipeline."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ingest.pipeline import Pipeline
from ingest.writer import Writer

__all__ = ["ReplayError", "read_messages", "replay_file"]


class ReplayError(ValueError):
    """The file cannot be read as uplinks at all; the message says where and why."""


def read_messages(path: Path) -> Iterator[tuple[str, bytes]]:
    """(topic, body) of every uplink in the file, in order.

    The file is JSON lines (one uplink per line; a bad line becomes a ``not_json`` dead
    letter), or a single JSON document: an uplink (pretty-printed or not) or an array of them.
    Each uplink is the network server's JSON itself, or ``{"topic": ..., "payload": {...}}``.
    """
    with path.open("rb") as handle:
        head = handle.read(1 << 16).lstrip()
    first_line = head.split(b"\n", 1)[0]
    if head.startswith(b"[") or (head.startswith(b"{") and not _is_json(first_line)):
        yield from _document(path)
    else:
        yield from _lines(path)


def _is_json(text: bytes) -> bool:
    try:
        json.loads(text)
    except (ValueError, RecursionError):
        return False
    return True


def _document(path: Path) -> Iterator[tuple[str, bytes]]:
    try:
        document = json.loads(path.read_bytes())
    except (ValueError, RecursionError) as exc:
        raise ReplayError(
            f"{path} is neither JSON lines nor one JSON document ({_describe(exc)})"
        ) from None
    items = document if isinstance(document, list) else [document]
    for n, item in enumerate(items, 1):
        yield _unwrap(item, f"{path.name}:{n}")


def _lines(path: Path) -> Iterator[tuple[str, bytes]]:
    with path.open("rb") as handle:
        for n, line in enumerate(handle, 1):
            text = line.strip()
            if not text:
                continue
            try:
                item = json.loads(text)
            except (ValueError, RecursionError):
                yield f"{path.name}:{n}", text  # the pipeline dead-letters it as not_json
                continue
            yield _unwrap(item, f"{path.name}:{n}", text)


def _unwrap(item: Any, topic: str, text: bytes | None = None) -> tuple[str, bytes]:
    if isinstance(item, dict) and set(item) == {"topic", "payload"}:
        return str(item["topic"]), json.dumps(item["payload"]).encode()
    return topic, text if text is not None else json.dumps(item).encode()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, json.JSONDecodeError):
        return f"line {exc.lineno} column {exc.colno}: {exc.msg}"
    return "nested too deeply" if isinstance(exc, RecursionError) else str(exc)


def replay_messages(
    messages: Iterable[tuple[str, bytes]], writer: Writer, pipeline: Pipeline
) -> int:
    """Feed messages through the pipeline into the writer; returns how many were read."""
    count = 0
    for topic, body in messages:
        count += 1
        writer.submit(pipeline.process(topic, body, datetime.now(UTC)))
    return count


def replay_file(path: Path, writer: Writer, pipeline: Pipeline) -> int:
    """Replay every uplink of a file; returns how many messages it held."""
    return replay_messages(read_messages(path), writer, pipeline)
