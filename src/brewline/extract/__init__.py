"""Extract: find landing files, fingerprint them, read their layout into raw fields."""

from brewline.extract.files import SourceFile, discover, fingerprint
from brewline.extract.layouts import FIELDS, LAYOUTS, Layout, RawExport, read_export

__all__ = [
    "FIELDS",
    "LAYOUTS",
    "Layout",
    "RawExport",
    "SourceFile",
    "discover",
    "fingerprint",
    "read_export",
]
