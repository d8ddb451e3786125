"""Validate: row rules with named reasons, and the quarantine for rejected lines."""

from brewline.validate.quarantine import write_quarantine
from brewline.validate.rules import REASONS, ValidatedExport, validate_rows

__all__ = ["REASONS", "ValidatedExport", "validate_rows", "write_quarantine"]
