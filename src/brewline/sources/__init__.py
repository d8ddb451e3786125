"""Sources: where deliveries come from, behind one small interface.

A :class:`Source` lists its deliveries in delivery order and reads their bytes;
its :class:`Quarantine` keeps the raw text of rejected lines next to the
deliveries (a place the chain already treats as personal data). The pipeline
sees nothing else of a source, so a new one (an S3 prefix, an OLTP extract) is
one module implementing these two interfaces, plus a line in
:func:`open_source`.

A delivery's identity is a name *within its source* (a folder's relative
POSIX path, an object's ``bucket/key``), never a local path: it is half of
every sale's natural key, so it must mean the same on every machine. Its
content fingerprint (SHA-256) is taken by the pipeline from the bytes it reads,
the same way for every source, so "the same bytes again" means one thing.

    >>> from pathlib import Path
    >>> source = open_source([Path("landing")], quarantine=None)  # doctest: +SKIP
    >>> [d.name for d in source.deliveries()]  # doctest: +SKIP
    ['leeds_09-05-2023_09-00-00.csv', ...]
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Delivery",
    "Location",
    "Quarantine",
    "Source",
    "delivery_order",
    "is_delivery_name",
    "is_ignored_name",
    "open_source",
]

QUARANTINE_DIR_NAME = "_quarantine"
QUARANTINE_SUFFIX = ".rejected.csv"
_COPY_SUFFIX = re.compile(r"^(?P<stem>.*?) \((?P<n>[0-9]+)\)(?P<ext>\.[^.]*)$")

Location = Path | str
"""Where something was written: a local path, or a URL for remote stores."""


@dataclass(frozen=True)
class Delivery:
    """One delivery as listed by its source: the unit of work.

    ``name`` is its identity in the ledger; ``arrived`` (seconds since the
    epoch) orders deliveries, so that a later delivery of a branch-day wins;
    ``ref`` is how its source finds it again (a path, an object key), which
    nothing else reads. ``problem`` is ``(reason, message)`` when listing already
    showed that it cannot be read (a symlink loop, a dangling link): it is reported
    ``failed`` with that reason, not read.
    """

    name: str
    size: int
    arrived: float
    ref: str
    problem: tuple[str, str] | None = None


class Quarantine(ABC):
    """Where raw rejected lines are written: once per delivery version, atomically."""

    @abstractmethod
    def put(self, name: str, content: bytes) -> Location:
        """Write ``content`` as ``name`` (replacing any older one); return where it went."""


class Source(ABC):
    """Lists and reads deliveries; never modifies or deletes them."""

    quarantine: Quarantine
    ignored: Sequence[str] = ()
    """The files the last :meth:`deliveries` passed over as not exports (see
    :func:`is_ignored_name`), by name."""

    @abstractmethod
    def deliveries(self) -> list[Delivery]:
        """Every delivery now present, in delivery order (oldest first); sets ``ignored``."""

    @abstractmethod
    def read(self, delivery: Delivery) -> bytes:
        """A delivery's bytes. Raises ``OSError`` when it vanished or cannot be read."""

    def read_all(self, deliveries: Sequence[Delivery]) -> Iterator[bytes | OSError]:
        """Each delivery's bytes, or the ``OSError`` that stopped it, in order.

        Remote sources override this to fetch a batch concurrently.
        """
        for delivery in deliveries:
            try:
                yield self.read(delivery)
            except OSError as exc:
                yield exc


def delivery_order(delivery: Delivery) -> tuple[float, str, int]:
    """Oldest first, then by name; a browser's ``leeds (1).csv`` after ``leeds.csv``.

    When two deliveries cover the same branch-day the later one wins, so every
    source lists in this order.
    """
    match = _COPY_SUFFIX.match(delivery.name)
    if match is None:
        return (delivery.arrived, delivery.name, 0)
    return (delivery.arrived, match["stem"] + match["ext"], int(match["n"]))


def is_delivery_name(relative: str) -> bool:
    """Whether a name under a landing root is a delivery: a visible ``.csv`` that is not
    a quarantine file and not in a hidden or quarantine folder."""
    return (
        _visible(relative)
        and relative.lower().endswith(".csv")
        and not relative.endswith(QUARANTINE_SUFFIX)
    )


def is_ignored_name(relative: str) -> bool:
    """Whether a name under a landing root is a visible file of another type (``report.pdf``,
    ``sales.xlsx``): not loaded, but counted and named in the run's report, so an export
    saved in the wrong format is noticed. Hidden entries (``.DS_Store``) and Brewline's
    quarantine are passed over without a word."""
    return _visible(relative) and not relative.lower().endswith(".csv")


def _visible(relative: str) -> bool:
    parts = [part for part in relative.split("/") if part not in ("", ".")]  # as PurePosixPath
    return (
        bool(parts)
        and not relative.endswith("/")
        and not any(part.startswith(".") or part == QUARANTINE_DIR_NAME for part in parts)
    )


def open_source(
    locations: Sequence[Location],
    *,
    quarantine: Location | None,
    only: Sequence[str] | None = None,
) -> Source:
    """The source for what ``brewline run`` was given: the one wiring place for sources.

    ``locations`` are local paths or one ``s3://bucket/prefix/``; ``quarantine``
    is the configured place, or None for the source's default. ``only`` limits
    the source to those object keys, or file paths (what an event or a watcher named).
    """
    from brewline.errors import ConfigError

    remote = [str(x) for x in locations if _is_url(x)]
    if remote:
        from brewline.sources.s3 import S3Prefix, S3Source

        if len(locations) > 1:
            raise ConfigError("give one s3:// location per run, without local paths beside it")
        if quarantine is not None and not _is_url(quarantine):
            raise ConfigError("an S3 landing area keeps its quarantine in S3: give an s3:// one")
        return S3Source(
            S3Prefix.parse(remote[0]),
            quarantine=S3Prefix.parse(str(quarantine)) if quarantine is not None else None,
            keys=only,
        )
    from brewline.sources.folder import FolderSource

    if quarantine is not None and _is_url(quarantine):
        raise ConfigError("a local landing folder keeps its quarantine locally: give a folder")
    return FolderSource(
        [Path(x) for x in locations],
        quarantine=None if quarantine is None else Path(quarantine),
        only=None if only is None else [Path(x) for x in only],
    )


def _is_url(location: Location) -> bool:
    text = str(location)
    if text.startswith("s3://"):
        return True
    if "://" in text:
        from brewline.errors import ConfigError

        raise ConfigError(f"{text!r}: only local folders and s3:// locations can be read")
    return False
