"""Where an extract got to in the source's transaction history: the cursor of one table.

PostgreSQL stamps every row version with the id of the transaction that wrote
it (the system column ``xmin``). A cursor records, at the moment an extract
began, the next transaction id the source would assign (``next_xid``) and every
id below it still in progress (``open_xids``: subtransactions and prepared
transactions included; see :func:`brewline.totesys.extract._transactions`).
The next extract takes exactly the row
versions written by a transaction at or after ``next_xid`` or in ``open_xids``
(:func:`since`): whatever ``last_updated`` says, whatever the writers' clocks
or time zones, however late they commit. See docs/totesys.md.

Ids are kept as 64-bit ``xid8`` (epoch and id, never wrapping); ``xmin`` is 32
bits and wraps every 2^32 transactions, so the predicate compares it by
``age(xmin)`` (how many transactions ago it was assigned, modulo 2^32) with the
age of ``next_xid``. Wrap-around and frozen rows, explicitly:

- ``age()`` of a frozen id (``FrozenTransactionId``, rows of a pre-9.4 cluster
  that ``pg_upgrade`` kept) is 2^31 - 1: older than any cursor, never taken;
- a row frozen since 9.4 keeps its raw ``xmin``, whose age stays exact while
  it is under 2^31; a raw ``xmin`` more than 2^31 transactions old (it wrapped)
  has a meaningless age: one that comes out negative is never taken, one that
  lands after ``next_xid`` is taken again once (a duplicate version, which the
  model de-duplicates: never a loss);
- a cursor more than :data:`_OLDEST` transactions behind the source, or ahead
  of it (the source was restored into another cluster), cannot be compared:
  that table is read whole once (:func:`is_usable`).

A cursor of the old format (a ``last_updated`` timestamp) is not a position in
the transaction history: the table is read whole once, then continues by id.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from psycopg import sql

__all__ = ["XidCursor", "parse", "since", "watermark"]

_XID_SPACE = 2**32
_OLDEST = 2**31 - 2**28
"""The farthest a cursor may lag the source and still be compared by ``age()`` (which
is exact up to 2^31), leaving room for the ids assigned while an extract reads."""


@dataclass(frozen=True)
class XidCursor:
    """A table's position: ``next_xid``, ``open_xids`` (64-bit ids) and ``watermark``, the
    source's UTC clock when they were read: every commit before it is in the lake."""

    next_xid: int
    open_xids: tuple[int, ...]
    watermark: dt.datetime

    def dump(self) -> str:
        return json.dumps(
            {
                "watermark": self.watermark.isoformat(timespec="milliseconds"),
                "next_xid": self.next_xid,
                "open_xids": list(self.open_xids),
            }
        )

    def is_idle_at(self, source_next_xid: int) -> bool:
        """Whether no transaction can have written since this cursor was read, now that the
        source's next id is ``source_next_xid``: none was open then, and no id was assigned
        since (every write takes one). Compared with the source's own next id, not with a
        new cursor's: a cursor that starts at the oldest open id (``_MOST_ASKED`` in
        :mod:`brewline.totesys.extract`) is not the source's next id."""
        return not self.open_xids and source_next_xid == self.next_xid


def parse(value: str | None) -> XidCursor | None:
    """The cursor stored in the ledger; None for none or one of the old timestamp format."""
    if not value or not value.startswith("{"):
        return None
    data = json.loads(value)
    return XidCursor(
        int(data["next_xid"]),
        tuple(int(x) for x in data["open_xids"]),
        dt.datetime.fromisoformat(data["watermark"]),
    )


def watermark(value: str) -> dt.datetime | None:
    """The time a stored cursor covers (UTC): an :class:`XidCursor`'s, or a plain ISO time
    (other sources' cursors, and this one's before); None for anything else."""
    try:
        cursor = parse(value)
        return cursor.watermark if cursor else dt.datetime.fromisoformat(value)
    except (ValueError, KeyError, TypeError):
        return None


def is_usable(cursor: XidCursor, source_next_xid: int) -> bool:
    """Whether ``cursor`` can be compared with the source whose next id is given."""
    return 0 <= source_next_xid - cursor.next_xid <= _OLDEST


def since(cursor: XidCursor) -> sql.Composed:
    """The predicate of row versions not yet extracted: written at or after
    ``next_xid`` (``age`` at most that of ``next_xid``), or by an open transaction.

    The age of ``next_xid`` is an InitPlan (computed once, not per row); ``age`` is
    stable in a transaction, so both ages count from the same id.
    """
    from psycopg import sql

    def xid(full: int) -> sql.Composable:
        return sql.Literal(str(full % _XID_SPACE))

    after = sql.SQL("age(xmin) BETWEEN 1 AND (SELECT age({next}::xid))").format(
        next=xid(cursor.next_xid)
    )
    if not cursor.open_xids:
        return after
    listed = sql.SQL(", ").join(sql.SQL("{}::xid").format(xid(x)) for x in cursor.open_xids)
    return sql.SQL("({after} OR xmin IN ({listed}))").format(after=after, listed=listed)
