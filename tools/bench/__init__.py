"""`make bench`: figures per endpoint (round trips, capacity, latency, cost), merges, the offer engine."""
