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

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Delivery", "Location", "Quarantine", "Source", "open_source"]

Location = Path | str
"""Where something was written: a local path, or a URL for remote stores."""


@dataclass(frozen=True)
class Delivery:
    """One delivery as listed by its source: the unit of work.

    ``name`` is its identity in the ledger; ``arrived`` (seconds since the
    epoch) orders deliveries, so that a later delivery of a branch-day wins;
    ``ref`` is how its source finds it again (a path, an object key), which
    nothing else reads.
    """

    name: str
    size: int
    arrived: float
    ref: str


class Quarantine(ABC):
    """Where raw rejected lines are written: once per delivery version, atomically."""

    @abstractmethod
    def put(self, name: str, content: bytes) -> Location:
        """Write ``content`` as ``name`` (replacing any older one); return where it went."""


class Source(ABC):
    """Lists and reads deliveries; never modifies or deletes them."""

    quarantine: Quarantine

    @abstractmethod
    def deliveries(self) -> list[Delivery]:
        """Every delivery now present, in delivery order (oldest first)."""

    @abstractmethod
    def read(self, delivery: Delivery) -> bytes:
        """A delivery's bytes. Raises ``OSError`` when it vanished or cannot be read."""


def open_source(paths: Sequence[Path], *, quarantine: Path | None) -> Source:
    """The source for what ``brewline run`` was given: the one wiring place for sources.

    ``quarantine`` is the configured folder, or None for ``_quarantine`` beside
    the first path.
    """
    from brewline.sources.folder import FolderSource

    return FolderSource(paths, quarantine=quarantine)
