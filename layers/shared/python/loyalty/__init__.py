"""Loyalty platform shared code: the Lambda layer every function imports."""

__version__ = "0.8.0"
