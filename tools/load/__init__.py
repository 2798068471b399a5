"""`make load`: a mixed locust workload against a platform of its own, then the invariants."""
