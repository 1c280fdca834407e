"""Readers for the recorded corpus formats (../shared/corpus/MANIFEST.md, "File formats")."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def hftbacktest_lines(path: Path) -> list[bytes]:
    """``<local_recv_ts_ns> <payload JSON>`` per line; payload bytes returned in file order."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        return [line.split(b" ", 1)[1].rstrip(b"\n") for line in f if line.strip()]


def cryptofeed_ws_payloads(path: Path) -> Iterator[bytes]:
    """Data lines ``<recv_ts>: <payload JSON>``; the header and outbound lines are skipped."""
    with open(path, "rb") as f:
        for i, line in enumerate(f):
            if i == 0 or b" <- " in line or line.startswith(b"configuration:"):
                continue
            _, sep, payload = line.partition(b": ")
            if sep:
                yield payload.rstrip(b"\n")


def cryptofeed_rest_bodies(path: Path) -> Iterator[tuple[str, Any]]:
    """``<url> -> <ts>: <body JSON>`` lines as (url, decoded body)."""
    with open(path, "rb") as f:
        for line in f:
            head, sep, body = line.partition(b": ")
            if not sep or b" -> " not in head:
                continue
            url = head.split(b" -> ")[0].decode()
            yield url, json.loads(body)


def cryptofeed_records(path: Path) -> Iterator[tuple[str, str, bytes]]:
    """Every line of a cryptofeed raw-recorder file as ``(kind, url, payload)``.

    kind is ``header`` (line 1 of a ws file, ``<ws url> <-> <ts>``), ``ws`` (``<ts>: <json>``),
    ``outbound`` (``<url> <- <ts>: <json>``), ``rest`` (``<url> -> <ts>: <json>``) or
    ``configuration`` (cryptofeed's own settings, ``*.0`` files). url is "" where there is none.
    """
    with open(path, "rb") as f:
        for line in f:
            line = line.rstrip(b"\n")
            if not line.strip():
                continue
            if line.startswith(b"configuration: "):
                yield "configuration", "", line.partition(b": ")[2]
            elif b" <-> " in line.split(b": ", 1)[0]:
                yield "header", line.split(b" <-> ")[0].decode(), b""
            elif b" <- " in line.split(b": ", 1)[0]:
                head, _, payload = line.partition(b": ")
                yield "outbound", head.split(b" <- ")[0].decode(), payload
            elif b" -> " in line.split(b": ", 1)[0]:
                head, _, payload = line.partition(b": ")
                yield "rest", head.split(b" -> ")[0].decode(), payload
            else:
                yield "ws", "", line.partition(b": ")[2]


def nautilus_depth_csv(path: Path) -> Iterator[dict[str, str]]:
    """Binance USD-M historical book CSV rows
    (``symbol,timestamp,first_update_id,last_update_id,side,update_type,price,qty,pu``)."""
    import csv

    with open(path, newline="") as f:
        yield from csv.DictReader(f)
