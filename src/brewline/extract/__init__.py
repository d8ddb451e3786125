"""Extract: fingerprint deliveries, detect their layout, read raw fields, convert values."""

from brewline.extract.fingerprint import fingerprint
from brewline.extract.layouts import FIELDS, LAYOUTS, Layout, RawExport, read_export

__all__ = ["FIELDS", "LAYOUTS", "Layout", "RawExport", "fingerprint", "read_export"]
