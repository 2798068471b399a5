"""A campaign run's arithmetic (loyalty.domain.campaign_runs) and the template resolver, no network."""

from __future__ import annotations

import pytest

from loyalty.domain.campaign_runs import (
    BatchOutcome,
    InvalidTaskInput,
    RunRef,
    batches,
    summarise,
    unique_items,
)
from loyalty_local.stepfunctions import UnresolvedReference, references, resolve


def test_batches_cut_the_audience_in_order_the_same_way_every_time() -> None:
    items = [f"c{i}" for i in range(7)]
    cut = [(n, list(chunk)) for n, chunk in batches(items, 3)]
    assert cut == [(0, ["c0", "c1", "c2"]), (1, ["c3", "c4", "c5"]), (2, ["c6"])]
    assert cut == [(n, list(chunk)) for n, chunk in batches(items, 3)]
    assert list(batches([], 3)) == []
    with pytest.raises(InvalidTaskInput):
        list(batches(items, 0))


def test_an_audience_lists_each_item_once_and_rejects_what_cannot_be_a_key() -> None:
    assert unique_items(["a", "b", "a", "c"]) == ["a", "b", "c"]
    for bad in ("", "has space", "a#b", "a/b", "x" * 129):
        with pytest.raises(InvalidTaskInput):
            unique_items([bad])


def test_run_ids_are_checked() -> None:
    assert RunRef.of({"campaign_id": "c-1", "run_id": "2026-12-07T10:00"}) == RunRef(
        "c-1", "2026-12-07T10:00"
    )
    for bad in (
        {"campaign_id": "c-1"},
        {"campaign_id": "c 1", "run_id": "r"},
        {"campaign_id": 1, "run_id": "r"},
    ):
        with pytest.raises(InvalidTaskInput):
            RunRef.of(bad)


def test_a_run_succeeds_only_when_every_batch_is_done_item_for_item() -> None:
    done = [BatchOutcome(batch=n, items=10, done=10, first_time=10) for n in range(3)]
    assert summarise(3, 30, done).status == "succeeded"
    # A batch missing (a stopped run), a batch failed, a workflow error: failed, with counts all the same.
    missing = summarise(3, 30, done[:2])
    assert (missing.status, missing.done, missing.batches_missing) == ("failed", 20, 1)
    failed = summarise(3, 30, [*done[:2], BatchOutcome(batch=2, items=10, failed=10, error="X: y")])
    assert (failed.status, failed.done, failed.failed, failed.batches_failed) == ("failed", 20, 10, 1)
    errored = summarise(3, 30, done, error="States.Timeout: late")
    assert (errored.status, errored.done) == ("failed", 30)
    # Outcomes of batches outside the manifest (another cut of the audience) do not count.
    assert summarise(2, 20, done).done == 20


def test_the_resolver_turns_a_synthesised_definition_into_asl() -> None:
    body = {
        "Fn::Join": [
            "",
            [
                '{"Resource":"',
                {"Fn::GetAtt": ["Fn1", "Arn"]},
                '","Bucket":"',
                {"Ref": "Bucket1"},
                '","Partition":"arn:',
                {"Ref": "AWS::Partition"},
                '","Name":"',
                {"Fn::Select": [1, {"Fn::Split": [":", "a:b:c"]}]},
                '"}',
            ],
        ]
    }
    assert set(references(body)) == {("Fn1", "Arn"), ("Bucket1", None), ("AWS::Partition", None)}
    refs = {"Fn1.Arn": "arn:fn", "Bucket1": "bucket-1", "AWS::Partition": "aws"}
    assert resolve(body, refs) == '{"Resource":"arn:fn","Bucket":"bucket-1","Partition":"arn:aws","Name":"b"}'
    with pytest.raises(UnresolvedReference):
        resolve({"Ref": "Unknown"}, refs)


def test_execution_names_fit_step_functions_and_never_collide() -> None:
    import re

    from loyalty.domain.campaign_runs import execution_name

    long_id = "c" * 64
    for campaign_id, run_id in (
        ("spring", "run-1"),
        (long_id, "r" * 64),
        ("c-1", "sched-2027-03-29T07:00:00Z"),
    ):
        name = execution_name(campaign_id, run_id, 12)
        assert len(name) <= 80 and re.fullmatch(r"[A-Za-z0-9_-]+", name), name
        assert name.endswith("-12")
    # Ids that differ only in what the name drops or cuts still name different executions
    assert execution_name("c-1", "a:b", 1) != execution_name("c-1", "a_b", 1)
    assert execution_name(long_id, "r" * 64, 1) != execution_name(long_id, "r" * 63 + "s", 1)
    assert execution_name("c-1", "r-1", 1) != execution_name("c-1", "r-1", 2)
