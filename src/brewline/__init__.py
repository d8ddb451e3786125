"""Brewline: branch till exports -> a private, query-ready sales warehouse."""

__version__ = "0.1.0"
