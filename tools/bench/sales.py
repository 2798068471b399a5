"""The sale rows of `make bench` on their own (`python -m tools.bench.sales`, about a minute):
enrolments (the card sales need members), every sale and return scenario, the reads of the
history, the earn path's breakdown per item and per service. What `make bench` prints for them,
without its other sections, so that a change to the sale can be measured before and after."""

from __future__ import annotations

import logging

from loyalty_local.runtime import LocalRuntime
from tools.bench.config import EARN_PATH
from tools.bench.costs import cost_of
from tools.bench.endpoints import EndpointBench
from tools.bench.report import print_costs, print_earn_path, print_endpoints, print_prices


def main() -> None:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    runtime = LocalRuntime(background_jobs=False).start(with_gateway=False)
    try:
        bench = EndpointBench(runtime)
        results = [bench.measure_authorizer()]
        wanted = {"enroll"}
        for scenario in bench.scenarios():
            if scenario.name in wanted or scenario.path.startswith(("/v1/transactions", "/v1/customers/{")):
                if scenario.path.startswith("/v1/customers/{") and scenario.name not in ("history", "ledger"):
                    continue
                results.append(bench.measure(scenario))
    finally:
        runtime.stop()
    print_endpoints(results)
    print()
    authorizer = cost_of(results[0]) if results[0].costs else None
    print_prices()
    print()
    print_costs(results, authorizer)
    print()
    earn = next((r for r in results if r.name == EARN_PATH), None)
    if earn is not None:
        print_earn_path(earn, authorizer)


if __name__ == "__main__":
    main()
