"""The warehouse model, declared once: every table's columns, logical types and keys.

Everything else is derived from these declarations: the DDL of both engines,
the Polars (Arrow) schemas of the frames the transform hands to the loaders,
the ledger rows the pipeline writes, and the types PostgreSQL's binary COPY and
result decoding use. Add a column here and every stage sees it.

    >>> TABLES["dim_branch"].key, [c.sql() for c in TABLES["dim_branch"].columns]
    (('branch_key',), ['branch_key BIGINT NOT NULL', 'branch_name VARCHAR NOT NULL'])
    >>> TABLES["fact_sale"].polars_schema()["total"]
    Decimal(precision=18, scale=2)

It lives beside the stages rather than inside ``load/`` because the transform
builds frames of these shapes and must not import the loaders. Types are the
common subset of DuckDB and PostgreSQL. Money has one type, :data:`MONEY`
(``DECIMAL(18,2)``), never float. Fact tables carry no primary key on purpose:
the loader guarantees uniqueness (a delivery's old rows are deleted first), and
an index would slow bulk appends; dimensions have primary keys so upserts are
set-based, except ``dim_customer``: its keys are random 63-bit tokens, whose
index cost a keyed load 34 of its ~350 ms a batch (an anti-join costs 12), so
the loader keeps them unique, as it does the facts' (one loader at a time).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import polars as pl

__all__ = [
    "BIGINT",
    "BOOLEAN",
    "DATE",
    "DOUBLE",
    "INTEGER",
    "MARTS_SINCE",
    "MONEY",
    "MONEY_SQL",
    "ROLLUPS_SINCE",
    "SMALLINT",
    "TABLES",
    "TEXT",
    "TIME",
    "TIMESTAMP",
    "TOTESYS",
    "Column",
    "SqlType",
    "Table",
]


@dataclass(frozen=True)
class SqlType:
    """A logical column type: its SQL (both engines), its Polars type, PostgreSQL's OIDs."""

    sql: str
    polars: Callable[[], pl.DataType]
    oids: tuple[int, ...] = ()

    def polars_type(self) -> pl.DataType:
        return self.polars()


def _pl(name: str, *args: object) -> Callable[[], pl.DataType]:
    """A Polars type built on first use: the declarations import no Polars."""

    def build() -> pl.DataType:
        import polars as pl

        return getattr(pl, name)(*args)  # type: ignore[no-any-return]

    return build


BIGINT = SqlType("BIGINT", _pl("Int64"), (20,))
INTEGER = SqlType("INTEGER", _pl("Int32"), (23,))
SMALLINT = SqlType("SMALLINT", _pl("Int16"), (21,))
TEXT = SqlType("VARCHAR", _pl("String"), (25, 1043))
MONEY = SqlType("DECIMAL(18,2)", _pl("Decimal", 18, 2), (1700,))
DATE = SqlType("DATE", _pl("Date"), (1082,))
TIMESTAMP = SqlType("TIMESTAMP", _pl("Datetime", "us"), (1114,))
BOOLEAN = SqlType("BOOLEAN", _pl("Boolean"), (16,))
DOUBLE = SqlType("DOUBLE PRECISION", _pl("Float64"), (701,))
TIME = SqlType("TIME", _pl("Time"), (1083,))
TYPES = (BIGINT, INTEGER, SMALLINT, TEXT, MONEY, DATE, TIMESTAMP, BOOLEAN, DOUBLE, TIME)
MONEY_SQL = MONEY.sql
"""Readers cast sums of money to this, so both engines return the same exact type."""


@dataclass(frozen=True)
class Column:
    name: str
    type: SqlType
    nullable: bool = False
    default: str | None = None
    since: int = 1
    """The schema version that added it to an existing table (see ``load/migrations.py``)."""

    def sql(self) -> str:
        default = "" if self.default is None else f" DEFAULT {self.default}"
        return f"{self.name} {self.type.sql}{default}" + ("" if self.nullable else " NOT NULL")


@dataclass(frozen=True)
class Table:
    """One warehouse table: columns in order, and a primary key where set-based upserts need one."""

    name: str
    columns: tuple[Column, ...]
    key: tuple[str, ...] = ()
    doc: str = ""
    since: int = 1
    """The schema version that created it (see :mod:`brewline.load.migrations`)."""

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def create_sql(self, name: str | None = None, *, version: int | None = None) -> str:
        """``CREATE TABLE IF NOT EXISTS`` for both engines (as ``name``, if given).

        With ``version``, only the columns the table had at that schema version.
        """
        parts = [c.sql() for c in self.columns if version is None or c.since <= version]
        if self.key:
            parts.append(f"PRIMARY KEY ({', '.join(self.key)})")
        return f"CREATE TABLE IF NOT EXISTS {name or self.name} ({', '.join(parts)})"

    def polars_schema(self, columns: list[str] | None = None) -> dict[str, pl.DataType]:
        """The Polars schema of this table's rows (or of some of its ``columns``, in that order)."""
        types = {c.name: c.type for c in self.columns}
        return {name: types[name].polars_type() for name in columns or self.names}


def _table(
    name: str, doc: str, *columns: Column, key: tuple[str, ...] = (), since: int = 1
) -> Table:
    return Table(name, columns, key, doc, since)


def _c(
    name: str, kind: SqlType, *, nullable: bool = False, default: str | None = None, since: int = 1
) -> Column:
    return Column(name, kind, nullable, default, since)


_DECLARED: tuple[Table, ...] = (
    _table(
        "schema_version",
        "One row per applied migration.",
        _c("version", INTEGER),
        _c("applied_at", TIMESTAMP),
    ),
    _table(
        "etl_meta",
        "Warehouse-wide facts, such as the fingerprint of the PII key it was loaded with.",
        _c("name", TEXT),
        _c("value", TEXT),
        key=("name",),
    ),
    _table(
        "dim_branch",
        "A branch, named as its till writes it.",
        _c("branch_key", BIGINT),
        _c("branch_name", TEXT),
        key=("branch_key",),
    ),
    _table(
        "dim_product",
        "A menu item (product, size, variant); prices live on the fact lines.",
        _c("product_key", BIGINT),
        _c("product_name", TEXT),
        _c("size", TEXT, nullable=True),
        _c("variant", TEXT, nullable=True),
        key=("product_key",),
    ),
    _table(
        "dim_date",
        "A calendar day (date_key = yyyymmdd); grows to cover every loaded date.",
        _c("date_key", INTEGER),
        _c("date", DATE),
        _c("year", SMALLINT),
        _c("quarter", SMALLINT),
        _c("month", SMALLINT),
        _c("month_name", TEXT),
        _c("day_of_month", SMALLINT),
        _c("day_of_week", SMALLINT),
        _c("day_name", TEXT),
        _c("iso_week", SMALLINT),
        _c("is_weekend", BOOLEAN),
        key=("date_key",),
    ),
    _table(
        "dim_customer",
        "A customer token (keyed HMAC of a card) and when it was first seen.",
        _c("customer_key", BIGINT),
        _c("first_seen_at", TIMESTAMP),
        # No primary key: see the module's docstring. (Warehouses made before keep theirs.)
    ),
    _table(
        "fact_sale",
        "One till sale; its natural key is (delivery, line).",
        _c("sale_key", BIGINT),
        _c("file_id", BIGINT),
        _c("source_line", INTEGER),
        _c("branch_key", BIGINT),
        _c("date_key", INTEGER),
        _c("sold_at", TIMESTAMP),
        _c("payment_method", TEXT),
        _c("total", MONEY),
        _c("items", INTEGER),
        _c("customer_key", BIGINT, nullable=True),
    ),
    _table(
        "fact_sale_line",
        "One (sale, product): quantity, unit price and line amount.",
        _c("sale_key", BIGINT),
        _c("product_key", BIGINT),
        _c("file_id", BIGINT),
        _c("branch_key", BIGINT),
        _c("date_key", INTEGER),
        _c("quantity", INTEGER),
        _c("unit_price", MONEY),
        _c("line_amount", MONEY),
    ),
    _table(
        "etl_run",
        "One run of a trigger (run, watch, a Lambda invocation): its status and totals.",
        _c("run_id", TEXT),
        _c("started_at", TIMESTAMP),
        _c("finished_at", TIMESTAMP, nullable=True),
        _c("status", TEXT),
        _c("host", TEXT, nullable=True),
        _c("pid", INTEGER, nullable=True),
        _c("files_loaded", INTEGER, nullable=True),
        _c("files_skipped", INTEGER, nullable=True),
        _c("files_replaced", INTEGER, nullable=True),
        _c("files_rejected", INTEGER, nullable=True),
        _c("rows_read", BIGINT, nullable=True),
        _c("rows_loaded", BIGINT, nullable=True),
        _c("rows_rejected", BIGINT, nullable=True),
        _c("seconds", DOUBLE, nullable=True),
        _c("error", TEXT, nullable=True),
        _c("files_failed", INTEGER, nullable=True, since=3),
        key=("run_id",),
    ),
    _table(
        "etl_file",
        "One delivery (a version of a source file) and the state it ended in.",
        _c("file_id", BIGINT),
        _c("source_name", TEXT),
        _c("sha256", TEXT),
        _c("size_bytes", BIGINT),
        _c("layout", TEXT, nullable=True),
        _c("state", TEXT),
        _c("reason", TEXT, nullable=True),
        _c("message", TEXT, nullable=True),
        _c("rows_read", INTEGER),
        _c("rows_loaded", INTEGER),
        _c("rows_rejected", INTEGER),
        _c("skipped_lines", INTEGER),
        _c("run_id", TEXT),
        _c("recorded_at", TIMESTAMP),
        _c("seconds", DOUBLE, nullable=True),
        _c("replaced_by", BIGINT, nullable=True),
        # Rows of this delivery that later deliveries took over (corrections, re-exports):
        # what it has in the warehouse now is rows_loaded - rows_replaced.
        _c("rows_replaced", INTEGER, nullable=True, default="0", since=3),
        key=("file_id",),
    ),
    _table(
        "etl_file_branch_day",
        "Which delivery owns each (branch, trading day): a later delivery of the day replaces it.",
        _c("branch_key", BIGINT),
        _c("date_key", INTEGER),
        _c("file_id", BIGINT),
        _c("sales", INTEGER),
        key=("branch_key", "date_key"),
    ),
    _table(
        "etl_rejected_row",
        "A rejected line of a delivery and its reason (never its content).",
        _c("file_id", BIGINT),
        _c("line_no", INTEGER),
        _c("reason", TEXT),
    ),
    _table(
        "etl_cursor",
        "Where an incremental source got to (e.g. a table's last_updated watermark).",
        _c("source", TEXT),
        _c("name", TEXT),
        _c("value", TEXT),
        _c("updated_at", TIMESTAMP),
        key=("source", "name"),
        since=3,
    ),
)

TOTESYS = "totesys"
"""The prefix of the totesys star's tables (``totesys_dim_date`` is not the cafe's ``dim_date``).

A prefix, not a schema: the usual owner role may create tables but not schemas."""

_STAMPS = (
    _c("created_date", DATE),
    _c("created_time", TIME),
    _c("last_updated_date", DATE),
    _c("last_updated_time", TIME),
)


def _totesys(name: str, doc: str, *columns: Column, key: tuple[str, ...] = ()) -> Table:
    return _table(f"{TOTESYS}_{name}", doc, *columns, key=key, since=4)


_DECLARED += (
    _totesys(
        "dim_date",
        "Every date a totesys fact uses (date_id is the date).",
        _c("date_id", DATE),
        _c("year", INTEGER),
        _c("month", SMALLINT),
        _c("day", SMALLINT),
        _c("day_of_week", SMALLINT),
        _c("day_name", TEXT),
        _c("month_name", TEXT),
        _c("quarter", SMALLINT),
        key=("date_id",),
    ),
    _totesys(
        "dim_staff",
        "A member of staff and their department (current version; no e-mail: not extracted).",
        _c("staff_id", BIGINT),
        _c("first_name", TEXT),
        _c("last_name", TEXT),
        _c("department_name", TEXT, nullable=True),
        _c("location", TEXT, nullable=True),
        key=("staff_id",),
    ),
    _totesys(
        "dim_location",
        "An address (location_id = address_id), current version.",
        _c("location_id", BIGINT),
        _c("address_line_1", TEXT),
        _c("address_line_2", TEXT, nullable=True),
        _c("district", TEXT, nullable=True),
        _c("city", TEXT),
        _c("postal_code", TEXT),
        _c("country", TEXT),
        _c("phone", TEXT),
        key=("location_id",),
    ),
    _totesys(
        "dim_currency",
        "A currency: its ISO 4217 code and name.",
        _c("currency_id", BIGINT),
        _c("currency_code", TEXT),
        _c("currency_name", TEXT, nullable=True),
        key=("currency_id",),
    ),
    _totesys(
        "dim_design",
        "A tote-bag design, current version.",
        _c("design_id", BIGINT),
        _c("design_name", TEXT),
        _c("file_location", TEXT),
        _c("file_name", TEXT),
        key=("design_id",),
    ),
    _totesys(
        "dim_counterparty",
        "A customer or supplier company and its legal address (no contact people).",
        _c("counterparty_id", BIGINT),
        _c("counterparty_legal_name", TEXT),
        *(
            _c(f"counterparty_legal_{part}", TEXT, nullable=True)
            for part in (
                "address_line_1",
                "address_line_2",
                "district",
                "city",
                "postal_code",
                "country",
                "phone_number",
            )
        ),
        key=("counterparty_id",),
    ),
    _totesys(
        "dim_transaction",
        "A sale or purchase transaction that payments settle.",
        _c("transaction_id", BIGINT),
        _c("transaction_type", TEXT),
        _c("sales_order_id", BIGINT, nullable=True),
        _c("purchase_order_id", BIGINT, nullable=True),
        key=("transaction_id",),
    ),
    _totesys(
        "dim_payment_type",
        "SALES_RECEIPT, SALES_REFUND, PURCHASE_PAYMENT or PURCHASE_REFUND.",
        _c("payment_type_id", BIGINT),
        _c("payment_type_name", TEXT),
        key=("payment_type_id",),
    ),
    _totesys(
        "fact_sales_order",
        "Every version of a sales order an extract saw (an update adds a row).",
        _c("sales_record_id", BIGINT),
        _c("sales_order_id", BIGINT),
        *_STAMPS,
        _c("sales_staff_id", BIGINT),
        _c("counterparty_id", BIGINT),
        _c("units_sold", BIGINT),
        _c("unit_price", MONEY),
        _c("currency_id", BIGINT),
        _c("design_id", BIGINT),
        _c("agreed_payment_date", DATE, nullable=True),
        _c("agreed_delivery_date", DATE, nullable=True),
        _c("agreed_delivery_location_id", BIGINT),
        key=("sales_record_id",),
    ),
    _totesys(
        "fact_purchase_order",
        "Every version of a purchase order an extract saw.",
        _c("purchase_record_id", BIGINT),
        _c("purchase_order_id", BIGINT),
        *_STAMPS,
        _c("staff_id", BIGINT),
        _c("counterparty_id", BIGINT),
        _c("item_code", TEXT),
        _c("item_quantity", BIGINT),
        _c("item_unit_price", MONEY),
        _c("currency_id", BIGINT),
        _c("agreed_delivery_date", DATE, nullable=True),
        _c("agreed_payment_date", DATE, nullable=True),
        _c("agreed_delivery_location_id", BIGINT),
        key=("purchase_record_id",),
    ),
    _totesys(
        "fact_payment",
        "Every version of a payment an extract saw (unpaid, then paid, is two rows).",
        _c("payment_record_id", BIGINT),
        _c("payment_id", BIGINT),
        *_STAMPS,
        _c("transaction_id", BIGINT),
        _c("counterparty_id", BIGINT),
        _c("payment_amount", MONEY),
        _c("currency_id", BIGINT),
        _c("payment_type_id", BIGINT),
        _c("paid", BOOLEAN),
        _c("payment_date", DATE, nullable=True),
        key=("payment_record_id",),
    ),
)

MARTS_SINCE = 5
"""The schema version that added the marts (filled from the facts by that migration)."""


def _mart(name: str, doc: str, *columns: Column, since: int = MARTS_SINCE) -> Table:
    # No primary key: the loader rewrites a mart's rows per branch-day (or customer)
    # with set-based DELETE + INSERT, and an index would slow every load.
    return _table(name, doc, *columns, since=since)


ROLLUPS_SINCE = 6
"""The schema version that added the year rollups."""


def _with_rollups(
    day: str, doc: str, keys: tuple[Column, ...], measures: tuple[Column, ...]
) -> tuple[Table, ...]:
    """A branch-day mart and its month and year rollups: the same keys and measures."""
    stem = day.removesuffix("_day")
    branch = _c("branch_key", BIGINT)

    def mart(name: str, period: str, key: Column, since: int = MARTS_SINCE) -> Table:
        columns = (branch, key, *keys, *measures)
        return _mart(name, f"{doc} per branch and {period}.", *columns, since=since)

    return (
        mart(day, "trading day", _c("date_key", INTEGER)),
        mart(f"{stem}_month", "calendar month (month_key = yyyymm)", _c("month_key", INTEGER)),
        mart(f"{stem}_year", "year (year_key = yyyy)", _c("year_key", INTEGER), ROLLUPS_SINCE),
    )


_SALES = (_c("sales", BIGINT), _c("revenue", MONEY))

_DECLARED += (
    *_with_rollups(
        "mart_sales_day",
        "Sales by payment method",
        (_c("payment_method", TEXT),),
        (*_SALES, _c("units", BIGINT), _c("customer_sales", BIGINT), _c("customer_revenue", MONEY)),
    ),
    *_with_rollups(
        "mart_sales_hour",
        "Sales by ISO weekday (1 = Monday) and hour of the (branch-local) day",
        (_c("weekday", SMALLINT), _c("hour", SMALLINT)),
        _SALES,
    ),
    *_with_rollups(
        "mart_product_day",
        "Units, revenue and baskets (sales) by menu item",
        (_c("product_key", BIGINT),),
        (_c("units", BIGINT), _c("revenue", MONEY), _c("sales", BIGINT)),
    ),
    _mart(
        "mart_customer_first",
        "Each customer token's first sale (earliest sold_at, then sale_key): where, when, what.",
        _c("customer_key", BIGINT),
        _c("sale_key", BIGINT),
        _c("branch_key", BIGINT),
        _c("date_key", INTEGER),
        _c("sold_at", TIMESTAMP),
        _c("total", MONEY),
    ),
)

TABLES: dict[str, Table] = {table.name: table for table in _DECLARED}
"""Every table by name, in creation order."""
