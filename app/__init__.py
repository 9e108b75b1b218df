"""Mosaic: one window onto every GP practice in a primary care network."""

__version__ = "0.1.0"
