"""Read-only questions over the totesys star, answered as Polars frames.

One function, :func:`totesys_report`, asks everything the ``brewline report
--source totesys`` command and the dashboard's ``/totesys`` page show, through
the :class:`~brewline.load.Reader` role in portable SQL (DuckDB and PostgreSQL)::

    >>> with open_warehouse("brewline.duckdb", read_only=True) as wh:  # doctest: +SKIP
    ...     report = totesys_report(wh, as_of=dt.date(2026, 11, 30))
    ...     report.by_currency
    shape: (3, 4) ...

Rules every figure follows:

- **The current version only.** The facts keep every version an extract saw; a
  sales order counts once, as its newest version (the greatest
  ``sales_record_id`` of its ``sales_order_id``: record ids number versions in
  ``last_updated`` order), a payment as its newest ``payment_record_id``.
- **Never two currencies in one sum.** Every money figure is per currency;
  rankings (top designs, counterparties, staff, locations) are by units sold,
  which add up across currencies, and each ranked row is then split per currency.
- **Exact money.** Revenue is ``units_sold * unit_price`` summed as
  :data:`~brewline.schema.MONEY_SQL`, a ``Decimal`` in Polars.
- **Late dimensions still count.** Facts are LEFT JOINed to their dimensions:
  an order whose design is not loaded yet counts under ``design #<id> (not
  loaded yet)``, and likewise for counterparties, staff, locations and currencies.
"""

from __future__ import annotations

import datetime as dt
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import polars as pl

from brewline.load.roles import Params, Reader
from brewline.queries import MONEY
from brewline.schema import MONEY_SQL, TOTESYS

__all__ = [
    "AGEING_BUCKETS",
    "GENERATION_META",
    "TotesysReport",
    "labels",
    "loaded_generation",
    "sync_hint",
    "totesys_report",
]

GENERATION_META = "totesys_star_generation"
"""The ``etl_meta`` entry naming the star generation the last totesys load put in."""

AGEING_BUCKETS: tuple[str, ...] = ("not yet due", "0-30", "31-60", "61-90", ">90")
"""Days an unpaid payment is past its ``payment_date``, as of the report's day, in order.

``0-30`` starts on the due day itself (0 days overdue)."""
NO_DATE = "no date"
"""The bucket of an unpaid payment without a readable ``payment_date``."""

_T = f"{TOTESYS}_"


def _current(name: str, fact: str, record: str, natural: str) -> str:
    """A CTE ``name``: each ``natural`` id's newest version (highest ``record``) in ``fact``."""
    return f"""
    {name} AS (
        SELECT * FROM {_T}{fact}
        WHERE {record} IN (SELECT MAX({record}) FROM {_T}{fact} GROUP BY {natural})
    )"""


_CURRENT_SALES = _current("current_sales", "fact_sales_order", "sales_record_id", "sales_order_id")
_CURRENT_PAYMENTS = _current("current_payments", "fact_payment", "payment_record_id", "payment_id")
_CURRENCY = "COALESCE(c.currency_code, 'currency #' || CAST(s.currency_id AS TEXT))"
_CURRENCY_JOIN = f"LEFT JOIN {_T}dim_currency c ON c.currency_id = s.currency_id"
_FIGURES = f"""
    COUNT(*) AS orders, CAST(SUM(s.units_sold) AS BIGINT) AS units,
    CAST(SUM(s.units_sold * s.unit_price) AS {MONEY_SQL}) AS revenue"""
_FIGURE_TYPES: dict[str, pl.DataType] = {
    "orders": pl.Int64(),
    "units": pl.Int64(),
    "revenue": MONEY,
}


def _missing(what: str, key: str) -> str:
    """The label of a row whose dimension has not arrived: ``design #7 (not loaded yet)``."""
    return f"'{what} #' || CAST({key} AS TEXT) || ' (not loaded yet)'"


@dataclass(frozen=True)
class _Ranked:
    """A dimension sales are ranked by: its key on the fact, its table, its label."""

    name: str
    fact_key: str
    table: str
    dim_key: str
    label: str
    extra: tuple[tuple[str, str], ...] = ()
    column: str = ""
    """The label's column name (default: ``name``)."""


_DESIGN = _Ranked(
    "design",
    "design_id",
    "dim_design",
    "design_id",
    f"COALESCE(d.design_name, {_missing('design', 'r.id')})",
)
_COUNTERPARTY = _Ranked(
    "counterparty",
    "counterparty_id",
    "dim_counterparty",
    "counterparty_id",
    f"COALESCE(d.counterparty_legal_name, {_missing('counterparty', 'r.id')})",
)
_STAFF = _Ranked(
    "staff",
    "sales_staff_id",
    "dim_staff",
    "staff_id",
    f"COALESCE(d.first_name || ' ' || d.last_name, {_missing('staff', 'r.id')})",
    (("department", "COALESCE(d.department_name, '(no department)')"),),
)
_LOCATION = _Ranked(
    "location",
    "agreed_delivery_location_id",
    "dim_location",
    "location_id",
    f"COALESCE(d.city, {_missing('location', 'r.id')})",
    (("country", "COALESCE(d.country, '(unknown)')"),),
    column="city",
)


@dataclass(frozen=True)
class TotesysReport:
    """Every totesys view, from the current version of each sales order and payment.

    Sales frames carry ``orders, units, revenue`` per ``currency`` (ISO code):

    - ``by_currency``: ``currency, orders, units, revenue``;
    - ``by_month``: ``month`` (its first day, of ``created_date``), ``currency, ...``;
    - ``by_design``, ``by_counterparty``: the top ``limit`` by units sold:
      ``rank, <name>_id, <name>, currency, orders, units, revenue`` (a row per
      currency the design or counterparty sold in);
    - ``by_staff``: every member of staff, ranked the same way, with ``department``;
    - ``by_department``: ``department, currency, ...`` (by the seller's department);
    - ``by_location``: every delivery location (``location_id``), ranked, with
      ``city`` and ``country``;
    - ``by_country``: ``country, currency, ...``;
    - ``ageing``: unpaid payments (current version ``paid`` false) by
      ``payment_type, currency, bucket`` (:data:`AGEING_BUCKETS`, then
      ``no date``): ``payments, amount``. Days overdue count from
      ``payment_date`` to ``as_of``.

    ``generation`` is the star generation the warehouse holds (None before any sync).
    """

    as_of: dt.date
    generation: str | None
    by_currency: pl.DataFrame
    by_month: pl.DataFrame
    by_design: pl.DataFrame
    by_counterparty: pl.DataFrame
    by_staff: pl.DataFrame
    by_department: pl.DataFrame
    by_location: pl.DataFrame
    by_country: pl.DataFrame
    ageing: pl.DataFrame

    @property
    def empty(self) -> bool:
        """True when the warehouse holds no totesys sales order and no unpaid payment."""
        return self.by_currency.is_empty() and self.ageing.is_empty()

    def frames(self) -> dict[str, pl.DataFrame]:
        """The frames by field name, in declaration order."""
        return {
            f.name: getattr(self, f.name)
            for f in fields(self)
            if isinstance(getattr(self, f.name), pl.DataFrame)
        }

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``as_of``, ``generation`` and each frame as a list of records.

        Money stays ``Decimal`` (the CLI writes it as a string); dates stay dates.
        """
        return {
            "as_of": self.as_of,
            "generation": self.generation,
            **{name: frame.to_dicts() for name, frame in self.frames().items()},
        }


def totesys_report(wh: Reader, *, as_of: dt.date | None = None, limit: int = 10) -> TotesysReport:
    """Ask everything a totesys report shows (after :meth:`~brewline.load.Reader.check_schema`).

    ``as_of`` is the day unpaid payments are aged from (default: today, UTC);
    ``limit`` bounds the top designs and counterparties.
    """
    wh.check_schema()
    day = dt.datetime.now(dt.UTC).date() if as_of is None else as_of
    return TotesysReport(
        as_of=day,
        generation=loaded_generation(wh),
        by_currency=_by_currency(wh),
        by_month=_by_month(wh),
        by_design=_ranked(wh, _DESIGN, limit),
        by_counterparty=_ranked(wh, _COUNTERPARTY, limit),
        by_staff=_ranked(wh, _STAFF, None),
        by_department=_by_department(wh),
        by_location=_ranked(wh, _LOCATION, None),
        by_country=_by_country(wh),
        ageing=_ageing(wh, day),
    )


def sync_hint(warehouse: str) -> str:
    """The command that loads the totesys star into ``warehouse`` (shown when it has none).

    >>> sync_hint("brewline.duckdb")
    'brewline sync SOURCE_URL --lake LAKE --warehouse brewline.duckdb'
    """
    return f"brewline sync SOURCE_URL --lake LAKE --warehouse {shlex.quote(warehouse)}"


def labels(frame: pl.DataFrame, column: str, key: str) -> list[str]:
    """``column``'s values for display, unique per ``key``: a name two ids share gets `` #<id>``.

    Two designs may both be called "Rustic"; a chart would draw them as one bar.

    >>> labels(pl.DataFrame({"design": ["Rustic", "Soft", "Rustic"], "design_id": [7, 8, 9]}),
    ...        "design", "design_id")
    ['Rustic #7', 'Soft', 'Rustic #9']
    """
    pairs = list(zip(frame[column].to_list(), frame[key].to_list(), strict=True))
    ids: dict[str, set[object]] = {}
    for name, ident in pairs:
        ids.setdefault(name, set()).add(ident)
    return [f"{name} #{ident}" if len(ids[name]) > 1 else name for name, ident in pairs]


def loaded_generation(wh: Reader) -> str | None:
    """The star generation the last totesys load put in the warehouse, or None."""
    found = wh.query(f"SELECT value FROM etl_meta WHERE name = '{GENERATION_META}'")
    return None if found.is_empty() else str(found.item(0, 0))


def _ask(
    wh: Reader, sql: str, schema: Mapping[str, pl.DataType], params: Params = ()
) -> pl.DataFrame:
    """Run ``sql`` and cast the answer to ``schema`` (engines differ in result types)."""
    return wh.query(sql, params).cast(pl.Schema(schema))


# -- sales ---------------------------------------------------------------------------------------


def _by_currency(wh: Reader) -> pl.DataFrame:
    sql = f"""
        WITH {_CURRENT_SALES}
        SELECT {_CURRENCY} AS currency, {_FIGURES}
        FROM current_sales s {_CURRENCY_JOIN}
        GROUP BY {_CURRENCY}
        ORDER BY currency
    """
    return _ask(wh, sql, {"currency": pl.String(), **_FIGURE_TYPES})


def _by_month(wh: Reader) -> pl.DataFrame:
    year = "CAST(EXTRACT(YEAR FROM s.created_date) AS INTEGER)"
    month = "CAST(EXTRACT(MONTH FROM s.created_date) AS INTEGER)"
    sql = f"""
        WITH {_CURRENT_SALES}
        SELECT {year} AS year, {month} AS month, {_CURRENCY} AS currency, {_FIGURES}
        FROM current_sales s {_CURRENCY_JOIN}
        GROUP BY {year}, {month}, {_CURRENCY}
        ORDER BY year, month, currency
    """
    schema = {"year": pl.Int32(), "month": pl.Int32(), "currency": pl.String(), **_FIGURE_TYPES}
    answer = _ask(wh, sql, schema)
    return answer.select(
        pl.date(pl.col("year"), pl.col("month"), 1).alias("month"),
        "currency",
        *_FIGURE_TYPES,
    )


def _ranked(wh: Reader, by: _Ranked, limit: int | None) -> pl.DataFrame:
    """Sales per ``by`` ranked by units (all currencies), then split per currency.

    Ties in units are broken by id, so the ranking is stable.
    """
    column = by.column or by.name
    extra = "".join(f", {expr} AS {name}" for name, expr in by.extra)
    extra_group = "".join(f", {expr}" for _, expr in by.extra)
    top = "" if limit is None else "WHERE ranking.rank <= ?"
    sql = f"""
        WITH {_CURRENT_SALES},
        ranking AS (
            SELECT {by.fact_key} AS id,
                   ROW_NUMBER() OVER (ORDER BY SUM(units_sold) DESC, {by.fact_key}) AS rank
            FROM current_sales GROUP BY {by.fact_key}
        ),
        r AS (SELECT id, rank FROM ranking {top})
        SELECT CAST(r.rank AS BIGINT) AS rank, r.id AS {by.name}_id, {by.label} AS {column}
               {extra}, {_CURRENCY} AS currency, {_FIGURES}
        FROM current_sales s
        JOIN r ON r.id = s.{by.fact_key}
        LEFT JOIN {_T}{by.table} d ON d.{by.dim_key} = r.id
        {_CURRENCY_JOIN}
        GROUP BY r.rank, r.id, {by.label}{extra_group}, {_CURRENCY}
        ORDER BY rank, currency
    """
    schema: dict[str, pl.DataType] = {
        "rank": pl.Int64(),
        f"{by.name}_id": pl.Int64(),
        column: pl.String(),
        **{name: pl.String() for name, _ in by.extra},
        "currency": pl.String(),
        **_FIGURE_TYPES,
    }
    return _ask(wh, sql, schema, () if limit is None else (limit,))


def _by_department(wh: Reader) -> pl.DataFrame:
    department = (
        "CASE WHEN d.staff_id IS NULL THEN '(staff not loaded yet)' "
        "ELSE COALESCE(d.department_name, '(no department)') END"
    )
    join = f"{_T}dim_staff d ON d.staff_id = s.sales_staff_id"
    return _per_currency(wh, "department", department, join)


def _by_country(wh: Reader) -> pl.DataFrame:
    country = "COALESCE(d.country, '(location not loaded yet)')"
    join = f"{_T}dim_location d ON d.location_id = s.agreed_delivery_location_id"
    return _per_currency(wh, "country", country, join)


def _per_currency(wh: Reader, name: str, label: str, join: str) -> pl.DataFrame:
    """Units and revenue of the current sales per ``label`` (from the ``join``ed
    dimension ``d``) and currency, sorted by both."""
    sql = f"""
        WITH {_CURRENT_SALES}
        SELECT {label} AS {name}, {_CURRENCY} AS currency, {_FIGURES}
        FROM current_sales s
        LEFT JOIN {join}
        {_CURRENCY_JOIN}
        GROUP BY {label}, {_CURRENCY}
        ORDER BY {name}, currency
    """
    return _ask(wh, sql, {name: pl.String(), "currency": pl.String(), **_FIGURE_TYPES})


# -- payments ------------------------------------------------------------------------------------


def _ageing(wh: Reader, as_of: dt.date) -> pl.DataFrame:
    """Unpaid payments by type, currency and days overdue as of ``as_of``.

    Bucket bounds are dates computed here, so the SQL needs no date arithmetic
    (the engines disagree on it): ``payment_date > as_of`` is not yet due,
    ``>= as_of - 30`` is 0-30 days overdue, and so on.
    """
    bounds = [as_of - dt.timedelta(days=d) for d in (0, 30, 60, 90)]
    not_due, b30, b60, b90, older = AGEING_BUCKETS
    bucket = f"""CASE
        WHEN s.payment_date IS NULL THEN '{NO_DATE}'
        WHEN s.payment_date > ? THEN '{not_due}'
        WHEN s.payment_date >= ? THEN '{b30}'
        WHEN s.payment_date >= ? THEN '{b60}'
        WHEN s.payment_date >= ? THEN '{b90}'
        ELSE '{older}' END"""
    order = " ".join(f"WHEN '{name}' THEN {i}" for i, name in enumerate(AGEING_BUCKETS))
    payment_type = f"COALESCE(t.payment_type_name, {_missing('payment type', 's.payment_type_id')})"
    sql = f"""
        WITH {_CURRENT_PAYMENTS},
        aged AS (
            SELECT s.payment_type_id, s.currency_id, s.payment_amount, {bucket} AS bucket
            FROM current_payments s WHERE s.paid = FALSE
        )
        SELECT {payment_type} AS payment_type, {_CURRENCY} AS currency, s.bucket,
               COUNT(*) AS payments, CAST(SUM(s.payment_amount) AS {MONEY_SQL}) AS amount
        FROM aged s
        LEFT JOIN {_T}dim_payment_type t ON t.payment_type_id = s.payment_type_id
        {_CURRENCY_JOIN}
        GROUP BY {payment_type}, {_CURRENCY}, s.bucket
        ORDER BY payment_type, currency, CASE s.bucket {order} ELSE {len(AGEING_BUCKETS)} END
    """
    schema = {
        "payment_type": pl.String(),
        "currency": pl.String(),
        "bucket": pl.String(),
        "payments": pl.Int64(),
        "amount": MONEY,
    }
    return _ask(wh, sql, schema, bounds)
