"""Loyalty platform shared code: the Lambda layer every function imports."""

import gc

# What is loaded before the layer (the runtime; boto3, pydantic and powertools when they come
# first) lives as long as the process: the collector need not scan it again. A full collection
# over those objects while a function's modules load cost a third of its cold import (issue 21).
gc.freeze()

__version__ = "0.8.0"
