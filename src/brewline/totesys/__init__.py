"""The totesys source: an OLTP PostgreSQL extracted incrementally into a parquet lake.

totesys is the operational database of a company that designs and sells tote bags
(sales orders, purchase orders, transactions and payments, with their small
reference tables); its shape is described in ``shared/data/totesys/README.md``.
``generate`` builds and fills such a database for the tests, the demo and the
benchmarks, and keeps writing to it while an extract runs; ``extract`` ->
``lake`` -> ``model`` -> ``sync`` bring it into the warehouse.
"""

__all__ = ["SOURCE_TABLES"]

SOURCE_TABLES: tuple[str, ...] = (
    "address",
    "counterparty",
    "currency",
    "department",
    "design",
    "staff",
    "sales_order",
    "purchase_order",
    "payment_type",
    "transaction",
    "payment",
)
"""The source tables in dependency order (a table only references earlier ones)."""
