"""Load: the warehouse roles (loader, ledger, reader), their SQL, and the engines.

``open_warehouse`` is the one place that picks an engine for a location.
"""

from brewline.load.open import open_warehouse
from brewline.load.roles import (
    AlreadyLoaded,
    BranchDayOwned,
    Ledger,
    Loader,
    Reader,
    Replacement,
    Warehouse,
)

__all__ = [
    "AlreadyLoaded",
    "BranchDayOwned",
    "Ledger",
    "Loader",
    "Reader",
    "Replacement",
    "Warehouse",
    "open_warehouse",
]
