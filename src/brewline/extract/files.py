"""Find branch exports in a landing area and fingerprint them.

>>> from pathlib import Path
>>> [f.name for f in discover([Path("landing")])]  # doctest: +SKIP
['leeds_09-05-2023_09-00-00.csv', ...]
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from brewline.errors import ConfigError

__all__ = ["QUARANTINE_DIR_NAME", "SourceFile", "discover", "fingerprint"]

QUARANTINE_DIR_NAME = "_quarantine"
QUARANTINE_SUFFIX = ".rejected.csv"
_COPY_SUFFIX = re.compile(r"^(?P<stem>.*?) \((?P<n>[0-9]+)\)(?P<ext>\.[^.]*)$")


@dataclass(frozen=True)
class SourceFile:
    """One landing file: the unit of work.

    ``name`` is the path relative to the landing root (POSIX form); it is the
    file's identity in the ledger and half of every sale's natural key.
    """

    path: Path
    name: str
    size: int
    mtime: float

    def read(self) -> bytes:
        """Read the file's bytes; the landing file itself is never modified."""
        return self.path.read_bytes()


def fingerprint(data: bytes) -> str:
    """SHA-256 of a file's bytes, hex: the same bytes always give the same fingerprint."""
    return hashlib.sha256(data).hexdigest()


def discover(paths: Iterable[Path], *, exclude: Path | None = None) -> list[SourceFile]:
    """List the CSV files under ``paths`` in delivery order (oldest first, then by name).

    Delivery order matters: when two files cover the same branch-day, the later
    delivery wins; a browser's ``leeds (1).csv`` comes after ``leeds.csv`` when
    their times tie. Hidden files, quarantine files and the ``exclude`` folder
    (the configured quarantine) are not inputs.
    """
    found: dict[Path, SourceFile] = {}
    skip = exclude.resolve() if exclude is not None else None
    for root in paths:
        for source in _files_under(Path(root)):
            resolved = source.path.resolve()
            if skip is None or not resolved.is_relative_to(skip):
                found.setdefault(resolved, source)
    return sorted(found.values(), key=_delivery_order)


def _delivery_order(source: SourceFile) -> tuple[float, str, int]:
    match = _COPY_SUFFIX.match(source.name)
    if match is None:
        return (source.mtime, source.name, 0)
    return (source.mtime, match["stem"] + match["ext"], int(match["n"]))


def _files_under(root: Path) -> Iterable[SourceFile]:
    if root.is_file():
        yield _source(root, root.name)
        return
    if not root.is_dir():
        raise ConfigError(f"landing path {root} does not exist; create it or pass another path")
    for path in root.rglob("*"):
        relative = path.relative_to(root)
        if _is_input(path, relative):
            yield _source(path, relative.as_posix())


def _is_input(path: Path, relative: Path) -> bool:
    hidden = any(part.startswith(".") or part == QUARANTINE_DIR_NAME for part in relative.parts)
    quarantined = path.name.endswith(QUARANTINE_SUFFIX)
    return not hidden and not quarantined and path.suffix.lower() == ".csv" and path.is_file()


def _source(path: Path, name: str) -> SourceFile:
    stat = path.stat()
    return SourceFile(path=path, name=name, size=stat.st_size, mtime=stat.st_mtime)
