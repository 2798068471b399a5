"""Entry points of the campaign run workflow's Lambda tasks (resources.CAMPAIGN_RUN).

The state machine (loyalty_infra.campaign_runs) passes JSON between them; this is the contract.

Execution input (services.campaign_run_control starts it, one execution per attempt of a run)::

    {"campaign_id": "c-1", "run_id": "r-1",              # [A-Za-z0-9][A-Za-z0-9_.:-]{0,63}
     "batch_size": 100}                                    # optional; resources.CAMPAIGN_RUN's otherwise

Prepare (`prepare_run`, function campaign-prepare) exports the campaign's segment members (once per
run: a retried run reuses the manifest) and returns, stored at `$.prepared`::

    {"bucket": "...", "manifest_key": "runs/c-1/r-1/manifest.json", "batches": 10, "items": 1000}

It writes `runs/<campaign>/<run>/batches/<n:06d>.json` = `{"batch": n, "items": [...]}` and then the
manifest, a JSON array of `{"batch": n, "key": "...", "items": k}`. Batching happens here because
the Distributed Map's ItemBatcher is not run by the local emulator (design.md); the audience is
deduplicated and cut in its order, so a restart cuts the same batches.

The Distributed Map reads the manifest (ItemReader, s3:getObject, JSON) and gives each iteration
`{"campaign_id", "run_id", "batch": <manifest entry>}`.

Batch (`run_batch`, function campaign-batch) calls `CampaignActor.act(campaign,
Occasion("run:<run_id>", run_id), customer)` for each customer of that batch file, records the
batch's outcome (control, actioned, skipped by reason, failed) and returns
`{"batch": n, "items": k, "done": k, "first_time": j, "failed": 0, "counts": {...}}`. Any exception
fails the attempt; the Retry backs off and runs the whole batch again (answered customers get their
recorded outcome back), except for `InvalidTaskInput`, which goes straight to the Catch. The Catch
calls the same function with the iteration's input plus `"error": {"Error": ..., "Cause": ...}`:
it records the batch as failed (all its items counted failed) and returns that outcome.

Finish (`finish_run`, function campaign-finish) gets the execution input with `prepared` (absent if
Prepare failed) and `error` (present if Prepare or the Map failed), sums the batches' outcomes,
writes the run's summary and the run record's final counts and status, and returns it::

    {"status": "succeeded" | "failed" | "cancelled", "items": 1000, "done": 1000, "failed": 0,
     "batches": 10, "batches_failed": 0, "batches_missing": 0, "error": null,
     "counts": {"audience", "control", "actioned", "skipped": {reason: n}, "failed"}}

A failed summary ends the execution FAILED (error `CampaignRunFailed`), so it can be redriven or
restarted; a restart under the same run_id gives no item its effect twice.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit

from loyalty.bootstrap import container
from loyalty.domain.campaign_runs import InvalidTaskInput, RunRef
from loyalty.observability import logger, metrics
from loyalty.services.campaign_runs import Prepared


def _batch_size(event: dict[str, Any]) -> int | None:
    size = event.get("batch_size")
    if size is None:
        return None
    if not isinstance(size, int) or isinstance(size, bool) or not 1 <= size <= 10_000:
        raise InvalidTaskInput("batch_size must be an integer from 1 to 10000")
    return size


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def prepare_run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run = RunRef.of(event)
    logger.append_keys(campaign_id=run.campaign_id, run_id=run.run_id)
    prepared = container().campaign_runs.prepare(run, _batch_size(event))
    logger.info("audience exported", extra=prepared.as_dict())
    return prepared.as_dict()


def _manifest_entry(event: dict[str, Any]) -> tuple[int, str, int]:
    entry = event.get("batch")
    if not isinstance(entry, dict):
        raise InvalidTaskInput("batch must be a manifest entry {batch, key, items}")
    number, key, items = entry.get("batch"), entry.get("key"), entry.get("items")
    if not isinstance(number, int) or not isinstance(key, str) or not isinstance(items, int):
        raise InvalidTaskInput("batch must be a manifest entry {batch, key, items}")
    return number, key, items


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def run_batch(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run = RunRef.of(event)
    number, key, items = _manifest_entry(event)
    logger.append_keys(campaign_id=run.campaign_id, run_id=run.run_id, batch=number)
    runs = container().campaign_runs
    if "error" in event:
        error = event["error"] if isinstance(event["error"], dict) else {}
        outcome = runs.record_failure(run, number, items, f"{error.get('Error')}: {error.get('Cause')}")
        metrics.add_metric(name="CampaignBatchesFailed", unit=MetricUnit.Count, value=1)
        logger.warning("batch failed", extra={"error": error.get("Error")})
    else:
        outcome = runs.apply_batch(run, number, key)
        metrics.add_metric(name="CampaignItemsApplied", unit=MetricUnit.Count, value=outcome.first_time)
    return {
        "batch": outcome.batch,
        "items": outcome.items,
        "done": outcome.done,
        "first_time": outcome.first_time,
        "failed": outcome.failed,
        "counts": outcome.counts.as_dict(),
    }


def _prepared(raw: object) -> Prepared | None:
    if not isinstance(raw, dict):
        return None
    try:
        return Prepared(str(raw["bucket"]), str(raw["manifest_key"]), int(raw["batches"]), int(raw["items"]))
    except (KeyError, TypeError, ValueError):
        raise InvalidTaskInput("prepared must be Prepare's output") from None


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def finish_run(event: dict[str, Any], context: Any) -> dict[str, Any]:
    run = RunRef.of(event)
    logger.append_keys(campaign_id=run.campaign_id, run_id=run.run_id)
    raw_error = event.get("error")
    error = (
        f"{raw_error.get('Error')}: {raw_error.get('Cause')}"[:500] if isinstance(raw_error, dict) else None
    )
    summary = container().campaign_runs.finish(run, _prepared(event.get("prepared")), error)
    metrics.add_metric(
        name="CampaignRunsSucceeded" if summary.status == "succeeded" else "CampaignRunsFailed",
        unit=MetricUnit.Count,
        value=1,
    )
    logger.info("run finished", extra=summary.as_dict())
    return summary.as_dict()
