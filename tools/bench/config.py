"""The bench's settings (environment) and the names its sections share."""

from __future__ import annotations

import os

from loyalty_local.gateway import REPO

ITERATIONS = int(os.environ.get("BENCH_ITERATIONS", "200"))
# The engine alone on the dense catalogue (pure CPU): evaluations per cart size.
DENSE_ITERATIONS = int(os.environ.get("BENCH_DENSE_ITERATIONS", "2000"))
WARMUP = int(os.environ.get("BENCH_WARMUP", "20"))
IMPORT_RUNS = int(os.environ.get("BENCH_IMPORT_RUNS", "5"))
IMPORT_LIMIT = 1.3  # no function's cold import above 1.3x the floor (issue 21; 1.2x in issue 2)
LAYER_DIR = REPO / "layers" / "shared" / "python"
RT_LATENCY_MS = float(os.environ.get("BENCH_RT_LATENCY_MS", "5"))
EARN_MEMBERS = max(1, int(os.environ.get("BENCH_EARN_MEMBERS", "10")))
PRIOR_LOTS = int(os.environ.get("BENCH_PRIOR_LOTS", "50"))
SALE_LINES = 5
SALE_TARGET_USD = 9.0  # per million member sales at list prices (issue 21; $8 in issue 3)
CATEGORIES = ("coffee", "bakery", "dairy", "snacks", "household")
EARN_PATH = "sale (earn path)"
