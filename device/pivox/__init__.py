"""Pivox: voice firmware companion for Raspberry Pi smart speakers."""

__version__ = "0.1.0"
