"""Validate: row rules with named reasons, and the quarantine for rejected lines."""

from brewline.validate.quarantine import write_quarantine
from brewline.validate.rules import REASONS, CheckedExport, check_rows

__all__ = ["REASONS", "CheckedExport", "check_rows", "write_quarantine"]
