"""`make bench`: what each endpoint costs, printed as figures (never a pass/fail exit code).

For every route in the route table, and for the authorizer, it calls the real handler in-process
(no HTTP, no gateway) with the API Gateway event the function would get, and reports:

- DynamoDB round trips per call, split into reads and writes, counted by botocore event hooks on
  the client the Container uses (`before-call` / `after-call`, plus `before-send` for HTTP attempts,
  so a retry would show up as more attempts than calls);
- read and write capacity units per call: as DynamoDB Local reports them (the `ConsumedCapacity`
  every call in `loyalty.adapters.dynamo` asks for), and re-priced by DynamoDB's published rules
  from the requests and responses themselves (item sizes, consistency, transactions, indexes);
- the domain events a call writes into its items' outbox (published to EventBridge from the stream);
- handler time p50 / p99 over ITERATIONS calls after a warm-up, writes using fresh data each time;
- the cost per million calls at AWS on-demand list prices (API Gateway, Lambda, DynamoDB,
  EventBridge, and the authorizer with and without its result cache);
- the earn path of issue 3 on its own: a 5-line sale by a member with 50 earlier lots, against its
  targets (one write round trip, at most one read, at most $9 per million sales, issue 21) and
  its cost per service: API Gateway, Lambda, DynamoDB reads and writes, EventBridge;
- cart evaluation (issue 4): POST /v1/cart/evaluate with 10, 100 and 1,000 live offers (bench_offers'
  synthetic mix, plus some per-customer limits and budgets, written straight through OfferService)
  x 5- and 50-line carts by members with personal coupons, and one anonymous variant: round trips and
  BatchGetItem keys per warm call, capacity, handler and engine p50 / p99 (the engine timed inside the
  handler), the cold call's catalogue load, how often the catalogue version was checked, against the
  issue's targets (a warm evaluation at most one round trip; engine p99 under 5 ms at 1,000 offers and
  50 lines); its rows join the cost table. Then the engine alone on a dense catalogue (offers.py's
  dense case: 1,000 live site-wide offers on 20 categories, every offer a candidate; 5- and 50-line
  carts; p50, p99 and full collections during the run, against p99 under 1 ms and 5 ms).

Customer events (issue 15, bench_events): a 100-event batch of known members, ten types, by id and
by card: round trips per batch (target: at most 2 write round trips), WCU per event, handler time
and the cost per million events at list prices (target: at most $5).

Then identity merges (bench_merges): DynamoDB round trips, capacity and wall time of one merge of a
profile with 10, 100, 1,000 and 10,000 sales (about three minutes of the run, most of it the
10,000-sale profile's set-up and merge), against the issue's target (linear in the records moved,
at most one round trip per 25 records), and merges per second through the local FIFO queue.

Then the activity worker (bench_activity): one SQS batch of 10 bus events through the real handler,
new and then redelivered: round trips, WCU and the cost per million events.

Then segment membership after a sale (bench_segments, issue 17): 50 saved segments, one SQS batch of
10 TransactionRecorded through the segments handler, new and then redelivered: round trips, capacity,
time and the cost per million sales.

Then a new segment's background evaluation (bench_segment_pass) over BENCH_SEGMENT_CUSTOMERS existing
customers (default 10,000, with the arithmetic for 100,000): customers per second, DynamoDB round
trips and capacity per customer, and the cost per customer on AWS (Lambda, DynamoDB, SQS, Athena).

Then the campaign actor (bench_campaign_actor, issue 19): one customer actioned at a time through
container.campaign_actor (a coupon and an email; four actions under a budget; retries; the dry run):
round trips, RCU and WCU per customer and the cost per 1,000 customers actioned.

Then campaign triggers (bench_campaign_triggers, issue 19): trigger-to-action latency p50 / p99 on the
local path `make run` wires (a cart_add event on the bus, and an enrolment from its commit, to the
campaign's receipt written), against the target p99 under 10 s. It runs the stream publisher and the
trigger's tap on a table of its own, so its threads touch neither the metered client nor the runtime's
table.
Then a manual campaign run (bench_campaigns, issue 19) over BENCH_CAMPAIGN_CUSTOMERS customers (default
10,000; 100,000 opt-in, else printed as arithmetic): Prepare, every Batch with the real CampaignActor
and Finish, in one lane: customers per second, DynamoDB round trips and capacity per customer, Step
Functions state transitions per customer, the cost per 1,000 customers actioned on AWS beside SES's
and Step Functions' prices, and the minutes a 1,000,000-customer run takes on AWS by MaxConcurrency.

Then the data lake (bench_lake): stream records per second through the lake handler, report latency
over a generated lake of 1 million transactions and 100,000 customers, and the bytes Athena would
scan per report (from the Parquet metadata) with its price at $5 per TB, scaled to 10 million
customers.

Then segments (bench_segment_preview, issue 17): previews of five rules over generated lakes of 10,000
and 100,000 customers (p50, and the bytes Athena would scan with its price), and the RFM scores
statement over 100,000 customers with what writing its answer costs.

Then the console (bench_console, issue 20): each screen loaded in chromium against a platform of its
own with the demo's data (LOYALTY_API: a running `make run` instead), first contentful paint and
first meaningful paint p50 over BENCH_CONSOLE_LOADS loads against the 1 s target, and the bundle's
compressed size against its 500 KB budget.

Then it times each function's cold import in fresh subprocesses against the floor (a bare process
importing boto3 + pydantic + the powertools resolver), medians of IMPORT_RUNS runs, and checks
that importing a handler does no network I/O, builds no AWS client and pulls in no X-Ray SDK.

DynamoDB is DynamoDB Local (in memory), so handler times include real localhost round trips. The
runtime's background jobs (stream publisher, sweeper) stay off: they would share the metered
client and the two cores.

Settings (environment): BENCH_ITERATIONS, BENCH_WARMUP, BENCH_IMPORT_RUNS, BENCH_RT_LATENCY_MS
(network time added per DynamoDB round trip when pricing Lambda, default 5), BENCH_EARN_MEMBERS
(members the earn path rotates through, default 10), BENCH_PRIOR_LOTS (their earlier lots, 50),
BENCH_CART_PER_CUSTOMER and BENCH_CART_BUDGET (the shares of cart offers with a per-customer limit,
default 0.10, and with a budget, 0.05).
"""

from __future__ import annotations

import logging
import sys
import time

from loyalty.api.routes import ROUTES
from loyalty_local.runtime import LocalRuntime
from tools.bench import activity as bench_activity
from tools.bench import campaign_actor as bench_campaign_actor
from tools.bench import campaign_triggers as bench_campaign_triggers
from tools.bench import campaigns as bench_campaigns
from tools.bench import console as bench_console
from tools.bench import lake as bench_lake
from tools.bench import merges as bench_merges
from tools.bench import messages as bench_messages
from tools.bench import offers as bench_offers
from tools.bench import segment_pass as bench_segment_pass
from tools.bench import segment_preview as bench_segment_preview
from tools.bench import segments as bench_segments
from tools.bench.carts import CART_ROUTE, print_carts
from tools.bench.config import DENSE_ITERATIONS, EARN_PATH, ITERATIONS, WARMUP
from tools.bench.costs import cost_of
from tools.bench.endpoints import EndpointBench
from tools.bench.events import print_events
from tools.bench.imports import measure_imports, print_imports
from tools.bench.redemptions import print_redemptions
from tools.bench.report import print_costs, print_earn_path, print_endpoints, print_prices


def main() -> None:  # noqa: PLR0915 - the bench, section by section, top to bottom
    began = time.monotonic()
    python = sys.version.split()[0]
    print(f"loyalty bench: {ITERATIONS} calls per endpoint after {WARMUP} warm-up calls; Python {python}")
    print()
    # Imports first, while nothing else runs on the machine; then the engine alone on a dense catalogue.
    imports = measure_imports()
    dense = bench_offers.dense_cases(DENSE_ITERATIONS, 7)

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's server logs every request
    # No stream publisher or sweeper threads: they would call DynamoDB through the metered client
    # (they use the installed container) and take CPU from the handlers being timed.
    runtime = LocalRuntime(background_jobs=False).start(with_gateway=False)
    try:
        bench = EndpointBench(runtime)
        results = [bench.measure_authorizer()]
        scenarios = bench.scenarios()
        for scenario in scenarios:
            results.append(bench.measure(scenario))
        carts = bench.measure_carts()
        redemptions = bench.measure_redemptions()
        merges = bench_merges.measure(runtime)
        activity = bench_activity.measure(runtime)
        messages = bench_messages.measure(runtime)
        segments = bench_segments.measure(runtime)
        segment_pass = bench_segment_pass.measure(runtime)
        campaign_actor = bench_campaign_actor.measure(runtime)
        campaign_triggers = bench_campaign_triggers.measure(runtime)
        campaign_run = bench_campaigns.measure(runtime)
    finally:
        runtime.stop()

    print_endpoints(results)
    covered = {(s.method, s.path) for s in scenarios} | {("POST", CART_ROUTE)}  # its own section
    covered |= {(r.route.split(" ", 1)[0], r.route.split(" ", 1)[1]) for r in redemptions.results}
    missing = [f"{r.method} {r.path}" for r in ROUTES if (r.method, r.path) not in covered]
    if missing:
        print(f"\nRoutes without a bench scenario yet: {', '.join(missing)}")
    print()
    authorizer = cost_of(results[0]) if results[0].costs else None
    print_prices()
    print()
    print_costs(results + [case.result for case in carts.cases] + redemptions.results, authorizer)
    print()
    earn = next((r for r in results if r.name == EARN_PATH), None)
    if earn is not None:
        print_earn_path(earn, authorizer)
        print()
    print_events(results, authorizer.total if authorizer else 0.0)
    print()
    print_carts(carts)
    print()
    bench_offers.print_dense(dense)
    print()
    print_redemptions(redemptions)
    print()
    bench_merges.print_figures(merges)
    print()
    bench_activity.print_figures(activity)
    print()
    bench_messages.print_figures(messages)
    print()
    bench_segments.print_figures(segments)
    print()
    bench_segment_pass.print_figures(segment_pass)
    print()
    bench_campaign_actor.print_figures(campaign_actor)
    print()
    bench_campaign_triggers.print_figures(campaign_triggers)
    bench_campaigns.print_figures(campaign_run)
    print()
    bench_lake.print_figures(bench_lake.measure())  # no emulator: a folder lake, DuckDB over Parquet
    bench_segment_preview.print_figures(bench_segment_preview.measure())  # previews and RFM over Parquet
    print()
    bench_console.print_figures(bench_console.measure())  # chromium against a platform with the demo
    print()
    print_imports(imports)
    print(f"\nbench took {time.monotonic() - began:.0f} s")


if __name__ == "__main__":
    main()
