"""A landing folder (or several, or single files) as a source.

>>> from pathlib import Path
>>> source = FolderSource([Path("landing")])  # doctest: +SKIP
>>> [d.name for d in source.deliveries()]  # doctest: +SKIP
['leeds_09-05-2023_09-00-00.csv', ...]
"""

from __future__ import annotations

import errno
import os
from collections.abc import Collection, Iterable, Iterator, Sequence
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
    is_ignored_name,
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
        # realpath, unlike Path.resolve, does not raise on a symlink loop (it fails later, alone)
        self.only = None if only is None else {os.path.realpath(p) for p in only}
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
        found: dict[str, Delivery] = {}
        ignored: list[str] = []
        skip = os.path.realpath(self.quarantine.folder)
        for root in self.paths:
            for resolved, delivery in _files_under(root, ignored if self.only is None else []):
                wanted = self.only is None or resolved in self.only
                if wanted and not _within(resolved, skip):
                    found.setdefault(resolved, delivery)
        self.ignored = sorted(set(ignored))
        return sorted(found.values(), key=delivery_order)

    def read(self, delivery: Delivery) -> bytes:
        """The file's bytes; the landing file itself is never modified."""
        return Path(delivery.ref).read_bytes()


def _within(path: str, folder: str) -> bool:
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _files_under(root: Path, ignored: list[str]) -> Iterable[tuple[str, Delivery]]:
    """``(resolved path, delivery)`` of every input file under ``root``; the names of the
    files of other types are added to ``ignored``.

    One ``scandir`` per folder and one ``stat`` per file: a landing folder of
    thousands of till exports is listed in milliseconds.
    """
    if root.is_file():
        yield str(root.resolve()), _delivery(str(root), root.name, root.stat())
        return
    if not root.is_dir():
        raise ConfigError(f"landing path {root} does not exist; create it or pass another path")
    unreadable: list[OSError] = []
    real_root = str(root.resolve())
    for entry, relative in _walk(root, "", unreadable):
        if not is_delivery_name(relative):
            if is_ignored_name(relative):
                ignored.append(_printable(relative))
            continue
        stat, problem = _examined(entry)
        if problem is not None:
            link = os.path.join(real_root, relative)
            yield link, Delivery(_printable(relative), 0, 0.0, entry.path, problem=problem)
        if stat is None:
            continue
        # Folders are walked without following links, so only a linked file resolves elsewhere.
        linked = entry.is_symlink()
        resolved = os.path.realpath(entry.path) if linked else os.path.join(real_root, relative)
        yield resolved, _delivery(entry.path, relative, stat)
    for error in unreadable:  # a folder we cannot list may hold exports: never skip it silently
        path = Path(str(error.filename))
        yield (
            os.path.realpath(path),
            Delivery(_printable(path.relative_to(root).as_posix() + "/"), 0, 0.0, str(path)),
        )


def _walk(
    folder: Path, prefix: str, unreadable: list[OSError]
) -> Iterator[tuple[os.DirEntry[str], str]]:
    """Every non-folder entry under ``folder`` with its name relative to the root, by name.

    Hidden and quarantine folders are not entered (nothing in them is a delivery).
    """
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda entry: entry.name)
    except OSError as error:
        unreadable.append(error)
        return
    for entry in entries:
        relative = prefix + entry.name
        if not entry.is_dir(follow_symlinks=False):
            yield entry, relative
        elif not _is_hidden(entry.name):
            yield from _walk(Path(entry.path), relative + "/", unreadable)


def _examined(entry: os.DirEntry[str]) -> tuple[os.stat_result | None, tuple[str, str] | None]:
    """A ``.csv`` entry's stat when it is a file (following a link), else why it cannot be
    read, if it is something that should have been an export; neither when it is gone."""
    try:
        if entry.is_file():
            return entry.stat(), None
    except FileNotFoundError:  # gone since it was listed: nothing to load
        return None, None
    except OSError as error:  # e.g. a symlink loop: this entry fails, the others load
        return None, _link_problem(entry, error)
    return None, _link_problem(entry, None)


def _link_problem(entry: os.DirEntry[str], error: OSError | None) -> tuple[str, str] | None:
    """``(reason, message)`` for a ``.csv`` entry that stat() could not follow to a file.

    ``error`` is what stat() raised (None when it found no file): a loop, or a link to
    nothing, would otherwise abort the run or be passed over without a word.
    """
    if error is not None and error.errno == errno.ELOOP:
        return "symlink_loop", (
            "symlink loop: the link leads back to itself; point it at an export or remove it"
        )
    if error is not None:
        return "unreadable_file", f"cannot read the file: {error.strerror or error}"
    try:
        target = os.readlink(entry.path) if entry.is_symlink() else None
    except OSError:  # the link itself went away since it was listed
        return None
    if target is None or os.path.lexists(os.path.join(os.path.dirname(entry.path), target)):
        return None  # a link to a folder, or something else that is no export: not a delivery
    return "dangling_symlink", (
        f"dangling symlink to {_printable(target)}: nothing is there; "
        "restore the file or remove the link"
    )


def _is_hidden(name: str) -> bool:
    return name.startswith(".") or name == QUARANTINE_DIR_NAME


def _delivery(path: str, name: str, stat: os.stat_result) -> Delivery:
    return Delivery(_printable(name), size=stat.st_size, arrived=stat.st_mtime, ref=path)


def _printable(name: str) -> str:
    """A file name as valid UTF-8 text: bytes that are not UTF-8 become ``\\xe9`` escapes.

    Linux allows any bytes in a name; the ledger, keys and messages need text.
    The escaped form is stable, so the file keeps one identity from run to run.
    """
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
