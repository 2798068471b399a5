"""Loyalty platform shared code: the Lambda layer every function imports."""

__version__ = "0.7.0"
