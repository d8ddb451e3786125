"""A generated totesys database: the schema, a bulk fill, and a writer that keeps writing.

Three parts, each usable alone:

* :func:`create_source` creates the eleven source tables (idempotent).
* :func:`fill` loads two years of data of the shape the shared README describes,
  vectorised with numpy and polars and bulk-loaded with ``COPY``: a million sales
  orders and their purchase orders, transactions and payments in well under a minute.
  The same ``(sales_orders, seed, end)`` gives the same rows, byte for byte.
* :class:`Writer` keeps inserting and updating rows while an extract runs, and
  makes the two cases a watermark extractor gets wrong on demand: a transaction
  that commits long after its ``last_updated`` (:meth:`Writer.long_transaction`)
  and a change that does not move ``last_updated`` (:meth:`Writer.silent_change`).

``last_updated`` is set by the writer (the application), never by a trigger: that is
what makes "a change that does not move ``last_updated``" possible, as in the real
system. Timestamps are UTC wall-clock times in ``timestamp(3)`` columns; the writer's
sessions run with ``TimeZone=UTC`` and write ``last_updated = now()``, the start of
the writing transaction, so an extractor may rely on::

    last_updated >= date_trunc('milliseconds', <start of the transaction that wrote it>)

(the column rounds ``now()`` to the millisecond, hence the truncation). Compare it
with ``xact_start`` / ``now()`` in a UTC session too.

Usage::

    >>> from brewline.totesys.generate import create_source, fill, Writer
    >>> create_source(url)  # doctest: +SKIP
    >>> fill(url, sales_orders=10_000, seed=1)  # doctest: +SKIP
    {'address': 30, 'counterparty': 20, ..., 'sales_order': 10000, ..., 'payment': 15000}
    >>> with Writer(url, seed=1) as writer:  # doctest: +SKIP
    ...     writer.long_transaction(2.0)  # commits rows stamped two seconds ago
    >>> writer.written["sales_order.inserted"]  # doctest: +SKIP
    41
"""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import polars as pl
import psycopg
from psycopg import sql

from brewline.totesys import SOURCE_TABLES

__all__ = [
    "PAYMENT_TYPES",
    "SOURCE_TABLES",
    "Writer",
    "create_source",
    "fill",
    "generate_tables",
]

CURRENCIES: tuple[str, ...] = ("GBP", "USD", "EUR")
PAYMENT_TYPES: tuple[str, ...] = (
    "SALES_RECEIPT",
    "SALES_REFUND",
    "PURCHASE_PAYMENT",
    "PURCHASE_REFUND",
)

# --------------------------------------------------------------------------------------
# Schema
# --------------------------------------------------------------------------------------

_MONEY = "numeric(10,2) NOT NULL"
_ACCOUNT = "text NOT NULL CHECK ({0} ~ '^[0-9]{{8}}$')"  # 8 digits, leading zeros kept

# Columns besides <table>_id, created_at and last_updated; "-> parent" marks a foreign key.
_COLUMNS: dict[str, tuple[tuple[str, str], ...]] = {
    "address": (
        ("address_line_1", "text NOT NULL"),
        ("address_line_2", "text"),
        ("district", "text"),
        ("city", "text NOT NULL"),
        ("postal_code", "text NOT NULL"),
        ("country", "text NOT NULL"),
        ("phone", "text NOT NULL"),
    ),
    "counterparty": (
        ("counterparty_legal_name", "text NOT NULL"),
        ("legal_address_id", "-> address"),
        ("commercial_contact", "text"),
        ("delivery_contact", "text"),
    ),
    "currency": (("currency_code", "char(3) NOT NULL UNIQUE"),),
    "department": (
        ("department_name", "text NOT NULL"),
        ("location", "text"),
        ("manager", "text"),
    ),
    "design": (
        ("design_name", "text NOT NULL"),
        ("file_location", "text NOT NULL"),
        ("file_name", "text NOT NULL"),
    ),
    "staff": (
        ("first_name", "text NOT NULL"),
        ("last_name", "text NOT NULL"),
        ("department_id", "-> department"),
        ("email_address", "text NOT NULL"),
    ),
    "sales_order": (
        ("design_id", "-> design"),
        ("staff_id", "-> staff"),
        ("counterparty_id", "-> counterparty"),
        ("units_sold", "integer NOT NULL"),
        ("unit_price", _MONEY),
        ("currency_id", "-> currency"),
        ("agreed_delivery_date", "text NOT NULL"),
        ("agreed_payment_date", "text NOT NULL"),
        ("agreed_delivery_location_id", "-> address"),
    ),
    "purchase_order": (
        ("staff_id", "-> staff"),
        ("counterparty_id", "-> counterparty"),
        ("item_code", "text NOT NULL"),
        ("item_quantity", "integer NOT NULL"),
        ("item_unit_price", _MONEY),
        ("currency_id", "-> currency"),
        ("agreed_delivery_date", "text NOT NULL"),
        ("agreed_payment_date", "text NOT NULL"),
        ("agreed_delivery_location_id", "-> address"),
    ),
    "payment_type": (("payment_type_name", "text NOT NULL UNIQUE"),),
    "transaction": (
        (
            "transaction_type",
            "text NOT NULL CHECK (transaction_type IN ('SALE', 'PURCHASE'))",
        ),
        ("sales_order_id", "-> sales_order NULL"),
        ("purchase_order_id", "-> purchase_order NULL"),
    ),
    "payment": (
        ("transaction_id", "-> transaction"),
        ("counterparty_id", "-> counterparty"),
        ("payment_amount", _MONEY),
        ("currency_id", "-> currency"),
        ("payment_type_id", "-> payment_type"),
        ("paid", "boolean NOT NULL"),
        ("payment_date", "text NOT NULL"),
        ("company_ac_number", _ACCOUNT.format("company_ac_number")),
        ("counterparty_ac_number", _ACCOUNT.format("counterparty_ac_number")),
    ),
}

_TABLE_CHECKS: dict[str, str] = {
    "transaction": "CHECK ((transaction_type = 'SALE') = (sales_order_id IS NOT NULL)"
    " AND (transaction_type = 'PURCHASE') = (purchase_order_id IS NOT NULL))",
}


def columns(table: str) -> tuple[str, ...]:
    """All columns of a source table in order: id, created_at, last_updated, the rest.

    >>> columns("currency")
    ('currency_id', 'created_at', 'last_updated', 'currency_code')
    """
    return (f"{table}_id", "created_at", "last_updated", *(c for c, _ in _COLUMNS[table]))


def _foreign_keys(table: str) -> list[tuple[str, str, str]]:
    """``(constraint name, column, parent table)`` for each foreign key of ``table``."""
    keys = []
    for column, kind in _COLUMNS[table]:
        if kind.startswith("->"):
            parent = kind.split()[1]
            keys.append((f"{table}_{column}_fkey", column, parent))
    return keys


def _column_ddl(table: str, column: str, kind: str) -> str:
    if not kind.startswith("->"):
        return f"{column} {kind}"
    nullable = kind.endswith("NULL") and not kind.endswith("NOT NULL")
    return f"{column} integer{'' if nullable else ' NOT NULL'}"


def _table_ddl(table: str) -> str:
    """``CREATE TABLE IF NOT EXISTS`` for one table, foreign keys added separately.

    Ids are identity columns generated *by default*: :func:`fill` sets them itself
    (deterministic ids) and then moves the sequence past them for later inserts.
    ``last_updated`` has no default and no trigger: the application sets it.
    """
    parts = [
        f"{table}_id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
        "created_at timestamp(3) NOT NULL",
        "last_updated timestamp(3) NOT NULL",
        *(_column_ddl(table, column, kind) for column, kind in _COLUMNS[table]),
    ]
    if table in _TABLE_CHECKS:
        parts.append(_TABLE_CHECKS[table])
    body = ",\n    ".join(parts)
    return f'CREATE TABLE IF NOT EXISTS "{table}" (\n    {body}\n)'


def _add_foreign_key_ddl(table: str, name: str, column: str, parent: str) -> str:
    return (
        f'ALTER TABLE "{table}" ADD CONSTRAINT {name} '
        f'FOREIGN KEY ({column}) REFERENCES "{parent}" ({parent}_id)'
    )


def _index_ddl(table: str) -> str:
    # Extractors filter on last_updated; the id breaks ties for keyset paging.
    return (
        f"CREATE INDEX IF NOT EXISTS {table}_last_updated_idx "
        f'ON "{table}" (last_updated, {table}_id)'
    )


def create_source(conninfo: str) -> None:
    """Create the eleven totesys tables, their foreign keys and ``last_updated`` indexes.

    Idempotent: existing tables, constraints and indexes are left as they are.

    >>> create_source("postgresql://postgres@127.0.0.1:5432/totesys")  # doctest: +SKIP
    """
    with psycopg.connect(conninfo) as con, con.transaction():
        for table in SOURCE_TABLES:
            con.execute(_table_ddl(table).encode())
            con.execute(_index_ddl(table).encode())
        existing = {
            row[0]
            for row in con.execute(
                "SELECT conname FROM pg_constraint WHERE contype = 'f' "
                "AND connamespace = current_schema()::regnamespace"
            )
        }
        for table in SOURCE_TABLES:
            for name, column, parent in _foreign_keys(table):
                if name not in existing:
                    con.execute(_add_foreign_key_ddl(table, name, column, parent).encode())


# --------------------------------------------------------------------------------------
# Vocabulary (fake but realistic; a few names carry apostrophes, as the real data does)
# --------------------------------------------------------------------------------------

_FIRST_TEXT = (
    "Ada Alfie Amara Amelia Anya Arthur Beatrice Ciaran Connor Dara Declan Eilidh Eleanor "
    "Ewan Fatima Finn Grace Hamish Imran Isla Jack Jeremie Kai Leah Liam Lucy Maeve Meena "
    "Mohammed Niamh Oisin Olivia Pavel Priya Rhys Rosa Saoirse Sean Siobhan Tariq Theo "
    "Yusuf Zoe Zainab Deron Jazmyn Meda Imani Ana Magdalena Korey Irving Gustavo Jetta"
)
_FIRST_NAMES: tuple[str, ...] = tuple(_FIRST_TEXT.split())
_APOSTROPHE_NAMES: tuple[str, ...] = ("O'Keefe", "O'Connell", "D'Amore", "O'Hara", "O'Reilly")
_LAST_TEXT = (
    "Abbott Ahmed Barrett Byrne Chowdhury Clarke Doherty Evans Fahey Flanagan Gallagher "
    "Hamill Hughes Jones Kaur Kowalski Lehner MacLeod Mensah Nowak Okafor Patel Quigley "
    "Reid Rossi Schmidt Stehr Sutherland Thompson Wong Yilmaz Zieme Bashirian Rutherford "
    "Kohler Ratke Mraz Lind Wiza Leannon Hahn Kuhic"
)
_LAST_NAMES: tuple[str, ...] = (*_LAST_TEXT.split(), *_APOSTROPHE_NAMES)
_STREET_KINDS = ("Road", "Street", "Lane", "Via", "Avenue", "Close", "Crescent", "Way", "Mews")
_FLATS = ("Flat", "Unit", "Apt.", "Suite")
_DISTRICTS = (
    "Avon",
    "Bedfordshire",
    "Cheshire",
    "Buckinghamshire",
    "Cambridgeshire",
    "Greater Manchester",
    "West Yorkshire",
    "Kent",
)
_CITIES: tuple[tuple[str, str], ...] = (
    ("Manchester", "United Kingdom"),
    ("Leeds", "United Kingdom"),
    ("London", "United Kingdom"),
    ("Belfast", "United Kingdom"),
    ("Cork", "Ireland"),
    ("Dublin", "Ireland"),
    ("Lyon", "France"),
    ("Rotterdam", "Netherlands"),
    ("Hamburg", "Germany"),
    ("Boston", "United States"),
    ("Austin", "United States"),
    ("Porto", "Portugal"),
    ("Gdańsk", "Poland"),
    ("Århus", "Denmark"),
)
_FIRMS = ("and Sons", "Group", "LLC", "Inc", "Ltd", "& Co", "Partners")
_DEPARTMENTS: tuple[tuple[str, str], ...] = (
    ("Sales", "Manchester"),
    ("Purchasing", "Manchester"),
    ("Production", "Leeds"),
    ("Dispatch", "Leds"),  # sic: the real data has typos too
    ("Finance", "Manchester"),
    ("Facilities", "Manchester"),
    ("Communications", "Leeds"),
    ("HR", "Leeds"),
)
_DESIGN_TEXT = (
    "Wooden Bronze Steel Granite Soft Fresh Frozen Rubber Cotton Plastic Concrete Metal "
    "Bespoke Handmade Sleek Rustic Practical Ergonomic Gorgeous Awesome Generic Licensed "
    "Refined Unbranded Intelligent Fantastic Small Recycled Oriental Electronic Modern "
    "Luxurious Tasty Incredible Handcrafted Elegant"
)
_DESIGN_NAMES: tuple[str, ...] = tuple(_DESIGN_TEXT.split())
_FILE_LOCATIONS = (
    "/usr/share",
    "/private",
    "/usr/local/src",
    "/System",
    "/home/user/dir",
    "/Users",
    "/opt/include",
    "/var/mail",
    "/etc/ppp",
    "/lost+found",
    "/usr/ports",
    "/Network",
)
_EMAIL_DOMAIN = "terrifictotes.com"
_ALNUM = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"), dtype="<U1")
_LOWER = np.array(list("abcdefghijklmnopqrstuvwxyz"), dtype="<U1")

# --------------------------------------------------------------------------------------
# Generation: pure, deterministic, vectorised over the bulk tables
# --------------------------------------------------------------------------------------

_MS = 1
_SECOND = 1_000 * _MS
_HOUR = 3_600 * _SECOND
_DAY = 24 * _HOUR
_SPAN_DAYS = 730  # two years
_OPEN, _CLOSE = 9 * _HOUR, 17 * _HOUR + 30 * 60 * _SECOND  # office hours
_SMALL_SIZES = {
    "address": 30,
    "counterparty": 20,
    "department": len(_DEPARTMENTS),
    "staff": 20,
}
# Tables whose ids are separate seeds of the generator: adding a table never changes another.
_STREAM = {table: i for i, table in enumerate(SOURCE_TABLES)}


def _rng(seed: int, table: str) -> np.random.Generator:
    return np.random.default_rng([seed, 10, _STREAM[table]])


def design_count(sales_orders: int) -> int:
    """Designs for a source of this size: hundreds for ~10k sales orders.

    >>> design_count(10_000), design_count(100), design_count(1_000_000)
    (333, 20, 1000)
    """
    return min(1_000, max(20, sales_orders // 30))


def _end_ms(end: dt.datetime | None) -> int:
    """``end`` as UTC milliseconds since the epoch (naive means UTC; default: now)."""
    if end is None:
        end = dt.datetime.now(dt.UTC)
    if end.tzinfo is not None:
        end = end.astimezone(dt.UTC).replace(tzinfo=None)
    return (end - dt.datetime(1970, 1, 1)) // dt.timedelta(milliseconds=1)


def _office_times(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """``n`` sorted instants on weekdays in office hours, on whole days in ``[lo, hi)``."""
    first, last = -(-lo // _DAY), hi // _DAY  # the day of ``hi`` itself is left out
    days = np.arange(first, last, dtype=np.int64)
    days = days[(days + 3) % 7 < 5]  # 1970-01-01 was a Thursday: Monday is 0
    day = days[rng.integers(0, len(days), n)]
    times: np.ndarray = np.sort(day * _DAY + rng.integers(_OPEN, _CLOSE, n))
    return times


def _later(rng: np.random.Generator, t: np.ndarray, mean_days: float, end: int) -> np.ndarray:
    """An instant after each of ``t`` (at least 1 ms, about ``mean_days`` on average)."""
    delay = 1 + (rng.exponential(mean_days * _DAY, len(t))).astype(np.int64)
    later: np.ndarray = np.minimum(t + delay, end)
    return later


def _updated(rng: np.random.Generator, created: np.ndarray, share: float, end: int) -> np.ndarray:
    """``last_updated``: ``created``, or later for a ``share`` of rows (a second version)."""
    moved = rng.random(len(created)) < share
    updated: np.ndarray = np.where(moved, _later(rng, created, 5.0, end), created)
    return updated


def _timestamps(ms: np.ndarray) -> pl.Series:
    return pl.Series(ms, dtype=pl.Int64).cast(pl.Datetime("ms"))


def _dates(days: np.ndarray) -> pl.Series:
    """Epoch days as text ``yyyy-mm-dd``, the way the source stores agreed dates."""
    return pl.Series(days.astype(np.int32)).cast(pl.Date).cast(pl.String)


def _money(cents: np.ndarray) -> pl.Series:
    """Integer cents as exact text with two decimals (``1234`` -> ``12.34``)."""
    s = pl.Series(cents, dtype=pl.Int64)
    frame = pl.DataFrame({"units": s // 100, "cents": s % 100})
    return frame.select(
        pl.format("{}.{}", "units", pl.col("cents").cast(pl.String).str.zfill(2))
    ).to_series()


def _pick(labels: tuple[str, ...], idx: np.ndarray) -> pl.Series:
    return pl.Series(values=list(labels), dtype=pl.String).gather(idx)


def _codes(rng: np.random.Generator, n: int, alphabet: np.ndarray, width: int) -> np.ndarray:
    """``n`` random strings of ``width`` characters from ``alphabet``, vectorised."""
    chars = np.ascontiguousarray(alphabet[rng.integers(0, len(alphabet), (n, width))])
    codes: np.ndarray = chars.view(f"<U{width}").ravel()
    return codes


def _accounts(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` distinct 8-digit bank account numbers (leading zeros allowed)."""
    numbers = rng.choice(100_000_000, size=n, replace=False)
    accounts: np.ndarray = np.char.zfill(numbers.astype("<U8"), 8)
    return accounts


def _frame(
    table: str, ids: int, created: np.ndarray, updated: np.ndarray, **values: Any
) -> pl.DataFrame:
    data = {
        f"{table}_id": pl.Series(np.arange(1, ids + 1, dtype=np.int32)),
        "created_at": _timestamps(created),
        "last_updated": _timestamps(updated),
        **values,
    }
    return pl.DataFrame(data).select(columns(table))


def _person(rng: np.random.Generator, n: int) -> tuple[list[str], list[str]]:
    first = [_FIRST_NAMES[i] for i in rng.integers(0, len(_FIRST_NAMES), n)]
    last = [_LAST_NAMES[i] for i in rng.integers(0, len(_LAST_NAMES), n)]
    return first, last


def _with_apostrophe(rng: np.random.Generator, names: list[str]) -> list[str]:
    """Make sure at least one name carries an apostrophe, whatever the seed."""
    if names and not any("'" in name for name in names):
        names[int(rng.integers(len(names)))] = _APOSTROPHE_NAMES[0]
    return names


@dataclass(frozen=True)
class _Clock:
    start: int  # when the company's reference data was created
    end: int  # nothing happens after this


def _small_tables(seed: int, clock: _Clock) -> dict[str, pl.DataFrame]:
    """The reference tables: tens of rows each, created at the start, a few updated."""
    n = _SMALL_SIZES
    frames: dict[str, pl.DataFrame] = {}
    born = {table: np.full(size, clock.start, dtype=np.int64) for table, size in n.items()}

    rng = _rng(seed, "address")
    city = rng.integers(0, len(_CITIES), n["address"])
    street = rng.integers(0, len(_LAST_NAMES), n["address"])
    kind = rng.integers(0, len(_STREET_KINDS), n["address"])
    line_2 = [
        f"{_FLATS[int(f)]} {int(k)}" if has else None
        for has, f, k in zip(
            rng.random(n["address"]) < 0.5,
            rng.integers(0, len(_FLATS), n["address"]),
            rng.integers(1, 60, n["address"]),
            strict=True,
        )
    ]
    frames["address"] = _frame(
        "address",
        n["address"],
        born["address"],
        _updated(rng, born["address"], 0.2, clock.end),
        address_line_1=[
            f"{int(no)} {_LAST_NAMES[int(s)]} {_STREET_KINDS[int(k)]}"
            for no, s, k in zip(rng.integers(1, 9999, n["address"]), street, kind, strict=True)
        ],
        address_line_2=pl.Series(line_2, dtype=pl.String),
        district=pl.Series(
            [
                _DISTRICTS[int(d)] if has else None
                for has, d in zip(
                    rng.random(n["address"]) < 0.6,
                    rng.integers(0, len(_DISTRICTS), n["address"]),
                    strict=True,
                )
            ],
            dtype=pl.String,
        ),
        city=[_CITIES[int(c)][0] for c in city],
        postal_code=[
            _postal_code(rng)
            if _CITIES[int(c)][1] == "United Kingdom"
            else f"{rng.integers(10_000, 99_999)}"
            for c in city
        ],
        country=[_CITIES[int(c)][1] for c in city],
        phone=[f"{rng.integers(1000, 9999)} {rng.integers(100_000, 999_999)}" for _ in city],
    )

    rng = _rng(seed, "counterparty")
    size = n["counterparty"]
    partners = rng.integers(0, len(_LAST_NAMES), (size, 3))
    legal = _with_apostrophe(
        rng,
        [_firm_name(rng, [_LAST_NAMES[int(i)] for i in row]) for row in partners],
    )
    commercial, delivery = _person(rng, size), _person(rng, size)
    frames["counterparty"] = _frame(
        "counterparty",
        size,
        born["counterparty"],
        _updated(rng, born["counterparty"], 0.2, clock.end),
        counterparty_legal_name=legal,
        legal_address_id=pl.Series(rng.integers(1, n["address"] + 1, size), dtype=pl.Int32),
        commercial_contact=[f"{a} {b}" for a, b in zip(*commercial, strict=True)],
        delivery_contact=[f"{a} {b}" for a, b in zip(*delivery, strict=True)],
    )

    rng = _rng(seed, "currency")
    three = np.full(len(CURRENCIES), clock.start, dtype=np.int64)
    frames["currency"] = _frame("currency", 3, three, three, currency_code=list(CURRENCIES))

    rng = _rng(seed, "department")
    size = n["department"]
    managers = _person(rng, size)
    frames["department"] = _frame(
        "department",
        size,
        born["department"],
        _updated(rng, born["department"], 0.2, clock.end),
        department_name=[name for name, _ in _DEPARTMENTS],
        location=[where for _, where in _DEPARTMENTS],
        manager=[f"{a} {b}" for a, b in zip(*managers, strict=True)],
    )

    rng = _rng(seed, "staff")
    size = n["staff"]
    first, last = _person(rng, size)
    last = _with_apostrophe(rng, last)
    frames["staff"] = _frame(
        "staff",
        size,
        born["staff"],
        _updated(rng, born["staff"], 0.2, clock.end),
        first_name=first,
        last_name=last,
        department_id=pl.Series(rng.integers(1, n["department"] + 1, size), dtype=pl.Int32),
        email_address=[_email(a, b) for a, b in zip(first, last, strict=True)],
    )

    four = np.full(len(PAYMENT_TYPES), clock.start, dtype=np.int64)
    frames["payment_type"] = _frame(
        "payment_type", len(PAYMENT_TYPES), four, four, payment_type_name=list(PAYMENT_TYPES)
    )
    return frames


def _postal_code(rng: np.random.Generator) -> str:
    letters = _codes(rng, 1, _ALNUM[:26], 4)[0]
    return f"{letters[:2]}{rng.integers(1, 30)} {rng.integers(1, 10)}{letters[2:]}"


def _firm_name(rng: np.random.Generator, names: list[str]) -> str:
    style = int(rng.integers(0, 4))
    if style == 0:
        return f"{names[0]} {_FIRMS[int(rng.integers(0, len(_FIRMS)))]}"
    if style == 1:
        return f"{names[0]} - {names[1]}"
    if style == 2:
        return f"{names[0]}, {names[1]} and {names[2]}"
    return f"{names[0]} and {names[1]}"


def _email(first: str, last: str, suffix: str = "") -> str:
    local = f"{first}.{last}{suffix}".lower().replace("'", "").replace(" ", "")
    return f"{local}@{_EMAIL_DOMAIN}"


def _designs(seed: int, clock: _Clock, count: int) -> pl.DataFrame:
    """Designs: a catalogue at the start, new ones over two years, some renamed later.

    A third are updated at a random later time, usually after orders that reference
    them (the late-arriving dimension).
    """
    rng = _rng(seed, "design")
    initial = max(1, count // 2)
    created = np.sort(
        np.concatenate(
            [
                np.full(initial, clock.start, dtype=np.int64),
                rng.integers(clock.start, clock.end, count - initial),
            ]
        )
    )
    moved = rng.random(count) < 0.35
    span = np.maximum(clock.end - created, 1)
    updated = np.where(moved, created + 1 + (rng.random(count) * span).astype(np.int64), created)
    updated = np.minimum(updated, clock.end)
    name = _pick(_DESIGN_NAMES, rng.integers(0, len(_DESIGN_NAMES), count))
    stamp = pl.Series(created // _DAY, dtype=pl.Int32).cast(pl.Date).dt.strftime("%Y%m%d")
    file_name = pl.DataFrame(
        {"n": name.str.to_lowercase(), "d": stamp, "r": _codes(rng, count, _LOWER, 4)}
    ).select(pl.format("{}-{}-{}.json", "n", "d", "r"))
    return _frame(
        "design",
        count,
        created,
        updated,
        design_name=name,
        file_location=_pick(_FILE_LOCATIONS, rng.integers(0, len(_FILE_LOCATIONS), count)),
        file_name=file_name.to_series(),
    )


@dataclass(frozen=True)
class _Orders:
    """What transactions and payments need to know about the orders."""

    created: np.ndarray
    counterparty: np.ndarray
    currency: np.ndarray
    amount: np.ndarray  # cents
    payment_day: np.ndarray  # epoch day


def _order_common(
    rng: np.random.Generator, n: int, created: np.ndarray, preferred_currency: np.ndarray
) -> dict[str, np.ndarray]:
    """Columns sales and purchase orders share: who, where, which currency, when agreed."""
    counterparties = len(preferred_currency)
    weight = rng.lognormal(0.0, 0.8, counterparties)  # a few big customers
    counterparty = rng.choice(counterparties, n, p=weight / weight.sum())
    currency = np.where(
        rng.random(n) < 0.9,
        preferred_currency[counterparty],
        rng.integers(0, len(CURRENCIES), n),
    )
    day = created // _DAY
    return {
        "staff": rng.integers(1, _SMALL_SIZES["staff"] + 1, n),
        "counterparty": counterparty + 1,
        "currency": currency + 1,
        "delivery_day": day + rng.integers(2, 90, n),
        "payment_day": day + rng.integers(1, 120, n),
        "location": rng.integers(1, _SMALL_SIZES["address"] + 1, n),
    }


def _int32(values: np.ndarray) -> pl.Series:
    return pl.Series(values.astype(np.int32))


def _sales_orders(
    seed: int, clock: _Clock, n: int, design_created: np.ndarray, preferred: np.ndarray
) -> tuple[pl.DataFrame, _Orders]:
    rng = _rng(seed, "sales_order")
    created = _office_times(rng, n, clock.start + 1, clock.end)
    common = _order_common(rng, n, created, preferred)
    # Only designs that exist when the order is taken (ids follow creation time).
    available = np.searchsorted(design_created, created, side="right")
    design = (rng.random(n) * available).astype(np.int64) + 1
    units = np.exp(rng.uniform(np.log(1_000), np.log(100_000), n)).astype(np.int64)
    price = rng.integers(150, 500, n)  # cents: at most two decimals by construction
    frame = _frame(
        "sales_order",
        n,
        created,
        _updated(rng, created, 0.12, clock.end),
        design_id=_int32(design),
        staff_id=_int32(common["staff"]),
        counterparty_id=_int32(common["counterparty"]),
        units_sold=_int32(units),
        unit_price=_money(price),
        currency_id=_int32(common["currency"]),
        agreed_delivery_date=_dates(common["delivery_day"]),
        agreed_payment_date=_dates(common["payment_day"]),
        agreed_delivery_location_id=_int32(common["location"]),
    )
    orders = _Orders(
        created, common["counterparty"], common["currency"], units * price, common["payment_day"]
    )
    return frame, orders


def _purchase_orders(
    seed: int, clock: _Clock, n: int, preferred: np.ndarray
) -> tuple[pl.DataFrame, _Orders]:
    rng = _rng(seed, "purchase_order")
    created = _office_times(rng, n, clock.start + 1, clock.end)
    common = _order_common(rng, n, created, preferred)
    catalogue = _codes(rng, max(50, n // 20), _ALNUM, 7)
    quantity = rng.integers(1, 1_000, n)
    price = rng.integers(100, 100_000, n)
    frame = _frame(
        "purchase_order",
        n,
        created,
        _updated(rng, created, 0.05, clock.end),
        staff_id=_int32(common["staff"]),
        counterparty_id=_int32(common["counterparty"]),
        item_code=pl.Series(catalogue[rng.integers(0, len(catalogue), n)]),
        item_quantity=_int32(quantity),
        item_unit_price=_money(price),
        currency_id=_int32(common["currency"]),
        agreed_delivery_date=_dates(common["delivery_day"]),
        agreed_payment_date=_dates(common["payment_day"]),
        agreed_delivery_location_id=_int32(common["location"]),
    )
    orders = _Orders(
        created, common["counterparty"], common["currency"], quantity * price, common["payment_day"]
    )
    return frame, orders


def _transactions_and_payments(
    seed: int, clock: _Clock, sales: _Orders, purchases: _Orders
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One transaction per order and one payment per transaction, ids in time order.

    Payments are created unpaid a little after their transaction; most of those due
    before ``end`` were later paid (``paid`` true, ``last_updated`` moved).
    """
    rng = _rng(seed, "transaction")
    n_sales, n = len(sales.created), len(sales.created) + len(purchases.created)
    created = np.concatenate([sales.created, purchases.created])
    order = np.argsort(created, kind="stable")  # sales first on ties
    is_sale = order < n_sales
    order_id = np.where(is_sale, order + 1, order - n_sales + 1)
    t_created = created[order]
    transactions = _frame(
        "transaction",
        n,
        t_created,
        t_created,
        transaction_type=_pick(("PURCHASE", "SALE"), is_sale.astype(np.int64)),
        sales_order_id=pl.Series(np.where(is_sale, order_id, 0), dtype=pl.Int32).set(
            pl.Series(~is_sale), None
        ),
        purchase_order_id=pl.Series(np.where(is_sale, 0, order_id), dtype=pl.Int32).set(
            pl.Series(is_sale), None
        ),
    )

    def both(field: str) -> np.ndarray:
        merged: np.ndarray = np.concatenate([getattr(sales, field), getattr(purchases, field)])
        return merged[order]

    rng = _rng(seed, "payment")
    p_created = t_created + rng.integers(_SECOND, 2 * _HOUR, n)
    p_order = np.argsort(p_created, kind="stable")  # payment ids follow their own clock
    p_created = p_created[p_order]
    transaction_id = p_order + 1
    sale = is_sale[p_order]
    counterparty, currency = both("counterparty")[p_order], both("currency")[p_order]
    pay_day = both("payment_day")[p_order]
    refund = rng.random(n) < 0.04
    payment_type = np.where(sale, 1, 3) + refund  # ids in PAYMENT_TYPES order
    paid_at = pay_day * _DAY + rng.integers(_OPEN, _CLOSE, n)
    paid = (paid_at < clock.end) & (rng.random(n) < 0.9)
    updated = np.where(paid, np.maximum(paid_at, p_created + 1), p_created)
    company = _accounts(rng, len(CURRENCIES))
    counterparty_ac = _accounts(rng, _SMALL_SIZES["counterparty"])
    payments = _frame(
        "payment",
        n,
        p_created,
        updated,
        transaction_id=_int32(transaction_id),
        counterparty_id=_int32(counterparty),
        payment_amount=_money(both("amount")[p_order]),
        currency_id=_int32(currency),
        payment_type_id=_int32(payment_type),
        paid=pl.Series(paid),
        payment_date=_dates(pay_day),
        company_ac_number=pl.Series(company[currency - 1]),
        counterparty_ac_number=pl.Series(counterparty_ac[counterparty - 1]),
    )
    return transactions, payments


def generate_tables(
    sales_orders: int = 10_000, *, seed: int = 0, end: dt.datetime | None = None
) -> dict[str, pl.DataFrame]:
    """The rows :func:`fill` loads, one frame per source table in :data:`SOURCE_TABLES` order.

    Pure and deterministic for ``(sales_orders, seed, end)``; ``end`` (naive = UTC)
    defaults to now. About 0.5 purchase orders and 1.5 transactions and payments per
    sales order, over the two years before ``end``.

    >>> frames = generate_tables(200, seed=1, end=dt.datetime(2025, 1, 1))
    >>> {t: f.height for t, f in frames.items() if t.endswith("order")}
    {'sales_order': 200, 'purchase_order': 100}
    """
    if sales_orders < 0:
        raise ValueError("sales_orders must be >= 0")
    end_ms = _end_ms(end)
    clock = _Clock(start=end_ms - _SPAN_DAYS * _DAY, end=end_ms)
    frames = _small_tables(seed, clock)
    frames["design"] = design = _designs(seed, clock, design_count(sales_orders))
    design_created = design["created_at"].cast(pl.Int64).to_numpy()
    preferred = _rng(seed, "currency").choice(
        len(CURRENCIES), _SMALL_SIZES["counterparty"], p=[0.6, 0.2, 0.2]
    )
    frames["sales_order"], sales = _sales_orders(
        seed, clock, sales_orders, design_created, preferred
    )
    frames["purchase_order"], purchases = _purchase_orders(
        seed, clock, round(sales_orders * 0.5), preferred
    )
    frames["transaction"], frames["payment"] = _transactions_and_payments(
        seed, clock, sales, purchases
    )
    return {table: frames[table] for table in SOURCE_TABLES}


# --------------------------------------------------------------------------------------
# Bulk load
# --------------------------------------------------------------------------------------

_CHUNK_ROWS = 200_000


def _csv_chunks(frame: pl.DataFrame) -> Iterator[bytes]:
    for offset in range(0, frame.height, _CHUNK_ROWS):
        buffer = io.BytesIO()
        frame.slice(offset, _CHUNK_ROWS).write_csv(
            buffer,
            include_header=False,
            datetime_format="%Y-%m-%d %H:%M:%S%.3f",
            null_value="",
        )
        yield buffer.getvalue()


def _copy(con: psycopg.Connection[Any], table: str, frame: pl.DataFrame) -> None:
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(table), sql.SQL(", ").join(map(sql.Identifier, frame.columns))
    )
    with con.cursor() as cur, cur.copy(statement) as copy:
        for chunk in _csv_chunks(frame):
            copy.write(chunk)


def _table_list() -> str:
    return ", ".join(f'"{table}"' for table in SOURCE_TABLES)


def _is_empty(con: psycopg.Connection[Any]) -> bool:
    probe = " UNION ALL ".join(f'(SELECT 1 FROM "{t}" LIMIT 1)' for t in SOURCE_TABLES)
    return con.execute(probe.encode()).fetchone() is None


def fill(
    conninfo: str,
    *,
    sales_orders: int = 10_000,
    seed: int = 0,
    end: dt.datetime | None = None,
) -> dict[str, int]:
    """Fill an empty source (made by :func:`create_source`) and return rows per table.

    One transaction: foreign keys and ``last_updated`` indexes are dropped, every
    table is copied in, and the keys and indexes come back (one validating join and
    one sort each, instead of a lookup and an index insertion per row), so a failed
    fill changes nothing. A million sales orders and their 3.5 million other rows
    load in about 25 s on two busy cores (loading two tables at once on two
    connections measured slower there). Identity sequences are moved past the
    generated ids, so later inserts get fresh ones.

    >>> fill(url, sales_orders=1_000, seed=3)["payment"]  # doctest: +SKIP
    1500
    """
    frames = generate_tables(sales_orders, seed=seed, end=end)
    keys = [(t, *key) for t in SOURCE_TABLES for key in _foreign_keys(t)]
    with psycopg.connect(conninfo, autocommit=True) as con:
        with con.transaction():
            if not _is_empty(con):
                raise ValueError("fill needs an empty source: a table already has rows")
            for table, name, _, _ in keys:
                con.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT IF EXISTS {name}'.encode())
            for table, frame in frames.items():
                con.execute(f"DROP INDEX IF EXISTS {table}_last_updated_idx".encode())
                _copy(con, table, frame)
                con.execute(
                    "SELECT setval(pg_get_serial_sequence(%s, %s), %s, %s)",
                    (f'"{table}"', f"{table}_id", max(frame.height, 1), frame.height > 0),
                )
                con.execute(_index_ddl(table).encode())
            for table, name, column, parent in keys:
                con.execute(_add_foreign_key_ddl(table, name, column, parent).encode())
        con.execute(f"ANALYZE {_table_list()}".encode())
    return {table: frame.height for table, frame in frames.items()}


# --------------------------------------------------------------------------------------
# Writer: the application, still running while an extract reads
# --------------------------------------------------------------------------------------

# New sales orders with their transactions and (unpaid) payments, in one statement.
_INSERT_SALES = """
WITH so AS (
    INSERT INTO sales_order (created_at, last_updated, design_id, staff_id, counterparty_id,
        units_sold, unit_price, currency_id, agreed_delivery_date, agreed_payment_date,
        agreed_delivery_location_id)
    SELECT now(), now(), o.design, o.staff, o.counterparty, o.units, o.price, o.currency,
        to_char(now() + o.delivery_days * interval '1 day', 'YYYY-MM-DD'),
        to_char(now() + o.payment_days * interval '1 day', 'YYYY-MM-DD'), o.location
    FROM unnest(%(design)s::int[], %(staff)s::int[], %(counterparty)s::int[],
        %(units)s::int[], %(price)s::numeric[], %(currency)s::int[], %(delivery_days)s::int[],
        %(payment_days)s::int[], %(location)s::int[])
        AS o(design, staff, counterparty, units, price, currency, delivery_days, payment_days,
             location)
    RETURNING sales_order_id, counterparty_id, currency_id, units_sold * unit_price AS amount,
        agreed_payment_date
), tr AS (
    INSERT INTO transaction (created_at, last_updated, transaction_type, sales_order_id)
    SELECT now(), now(), 'SALE', sales_order_id FROM so ORDER BY sales_order_id
    RETURNING transaction_id, sales_order_id
), pay AS (
    INSERT INTO payment (created_at, last_updated, transaction_id, counterparty_id,
        payment_amount, currency_id, payment_type_id, paid, payment_date, company_ac_number,
        counterparty_ac_number)
    SELECT now(), now(), tr.transaction_id, so.counterparty_id, so.amount, so.currency_id,
        %(payment_type)s, false, so.agreed_payment_date, company.ac, theirs.ac
    FROM tr JOIN so USING (sales_order_id)
    JOIN unnest(%(company_currency)s::int[], %(company_ac)s::text[]) AS company(currency, ac)
        ON company.currency = so.currency_id
    JOIN unnest(%(their_id)s::int[], %(their_ac)s::text[]) AS theirs(counterparty, ac)
        ON theirs.counterparty = so.counterparty_id
    ORDER BY tr.transaction_id
    RETURNING payment_id
)
SELECT (SELECT array_agg(sales_order_id) FROM so), (SELECT array_agg(transaction_id) FROM tr),
    (SELECT array_agg(payment_id) FROM pay)
"""

_INSERT_PURCHASE = """
WITH po AS (
    INSERT INTO purchase_order (created_at, last_updated, staff_id, counterparty_id, item_code,
        item_quantity, item_unit_price, currency_id, agreed_delivery_date, agreed_payment_date,
        agreed_delivery_location_id)
    VALUES (now(), now(), %(staff)s, %(counterparty)s, %(item_code)s, %(quantity)s, %(price)s,
        %(currency)s, to_char(now() + %(delivery_days)s * interval '1 day', 'YYYY-MM-DD'),
        to_char(now() + %(payment_days)s * interval '1 day', 'YYYY-MM-DD'), %(location)s)
    RETURNING purchase_order_id, item_quantity * item_unit_price AS amount, agreed_payment_date
), tr AS (
    INSERT INTO transaction (created_at, last_updated, transaction_type, purchase_order_id)
    SELECT now(), now(), 'PURCHASE', purchase_order_id FROM po
    RETURNING transaction_id
), pay AS (
    INSERT INTO payment (created_at, last_updated, transaction_id, counterparty_id,
        payment_amount, currency_id, payment_type_id, paid, payment_date, company_ac_number,
        counterparty_ac_number)
    SELECT now(), now(), tr.transaction_id, %(counterparty)s, po.amount, %(currency)s,
        %(payment_type)s, false, po.agreed_payment_date, %(company_ac)s, %(their_ac)s
    FROM tr, po
    RETURNING payment_id
)
SELECT (SELECT array_agg(purchase_order_id) FROM po),
    (SELECT array_agg(transaction_id) FROM tr), (SELECT array_agg(payment_id) FROM pay)
"""

# Updates skip rows another transaction holds (a long transaction, say): the writer
# never waits for it, as a busy application would not either.
_PAY = """
UPDATE payment SET paid = true, last_updated = now()
WHERE payment_id IN (
    SELECT payment_id FROM payment WHERE payment_id = ANY(%s) AND NOT paid
    FOR UPDATE SKIP LOCKED)
RETURNING payment_id
"""

_CHANGE_UNITS = """
UPDATE sales_order
SET units_sold = greatest(units_sold + %s, 1000), last_updated = now()
WHERE sales_order_id IN (
    SELECT sales_order_id FROM sales_order WHERE sales_order_id = ANY(%s)
    FOR UPDATE SKIP LOCKED)
RETURNING sales_order_id
"""

_RENAME_DESIGN = """
UPDATE design SET design_name = %s, last_updated = now()
WHERE design_id IN (
    SELECT design_id FROM design WHERE design_id = %s AND design_name <> %s
    FOR UPDATE SKIP LOCKED)
RETURNING design_id
"""

_NEW_DESIGN = """
INSERT INTO design (created_at, last_updated, design_name, file_location, file_name)
VALUES (now(), now(), %s, %s, %s || '-' || to_char(now(), 'YYYYMMDD') || '-' || %s || '.json')
RETURNING design_id
"""

_RECENT = 2_000  # updates pick among the most recent rows, where unpaid payments are


@dataclass(frozen=True)
class _Reference:
    """What the writer needs to know of the source: id ranges and account numbers."""

    staff: int
    counterparties: list[int]
    addresses: int
    currencies: list[int]
    payment_types: dict[str, int]
    company_ac: dict[int, str]
    their_ac: dict[int, str]


def _load_reference(con: psycopg.Connection[Any], rng: np.random.Generator) -> _Reference:
    def ids(table: str) -> list[int]:
        query = f'SELECT {table}_id FROM "{table}" ORDER BY 1'
        return [row[0] for row in con.execute(query.encode())]

    counterparties, currencies = ids("counterparty"), ids("currency")
    if not counterparties or not ids("design") or not ids("staff"):
        raise ValueError("the writer needs a filled source: run fill() first")
    # An account already used for a counterparty (or currency) keeps being used:
    # the first payment in id order says which; the pk index finds it at once.
    first = (
        "SELECT p.{0}, (SELECT {1} FROM payment q WHERE q.{0} = p.{0} "
        "ORDER BY payment_id LIMIT 1) FROM unnest(%s::int[]) AS p({0})"
    )
    company = dict(con.execute(first.format("currency_id", "company_ac_number"), [currencies]))
    theirs = dict(
        con.execute(first.format("counterparty_id", "counterparty_ac_number"), [counterparties])
    )
    spare = iter(_accounts(rng, len(company) + len(theirs)).tolist())
    return _Reference(
        staff=len(ids("staff")),
        counterparties=counterparties,
        addresses=len(ids("address")),
        currencies=currencies,
        payment_types={
            name: id_
            for id_, name in con.execute(
                "SELECT payment_type_id, payment_type_name FROM payment_type"
            )
        },
        company_ac={k: v or next(spare) for k, v in company.items()},
        their_ac={k: v or next(spare) for k, v in theirs.items()},
    )


def _connect(conninfo: str) -> psycopg.Connection[Any]:
    """A session in UTC (``now()`` lands in ``timestamp`` columns as UTC wall-clock)."""
    con = psycopg.connect(conninfo, autocommit=True)
    con.execute("SET TIME ZONE 'UTC'")
    return con


class Writer:
    """The totesys application, writing while an extract runs (for tests and demos).

    Each :meth:`step` is one short transaction that inserts ``batch`` sales orders
    with their transactions and unpaid payments (and now and then a purchase order
    or a new design), marks a few recent payments paid, changes a sales order's
    units and now and then renames a design. Every write sets
    ``last_updated = now()``: the start of its transaction, so an extractor may rely
    on ``last_updated >= date_trunc('milliseconds', xact_start)`` of the writer.

    :meth:`start` runs steps in a thread every ``interval`` seconds until
    :meth:`stop`; a lost connection (the server restarting) is retried, any other
    error stops the thread and is raised again by :meth:`stop`. :attr:`written`
    counts what committed, as ``"<table>.inserted"``, ``"<table>.updated"`` and
    ``"<table>.silent"``.

    >>> writer = Writer(url, seed=1)  # doctest: +SKIP
    >>> with writer:  # start() ... stop()
    ...     extract(url)
    >>> writer.written["payment.updated"] > 0  # doctest: +SKIP
    True
    """

    def __init__(
        self, conninfo: str, *, seed: int = 0, interval: float = 0.02, batch: int = 3
    ) -> None:
        self.conninfo = conninfo
        self.interval = interval
        self.batch = batch
        self.steps = 0
        self.reconnects = 0
        self._rng = np.random.default_rng([seed, 20])  # the thread's steps
        self._side_rng = np.random.default_rng([seed, 21])  # calls from other threads
        self._lock = threading.Lock()
        self._written: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failure: BaseException | None = None
        self._con: psycopg.Connection[Any] | None = None
        self._reference: _Reference | None = None

    # -- counters ------------------------------------------------------------------

    @property
    def written(self) -> dict[str, int]:
        """Rows committed so far, per ``"<table>.<inserted|updated|silent>"`` (a copy)."""
        with self._lock:
            return dict(self._written)

    def _count(self, touched: dict[str, int]) -> None:
        with self._lock:
            for key, rows in touched.items():
                self._written[key] = self._written.get(key, 0) + rows

    # -- one step --------------------------------------------------------------------

    def step(self) -> None:
        """One short transaction of inserts and updates (see the class docstring)."""
        if self._con is None or self._con.closed:
            self._con = _connect(self.conninfo)
        con = self._con
        reference = self._reference or _load_reference(con, self._rng)
        self._reference = reference
        with con.transaction():
            touched = self._write(con, reference, self._rng)
        self.steps += 1
        self._count(touched)

    def _write(
        self, con: psycopg.Connection[Any], ref: _Reference, rng: np.random.Generator
    ) -> dict[str, int]:
        touched: dict[str, int] = {}
        new_design = rng.random() < 0.05
        design = self._new_design(con, rng) if new_design else None
        if design is not None:
            touched["design.inserted"] = 1
        inserted = self._insert_sales(con, ref, rng, self.batch, design)
        touched["sales_order.inserted"] = len(inserted[0])
        touched["transaction.inserted"] = len(inserted[1])
        touched["payment.inserted"] = len(inserted[2])
        if rng.random() < 0.3:
            bought = self._insert_purchase(con, ref, rng)
            touched["purchase_order.inserted"] = len(bought[0])
            touched["transaction.inserted"] += len(bought[1])
            touched["payment.inserted"] += len(bought[2])
        touched["payment.updated"] = len(self._pay(con, rng, self.batch))
        touched["sales_order.updated"] = len(self._change_units(con, rng, 1))
        if rng.random() < 0.1:
            touched["design.updated"] = len(self._rename_design(con, rng))
        return touched

    @staticmethod
    def _recent(
        con: psycopg.Connection[Any], rng: np.random.Generator, table: str, n: int
    ) -> list[int]:
        row = con.execute(f'SELECT max({table}_id) FROM "{table}"'.encode()).fetchone()
        top = int(row[0]) if row and row[0] is not None else 0
        if top == 0:
            return []
        picked: list[int] = (top - rng.integers(0, min(top, _RECENT), n)).tolist()
        return picked

    def _new_design(self, con: psycopg.Connection[Any], rng: np.random.Generator) -> int:
        name = _DESIGN_NAMES[int(rng.integers(len(_DESIGN_NAMES)))]
        place = _FILE_LOCATIONS[int(rng.integers(len(_FILE_LOCATIONS)))]
        suffix = str(_codes(rng, 1, _LOWER, 4)[0])
        row = con.execute(_NEW_DESIGN, (name, place, name.lower(), suffix)).fetchone()
        assert row is not None  # INSERT ... RETURNING one row
        return int(row[0])

    def _insert_sales(
        self,
        con: psycopg.Connection[Any],
        ref: _Reference,
        rng: np.random.Generator,
        n: int,
        design: int | None,
    ) -> tuple[list[int], list[int], list[int]]:
        designs = self._recent(con, rng, "design", n) if design is None else [design] * n
        counterparty = [ref.counterparties[i] for i in rng.integers(0, len(ref.counterparties), n)]
        params = {
            "design": designs,
            "staff": (rng.integers(1, ref.staff + 1, n)).tolist(),
            "counterparty": counterparty,
            "units": np.exp(rng.uniform(np.log(1_000), np.log(100_000), n)).astype(int).tolist(),
            "price": [f"{c // 100}.{c % 100:02d}" for c in rng.integers(150, 500, n).tolist()],
            "currency": [ref.currencies[i] for i in rng.integers(0, len(ref.currencies), n)],
            "delivery_days": rng.integers(2, 90, n).tolist(),
            "payment_days": rng.integers(1, 120, n).tolist(),
            "location": rng.integers(1, ref.addresses + 1, n).tolist(),
            "payment_type": ref.payment_types["SALES_RECEIPT"],
            "company_currency": list(ref.company_ac),
            "company_ac": list(ref.company_ac.values()),
            "their_id": list(ref.their_ac),
            "their_ac": list(ref.their_ac.values()),
        }
        return _ids(con.execute(_INSERT_SALES, params).fetchone())

    def _insert_purchase(
        self, con: psycopg.Connection[Any], ref: _Reference, rng: np.random.Generator
    ) -> tuple[list[int], list[int], list[int]]:
        counterparty = ref.counterparties[int(rng.integers(len(ref.counterparties)))]
        currency = ref.currencies[int(rng.integers(len(ref.currencies)))]
        cents = int(rng.integers(100, 100_000))
        params = {
            "staff": int(rng.integers(1, ref.staff + 1)),
            "counterparty": counterparty,
            "item_code": str(_codes(rng, 1, _ALNUM, 7)[0]),
            "quantity": int(rng.integers(1, 1_000)),
            "price": f"{cents // 100}.{cents % 100:02d}",
            "currency": currency,
            "delivery_days": int(rng.integers(2, 90)),
            "payment_days": int(rng.integers(1, 120)),
            "location": int(rng.integers(1, ref.addresses + 1)),
            "payment_type": ref.payment_types["PURCHASE_PAYMENT"],
            "company_ac": ref.company_ac[currency],
            "their_ac": ref.their_ac[counterparty],
        }
        return _ids(con.execute(_INSERT_PURCHASE, params).fetchone())

    def _pay(self, con: psycopg.Connection[Any], rng: np.random.Generator, n: int) -> list[int]:
        candidates = self._recent(con, rng, "payment", n)
        return [row[0] for row in con.execute(_PAY, [candidates])]

    def _change_units(
        self, con: psycopg.Connection[Any], rng: np.random.Generator, n: int
    ) -> list[int]:
        candidates = self._recent(con, rng, "sales_order", n)
        delta = int(rng.choice([-1, 1]) * rng.integers(50, 2_000))
        return [row[0] for row in con.execute(_CHANGE_UNITS, [delta, candidates])]

    def _rename_design(self, con: psycopg.Connection[Any], rng: np.random.Generator) -> list[int]:
        (design,) = self._recent(con, rng, "design", 1)
        name = _DESIGN_NAMES[int(rng.integers(len(_DESIGN_NAMES)))]
        return [row[0] for row in con.execute(_RENAME_DESIGN, [name, design, name])]

    # -- the thread --------------------------------------------------------------------

    def start(self) -> None:
        """Write in a background thread, a step every ``interval`` seconds."""
        if self._thread is not None:
            raise RuntimeError("this writer is already running")
        self._stop.clear()
        self._failure = None
        self._thread = threading.Thread(target=self._run, name="totesys-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish the current step, end the thread, and raise what stopped it, if anything."""
        thread, self._thread = self._thread, None
        if thread is not None:
            self._stop.set()
            thread.join(timeout)
            if thread.is_alive():
                raise RuntimeError(f"the writer did not stop within {timeout:g}s")
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.step()
            except psycopg.OperationalError:
                # Connection lost (the server restarting): the step's transaction
                # rolled back or committed unseen; reconnect and go on.
                self.reconnects += 1
                if self._con is not None:
                    self._con.close()
                self._stop.wait(0.2)
                continue
            except BaseException as error:  # re-raised by stop(), never swallowed
                self._failure = error
                return
            self._stop.wait(self.interval)

    def __enter__(self) -> Writer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the two cases watermark extractors get wrong ------------------------------------

    @contextlib.contextmanager
    def held_transaction(self) -> Iterator[list[tuple[str, int]]]:
        """Open a transaction, write a few rows, and commit only when the block ends.

        Inserts a sales order (with its transaction and unpaid payment), marks a
        recent payment paid and changes a sales order's units, all with
        ``last_updated = now()``: the transaction's *start*. Committed late, these
        rows carry timestamps older than rows others committed meanwhile — the
        rows a plain ``last_updated > watermark`` extract skips forever. Yields
        the ``(table, id)`` written, before they are visible to anyone else.
        """
        rng = self._side_rng
        with _connect(self.conninfo) as con:
            reference = _load_reference(con, rng)
            with con.transaction():
                sales, transactions, payments = self._insert_sales(con, reference, rng, 1, None)
                paid = self._pay(con, rng, 3)
                changed = self._change_units(con, rng, 1)
                touched = [
                    *(("sales_order", i) for i in [*sales, *changed]),
                    *(("transaction", i) for i in transactions),
                    *(("payment", i) for i in [*payments, *paid]),
                ]
                yield touched
        self._count(
            {
                "sales_order.inserted": len(sales),
                "sales_order.updated": len(changed),
                "transaction.inserted": len(transactions),
                "payment.inserted": len(payments),
                "payment.updated": len(paid),
            }
        )

    def long_transaction(self, hold_seconds: float) -> list[tuple[str, int]]:
        """:meth:`held_transaction` held open for ``hold_seconds``; returns what it wrote."""
        with self.held_transaction() as touched:
            time.sleep(hold_seconds)
        return touched

    def silent_change(self, n: int = 1) -> list[tuple[str, int]]:
        """Change ``n`` values without moving ``last_updated``; returns ``(table, id)``.

        Alternately a staff member's e-mail address and a design's name (a DBA's
        hand fix, a migration): a watermark cannot see these, a full reconciliation can.
        """
        rng = self._side_rng
        changed: list[tuple[str, int]] = []
        with _connect(self.conninfo) as con, con.transaction():
            for i in range(n):
                table = "staff" if i % 2 == 0 else "design"
                (row_id,) = self._recent(con, rng, table, 1)
                if table == "staff":
                    self._change_email(con, rng, row_id)
                else:
                    self._change_design_name(con, rng, row_id)
                changed.append((table, row_id))
        counts: dict[str, int] = {}
        for table, _ in changed:
            counts[f"{table}.silent"] = counts.get(f"{table}.silent", 0) + 1
        self._count(counts)
        return changed

    @staticmethod
    def _change_email(con: psycopg.Connection[Any], rng: np.random.Generator, staff: int) -> None:
        row = con.execute(
            "SELECT first_name, last_name, email_address FROM staff WHERE staff_id = %s", [staff]
        ).fetchone()
        assert row is not None  # ids up to max(staff_id) exist: staff rows are never deleted
        first, last, old = row
        new = old
        while new == old:
            new = _email(first, last, f".{int(rng.integers(2, 100))}")
        con.execute("UPDATE staff SET email_address = %s WHERE staff_id = %s", [new, staff])

    @staticmethod
    def _change_design_name(
        con: psycopg.Connection[Any], rng: np.random.Generator, design: int
    ) -> None:
        row = con.execute(
            "SELECT design_name FROM design WHERE design_id = %s", [design]
        ).fetchone()
        assert row is not None  # designs are never deleted
        new = row[0]
        while new == row[0]:
            new = _DESIGN_NAMES[int(rng.integers(len(_DESIGN_NAMES)))]
        con.execute("UPDATE design SET design_name = %s WHERE design_id = %s", [new, design])


def _ids(row: tuple[Any, ...] | None) -> tuple[list[int], list[int], list[int]]:
    """The three id arrays an insert statement returns (NULL when nothing was inserted)."""
    assert row is not None  # a SELECT of three aggregates returns one row
    orders, transactions, payments = (list(ids or []) for ids in row)
    return orders, transactions, payments
