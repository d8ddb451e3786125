"""The totesys star schema, modelled from the raw zone: pure Polars transforms.

Input: every row version the extracts saw, per source table, in extract order
(:func:`versions`). Output: the star tables of ``../shared/data/totesys``:

- **facts keep history**: every version of a sales order, purchase order or
  payment that an extract saw, identified by ``(id, last_updated)``, is its own
  row; an update yields a second row, a payment flipping to paid a new one;
- **dimensions hold the current version** (the newest ``last_updated``; for
  one version seen twice, the later extract wins, which is how a full
  reconciliation repairs a change that did not move ``last_updated``);
- a fact never waits for its dimensions: a design that arrives in a later
  extract joins once it is there (facts keep the ids, not a lookup result);
- ``dim_date`` covers every date any fact uses; money stays ``Decimal``.

Record ids (``sales_record_id`` ...) number versions in ``(last_updated, id)``
order. A version written later with an earlier ``last_updated`` (a backfill,
which the extract now reads) is numbered among its peers, so the ids of the
versions after it move up by one: a record id is a position, not a stable key.
"""

from __future__ import annotations

import polars as pl

from brewline.schema import TABLES, TOTESYS

__all__ = ["CURRENCY_NAMES", "STAR_TABLES", "current", "model", "versions"]

CURRENCY_NAMES = {
    "GBP": "Pound sterling",
    "USD": "US dollar",
    "EUR": "Euro",
    "JPY": "Japanese yen",
    "CHF": "Swiss franc",
}
"""ISO 4217 names of the currencies such a business trades in (the source stores codes)."""

STAR_TABLES = (
    "dim_date",
    "dim_staff",
    "dim_location",
    "dim_currency",
    "dim_design",
    "dim_counterparty",
    "dim_transaction",
    "dim_payment_type",
    "fact_sales_order",
    "fact_purchase_order",
    "fact_payment",
)

_SEQ = "_extract_seq"


def versions(frames: list[pl.DataFrame], table: str) -> pl.DataFrame:
    """Distinct row versions of one table from its extracts' frames (oldest extract first)."""
    key = f"{table}_id"
    if not frames:
        return pl.DataFrame()
    stacked = pl.concat(
        [f.with_columns(pl.lit(i, pl.Int32).alias(_SEQ)) for i, f in enumerate(frames)],
        how="diagonal_relaxed",
    )
    return (
        stacked.sort(_SEQ, maintain_order=True)
        .unique(subset=[key, "last_updated"], keep="last", maintain_order=True)
        .sort("last_updated", key)
        .drop(_SEQ)
    )


def current(table_versions: pl.DataFrame, table: str) -> pl.DataFrame:
    """The newest version of each row."""
    key = f"{table}_id"
    if table_versions.is_empty():
        return table_versions
    return table_versions.sort("last_updated", key).unique(subset=[key], keep="last").sort(key)


def model(raw: dict[str, pl.DataFrame]) -> dict[str, pl.DataFrame]:
    """The star tables from every source table's distinct versions (see :func:`versions`)."""
    now = {t: current(raw.get(t, pl.DataFrame()), t) for t in raw}
    facts = {
        "fact_sales_order": _fact(
            raw.get("sales_order"),
            "sales_order",
            "fact_sales_order",
            {"sales_staff_id": "staff_id"},
        ),
        "fact_purchase_order": _fact(
            raw.get("purchase_order"), "purchase_order", "fact_purchase_order"
        ),
        "fact_payment": _fact(raw.get("payment"), "payment", "fact_payment"),
    }
    dims = {
        "dim_staff": _dim_staff(now.get("staff"), now.get("department")),
        "dim_location": _dim_location(now.get("address")),
        "dim_currency": _dim_currency(now.get("currency")),
        "dim_design": _select(now.get("design"), _DESIGN),
        "dim_counterparty": _dim_counterparty(now.get("counterparty"), now.get("address")),
        "dim_transaction": _select(now.get("transaction"), _TRANSACTION),
        "dim_payment_type": _select(now.get("payment_type"), _PAYMENT_TYPE),
    }
    return {"dim_date": _dim_date(facts), **dims, **facts}


# -- facts -------------------------------------------------------------------------------------


def _stamps() -> list[pl.Expr]:
    return [
        pl.col("created_at").dt.date().alias("created_date"),
        pl.col("created_at").dt.time().alias("created_time"),
        pl.col("last_updated").dt.date().alias("last_updated_date"),
        pl.col("last_updated").dt.time().alias("last_updated_time"),
    ]


def _day(name: str) -> pl.Expr:
    """A ``yyyy-mm-dd`` text date as a real date (null when absent or malformed)."""
    return pl.col(name).str.to_date("%Y-%m-%d", strict=False).alias(name)


def _numbered(frame: pl.DataFrame, table: str, record: str) -> pl.DataFrame:
    return frame.sort("last_updated", f"{table}_id").with_row_index(record, offset=1)


def _fact(
    frame: pl.DataFrame | None, table: str, star: str, renamed: dict[str, str] | None = None
) -> pl.DataFrame:
    """Every version of ``table`` as rows of the declared ``star`` table.

    Its columns come from the declaration: the first is the record id, the
    four stamps split ``created_at``/``last_updated``, other ``*_date`` columns
    are the source's ``yyyy-mm-dd`` texts as dates, the rest are copied
    (``renamed`` maps a star column to a source column of another name).
    """
    schema = _schema(star)
    if frame is None or frame.is_empty():
        return pl.DataFrame(schema=schema)
    record, *names = schema
    stamps = {expr.meta.output_name(): expr for expr in _stamps()}
    columns = [
        stamps[name]
        if name in stamps
        else _day(name)
        if name.endswith("_date")
        else pl.col((renamed or {}).get(name, name)).alias(name)
        for name in names
    ]
    return (
        _numbered(frame, table, record).select(record, *columns).cast(schema)  # type: ignore[arg-type]
    )


# -- dimensions --------------------------------------------------------------------------------


def _select(frame: pl.DataFrame | None, columns: dict[str, pl.DataType]) -> pl.DataFrame:
    if frame is None or frame.is_empty():
        return pl.DataFrame(schema=columns)
    return frame.select(pl.col(name).cast(dtype) for name, dtype in columns.items())


def _dim_staff(staff: pl.DataFrame | None, department: pl.DataFrame | None) -> pl.DataFrame:
    if staff is None or staff.is_empty():
        return pl.DataFrame(schema=_STAFF)
    departments = _select(department, {"department_id": pl.Int64(), **_DEPARTMENT})
    return staff.join(departments, on="department_id", how="left").select(
        pl.col(name).cast(dtype) for name, dtype in _STAFF.items()
    )


def _dim_location(address: pl.DataFrame | None) -> pl.DataFrame:
    if address is None or address.is_empty():
        return pl.DataFrame(schema=_LOCATION)
    return address.rename({"address_id": "location_id"}).select(
        pl.col(name).cast(dtype) for name, dtype in _LOCATION.items()
    )


def _dim_currency(currency: pl.DataFrame | None) -> pl.DataFrame:
    if currency is None or currency.is_empty():
        return pl.DataFrame(schema=_CURRENCY)
    return currency.select(
        "currency_id",
        "currency_code",
        pl.col("currency_code")
        .replace_strict(CURRENCY_NAMES, default=None, return_dtype=pl.String)
        .alias("currency_name"),
    ).cast(_CURRENCY)  # type: ignore[arg-type]


def _dim_counterparty(
    counterparty: pl.DataFrame | None, address: pl.DataFrame | None
) -> pl.DataFrame:
    if counterparty is None or counterparty.is_empty():
        return pl.DataFrame(schema=_COUNTERPARTY)
    legal = _dim_location(address).select(
        pl.col("location_id").alias("legal_address_id"),
        *(
            pl.col(source).alias(f"counterparty_legal_{target}")
            for source, target in _LEGAL_ADDRESS.items()
        ),
    )
    return counterparty.join(legal, on="legal_address_id", how="left").select(
        pl.col(name).cast(dtype) for name, dtype in _COUNTERPARTY.items()
    )


def _dim_date(facts: dict[str, pl.DataFrame]) -> pl.DataFrame:
    used = [
        frame.select(pl.col(c).alias("date_id"))
        for frame in facts.values()
        for c in frame.columns
        if c.endswith("_date")
    ]
    days = pl.concat(used).drop_nulls().unique().sort("date_id") if used else pl.DataFrame()
    if days.is_empty():
        return pl.DataFrame(schema=_DATE)
    day = pl.col("date_id")
    return days.select(
        day,
        day.dt.year().alias("year"),
        day.dt.month().alias("month"),
        day.dt.day().alias("day"),
        day.dt.weekday().alias("day_of_week"),
        day.dt.strftime("%A").alias("day_name"),
        day.dt.strftime("%B").alias("month_name"),
        day.dt.quarter().alias("quarter"),
    ).cast(_DATE)  # type: ignore[arg-type]


# -- shapes ------------------------------------------------------------------------------------


def _schema(table: str) -> dict[str, pl.DataType]:
    """A star table's Polars schema, from its one declaration in :mod:`brewline.schema`."""
    return TABLES[f"{TOTESYS}_{table}"].polars_schema()


_DESIGN = _schema("dim_design")
_TRANSACTION = _schema("dim_transaction")
_PAYMENT_TYPE = _schema("dim_payment_type")
_STAFF = _schema("dim_staff")
_DEPARTMENT = {"department_name": pl.String(), "location": pl.String()}
_LOCATION = _schema("dim_location")
_COUNTERPARTY = _schema("dim_counterparty")
_CURRENCY = _schema("dim_currency")
_DATE = _schema("dim_date")
_LEGAL_ADDRESS = {
    "address_line_1": "address_line_1",
    "address_line_2": "address_line_2",
    "district": "district",
    "city": "city",
    "postal_code": "postal_code",
    "country": "country",
    "phone": "phone_number",
}
