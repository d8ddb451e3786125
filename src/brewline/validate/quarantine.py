"""Quarantine: keep the raw text of rejected lines beside the landing area.

Raw lines may hold names and card numbers, so they are written only here (a
folder the chain already treats as personal data, like the landing area) and
never to the warehouse, logs or messages. The warehouse keeps line numbers and
reasons in ``etl_rejected_row``; this file lets a person see and fix the line.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path

import polars as pl

from brewline.extract.files import QUARANTINE_SUFFIX

__all__ = ["quarantine_path", "write_quarantine"]

_MAX_STEM_BYTES = 200  # 255-byte names, less the hash and suffix


def quarantine_path(folder: Path, source_name: str, sha256: str) -> Path:
    """Where the rejected lines of one version of a file go (a name that fits any file system)."""
    safe = source_name.replace("/", "__")
    while len(safe.encode("utf-8")) > _MAX_STEM_BYTES:  # the version hash keeps it unique
        safe = safe[:-1]
    return folder / f"{safe}.{sha256[:12]}{QUARANTINE_SUFFIX}"


def write_quarantine(
    folder: Path, source_name: str, sha256: str, data: bytes, rejects: pl.DataFrame
) -> Path | None:
    """Write ``line_no, reason, raw_line`` for each reject; atomic (temp file + rename).

    Returns the path, or None when there is nothing to quarantine.
    """
    if rejects.height == 0:
        return None
    lines = data.decode("utf-8", errors="replace").removeprefix("\ufeff").split("\n")
    wanted = rejects.sort("line_no")
    raw = [lines[n - 1].rstrip("\r") for n in wanted["line_no"].to_list()]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["line_no", "reason", "raw_line"])
    writer.writerows(zip(wanted["line_no"].to_list(), wanted["reason"].to_list(), raw, strict=True))
    folder.mkdir(parents=True, exist_ok=True)
    target = quarantine_path(folder, source_name, sha256)
    temporary = target.with_suffix(".tmp")
    temporary.write_text(buffer.getvalue(), encoding="utf-8")
    os.replace(temporary, target)
    return target
