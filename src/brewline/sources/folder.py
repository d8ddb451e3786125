"""A landing folder (or several, or single files) as a source.

>>> from pathlib import Path
>>> source = FolderSource([Path("landing")])  # doctest: +SKIP
>>> [d.name for d in source.deliveries()]  # doctest: +SKIP
['leeds_09-05-2023_09-00-00.csv', ...]
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable, Sequence
from pathlib import Path

from brewline.errors import ConfigError
from brewline.sources import (
    QUARANTINE_DIR_NAME,
    QUARANTINE_SUFFIX,
    Delivery,
    Quarantine,
    Source,
    delivery_order,
    is_delivery_name,
)

__all__ = ["QUARANTINE_DIR_NAME", "QUARANTINE_SUFFIX", "FolderQuarantine", "FolderSource"]


class FolderQuarantine(Quarantine):
    """Quarantine files in a local folder, written atomically (temp file + rename)."""

    def __init__(self, folder: Path):
        self.folder = folder

    def __str__(self) -> str:
        return f"folder {self.folder}"

    def put(self, name: str, content: bytes) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self.folder / name
        temporary = target.with_suffix(".tmp")
        temporary.write_bytes(content)
        os.replace(temporary, target)
        return target


class FolderSource(Source):
    """The CSV files under some paths; a delivery's name is its path relative to its root.

    Hidden files, quarantine files and the quarantine folder are not deliveries.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        *,
        quarantine: Path | None = None,
        only: Collection[Path] | None = None,
    ):
        """``only`` limits the deliveries to those files (e.g. the ones a watcher saw change);
        they keep their names relative to their root."""
        self.paths = [Path(p) for p in paths]
        self.only = None if only is None else {Path(p).resolve() for p in only}
        if quarantine is None and self.paths:
            first = self.paths[0]
            quarantine = (first if first.is_dir() else first.parent) / QUARANTINE_DIR_NAME
        self.quarantine: FolderQuarantine = FolderQuarantine(
            quarantine or Path(QUARANTINE_DIR_NAME)
        )

    def deliveries(self) -> list[Delivery]:
        """Delivery order: oldest first, then by name.

        When two files cover the same branch-day the later delivery wins; a
        browser's ``leeds (1).csv`` comes after ``leeds.csv`` when their times tie.
        """
        found: dict[Path, Delivery] = {}
        skip = self.quarantine.folder.resolve()
        for root in self.paths:
            for delivery in _files_under(root):
                resolved = Path(delivery.ref).resolve()
                wanted = self.only is None or resolved in self.only
                if wanted and not resolved.is_relative_to(skip):
                    found.setdefault(resolved, delivery)
        return sorted(found.values(), key=delivery_order)

    def read(self, delivery: Delivery) -> bytes:
        """The file's bytes; the landing file itself is never modified."""
        return Path(delivery.ref).read_bytes()


def _files_under(root: Path) -> Iterable[Delivery]:
    if root.is_file():
        yield _delivery(root, root.name)
        return
    if not root.is_dir():
        raise ConfigError(f"landing path {root} does not exist; create it or pass another path")
    unreadable: list[OSError] = []
    for folder, folders, files in os.walk(root, onerror=unreadable.append):
        here = Path(folder)
        folders.sort()
        for name in sorted(files):
            path = here / name
            relative = path.relative_to(root)
            if _is_input(path, relative):
                yield _delivery(path, relative.as_posix())
    for error in unreadable:  # a folder we cannot list may hold exports: never skip it silently
        path = Path(error.filename)
        relative = path.relative_to(root)
        if not _is_hidden(relative):
            yield Delivery(_printable(relative.as_posix() + "/"), 0, 0.0, str(path))


def _is_hidden(relative: Path) -> bool:
    return any(part.startswith(".") or part == QUARANTINE_DIR_NAME for part in relative.parts)


def _is_input(path: Path, relative: Path) -> bool:
    return is_delivery_name(relative.as_posix()) and path.is_file()


def _delivery(path: Path, name: str) -> Delivery:
    stat = path.stat()
    return Delivery(_printable(name), size=stat.st_size, arrived=stat.st_mtime, ref=str(path))


def _printable(name: str) -> str:
    """A file name as valid UTF-8 text: bytes that are not UTF-8 become ``\\xe9`` escapes.

    Linux allows any bytes in a name; the ledger, keys and messages need text.
    The escaped form is stable, so the file keeps one identity from run to run.
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
