"""Brewline's exception tree.

Every error Brewline raises on purpose derives from :class:`BrewlineError`, so
the CLI can turn it into a clear message and an exit code instead of a traceback.
Each error is either *terminal* (retrying cannot help: fix the input or the
settings) or *transient* (the world may change: retry with backoff)::

    BrewlineError
    ├── ConfigError            terminal: a setting is missing or invalid
    ├── FileRejected           terminal: a whole input file cannot be understood
    ├── WarehouseError         terminal: the warehouse refused (schema, SQL, constraint)
    │   ├── SchemaVersionError terminal: the warehouse schema needs `brewline init`
    │   └── WarehouseBusy      transient: another runner holds the warehouse
    └── TransientError         transient: connection lost, server restarting, ...

Messages never contain customer names or card numbers: they name a file, a line
and a rule, never the content of a row.
"""

from __future__ import annotations

import errno
import os
import re

__all__ = [
    "BrewlineError",
    "ConfigError",
    "FileRejected",
    "SchemaVersionError",
    "TransientError",
    "WarehouseBusy",
    "WarehouseError",
    "first_line",
    "out_of_room",
]


class BrewlineError(Exception):
    """Root of every error Brewline raises on purpose."""

    transient = False

    def __init__(self, message: str, *, source: str | None = None, line: int | None = None):
        self.message = message
        self.source = source
        self.line = line
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = self.source or ""
        if self.line is not None:
            where = f"{where}:{self.line}" if where else f"line {self.line}"
        return f"{where}: {self.message}" if where else self.message


class ConfigError(BrewlineError):
    """A setting is missing or invalid; the message says which and how to set it."""


class FileRejected(BrewlineError):
    """A whole input file cannot be understood; the file is rejected, not guessed at.

    ``reason`` is a short stable code (``unrecognised_layout``, ``empty_file``, ...)
    stored in the ledger; the message tells a person what to do about it.
    """

    def __init__(self, reason: str, message: str, *, source: str | None = None):
        self.reason = reason
        super().__init__(message, source=source)


class WarehouseError(BrewlineError):
    """The warehouse refused an operation for a reason retrying will not fix."""


class SchemaVersionError(WarehouseError):
    """The warehouse schema is older or newer than this Brewline expects."""


class TransientError(BrewlineError):
    """A failure that may go away on its own (connection lost, server restarting)."""

    transient = True


class WarehouseBusy(TransientError):
    """Another runner holds the warehouse; wait and retry."""


def first_line(exc: BaseException) -> str:
    """An error's first non-blank line (drivers append context and hints below it),
    or its type's name when it says nothing."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


_OUT_OF_ROOM = {
    errno.ENOSPC: ("disk full", "free space and run again"),
    errno.EDQUOT: ("disk quota exceeded", "free space or raise the quota and run again"),
    errno.EFBIG: ("file size limit reached", "raise the limit (ulimit -f) and run again"),
    errno.EROFS: ("read-only file system", "make it writable and run again"),
}
"""OS errors that waiting cannot cure: a run stops at once instead of retrying them."""
_QUOTED_PATH = re.compile(r'file "([^"]+)"')


def out_of_room(error: BaseException | str, where: str) -> str | None:
    """``disk full writing <path>: free space and run again`` when ``error`` is a full
    disk (or a quota, a file size limit, a read-only file system), else None.

    ``error`` is an ``OSError`` or a driver's message quoting ``strerror`` (DuckDB's
    names the file it could not write: that path is said rather than ``where``).

    >>> out_of_room('Could not write file "/d/w.wal": No space left on device', "/d/w")
    'disk full writing /d/w.wal: free space and run again'
    """
    for code, (what, fix) in _OUT_OF_ROOM.items():
        if isinstance(error, OSError):
            if error.errno != code:
                continue
            path = error.filename or where
        elif os.strerror(code) in str(error):
            quoted = _QUOTED_PATH.search(str(error))
            path = quoted.group(1) if quoted else where
        else:
            continue
        return f"{what} writing {path}: {fix}"
    return None
