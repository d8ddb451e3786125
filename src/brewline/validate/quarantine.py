"""Quarantine: keep the raw text of rejected lines beside the deliveries.

Raw lines may hold names and card numbers, so they are written only to the
source's quarantine (a place the chain already treats as personal data, like
the landing area) and never to the warehouse, logs or messages. The warehouse
keeps line numbers and reasons in ``etl_rejected_row``; this file lets a
person see and fix the line. Formatting is pure; the write goes through the
source's :class:`~brewline.sources.Quarantine`.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import TYPE_CHECKING

from brewline.sources import Location, Quarantine
from brewline.sources.folder import QUARANTINE_SUFFIX, FolderQuarantine

if TYPE_CHECKING:
    import polars as pl

__all__ = ["quarantine_name", "quarantine_path", "quarantined_lines", "write_quarantine"]

_MAX_STEM_BYTES = 200  # 255-byte names, less the hash and suffix


def quarantine_name(source_name: str, sha256: str) -> str:
    """The quarantine name of one version of a delivery (fits any file system, flat)."""
    safe = source_name.replace("/", "__")
    while len(safe.encode("utf-8")) > _MAX_STEM_BYTES:  # the version hash keeps it unique
        safe = safe[:-1]
    return f"{safe}.{sha256[:12]}{QUARANTINE_SUFFIX}"


def quarantine_path(folder: Path, source_name: str, sha256: str) -> Path:
    """Where :func:`write_quarantine` puts a version's rejected lines in a local folder."""
    return folder / quarantine_name(source_name, sha256)


def quarantined_lines(data: bytes, rejects: pl.DataFrame) -> bytes | None:
    """A CSV of ``line_no, reason, raw_line`` for each reject, or None when there are none."""
    if rejects.height == 0:
        return None
    lines = data.decode("utf-8", errors="replace").removeprefix("\ufeff").split("\n")
    wanted = rejects.sort("line_no")
    raw = [lines[n - 1].rstrip("\r") for n in wanted["line_no"].to_list()]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["line_no", "reason", "raw_line"])
    writer.writerows(zip(wanted["line_no"].to_list(), wanted["reason"].to_list(), raw, strict=True))
    return buffer.getvalue().encode("utf-8")


def write_quarantine(
    store: Quarantine | Path, source_name: str, sha256: str, data: bytes, rejects: pl.DataFrame
) -> Location | None:
    """Quarantine a version's rejected lines (a folder ``Path`` means a local folder).

    Returns where they went, or None when there is nothing to quarantine.
    """
    content = quarantined_lines(data, rejects)
    if content is None:
        return None
    target = FolderQuarantine(store) if isinstance(store, Path) else store
    return target.put(quarantine_name(source_name, sha256), content)
