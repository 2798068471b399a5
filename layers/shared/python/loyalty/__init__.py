"""Loyalty platform shared code: the Lambda layer every function imports."""

import gc

# Loading a function allocates a great many objects that live as long as the process, and with
# the default thresholds the collector keeps scanning them while they load (10-20 ms of a cold
# import here, issue 21). It collects rarely until `loyalty.api.app.loaded` (called when a
# handler is built) freezes what was loaded, so later collections skip it, and restores these.
GC_THRESHOLDS = gc.get_threshold()
gc.set_threshold(100_000, *GC_THRESHOLDS[1:])

__version__ = "0.11.0"
