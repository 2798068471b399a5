"""The base of every pydantic model here.

A model's validator and serializer are built on its first use rather than when its module is
imported: a function imports dozens of models (its routers', the domain's) and uses a few per
request, and building them all cost most of its cold import (issue 21). What a request uses is
built once, on the first request, and kept for the life of the process.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    model_config = ConfigDict(defer_build=True)
