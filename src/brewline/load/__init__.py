"""Load: the Warehouse interface, its engines and the DDL.

``open_warehouse`` is the one place that picks an engine from a URL.
"""

from brewline.load.open import open_warehouse
from brewline.load.warehouse import AlreadyLoaded, BranchDayOwned, SqlWarehouse, Warehouse

__all__ = ["AlreadyLoaded", "BranchDayOwned", "SqlWarehouse", "Warehouse", "open_warehouse"]
