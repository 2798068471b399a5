"""What a PUT does to a saved segment and how its background pass moves (pure domain)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from loyalty.domain.segment_definitions import (
    LAKE_SETTLE_SECONDS,
    MAX_RESUMES,
    STALLED_SECONDS,
    advanced,
    blocks_deletion,
    lake_ready,
    saved,
    stalled,
    started,
)

NOW = datetime(2026, 12, 7, 12, tzinfo=UTC)
RULE = {"all": [{"attr": "member", "eq": True}, {"attr": "tier", "eq": "gold"}]}


def test_a_new_segment_is_version_1_with_a_pending_pass() -> None:
    d = saved(None, segment_id="s", name="n", description="", rule=RULE, now=NOW, new_pass_id="p1")
    assert (d.version, d.created_at, d.updated_at) == (1, NOW, NOW)
    assert (d.evaluation.status, d.evaluation.rule_version, d.evaluation.pass_id) == ("pending", 1, "p1")
    assert d.evaluation.requested_at == NOW


def test_only_a_changed_rule_starts_a_new_pass_whatever_the_key_order() -> None:
    first = saved(None, segment_id="s", name="n", description="", rule=RULE, now=NOW, new_pass_id="p1")
    reordered = {"all": [{"eq": True, "attr": "member"}, {"eq": "gold", "attr": "tier"}]}
    later = NOW + timedelta(hours=1)
    renamed = saved(
        first, segment_id="s", name="m", description="d", rule=reordered, now=later, new_pass_id="p2"
    )
    assert (renamed.version, renamed.created_at, renamed.updated_at) == (2, NOW, later)
    assert renamed.evaluation == first.evaluation
    changed = saved(
        renamed, segment_id="s", name="m", description="d", rule={"not": RULE}, now=later, new_pass_id="p3"
    )
    assert changed.version == 3
    assert (changed.evaluation.pass_id, changed.evaluation.rule_version) == ("p3", 3)


def test_the_lake_is_ready_once_it_holds_the_save_or_after_the_settling_time() -> None:
    first = saved(None, segment_id="s", name="n", description="", rule=RULE, now=NOW, new_pass_id="p")
    assert not lake_ready(first.evaluation, None, NOW)
    assert lake_ready(first.evaluation, 1, NOW)
    assert lake_ready(first.evaluation, 2, NOW)  # a rename since: the save is in the lake all the more
    third = saved(
        saved(first, segment_id="s", name="m", description="", rule=RULE, now=NOW, new_pass_id="q"),
        segment_id="s",
        name="m",
        description="",
        rule={"not": RULE},
        now=NOW,
        new_pass_id="r",
    )
    assert third.evaluation.rule_version == 3
    assert not lake_ready(third.evaluation, 2, NOW + timedelta(seconds=10))
    assert lake_ready(third.evaluation, None, NOW + timedelta(seconds=LAKE_SETTLE_SECONDS))


def test_a_pass_moves_its_cursor_and_finishes_on_a_short_page() -> None:
    e = saved(None, segment_id="s", name="n", description="", rule=RULE, now=NOW, new_pass_id="p").evaluation
    running = started(e, total=5, snapshot=NOW, now=NOW)
    one = advanced(running, page=["A", "B", "C"], last_page=False, now=NOW)
    assert (one.status, one.evaluated, one.cursor, one.previous) == ("running", 3, "C", "")
    two = advanced(one, page=["D", "E"], last_page=True, now=NOW)
    assert (two.status, two.evaluated, two.cursor, two.previous, two.finished_at) == (
        "done",
        5,
        "E",
        "C",
        NOW,
    )
    empty = advanced(one, page=[], last_page=True, now=NOW)
    assert (empty.status, empty.cursor, empty.evaluated) == ("done", "C", 3)


def test_an_ended_offer_no_longer_holds_a_segment() -> None:
    assert blocks_deletion(None, NOW)
    assert blocks_deletion(NOW + timedelta(seconds=1), NOW)
    assert not blocks_deletion(NOW, NOW)


def test_a_stalled_pass_is_resumed_with_growing_patience_then_failed() -> None:
    e = saved(None, segment_id="s", name="n", description="", rule=RULE, now=NOW, new_pass_id="p").evaluation
    assert stalled(e, NOW + timedelta(seconds=STALLED_SECONDS - 1)) is None
    at = NOW + timedelta(seconds=STALLED_SECONDS)
    once = stalled(e, at)
    assert once is not None and (once.status, once.resumes) == ("pending", 1)
    assert stalled(once, at + timedelta(seconds=STALLED_SECONDS - 1)) is None  # twice as long since progress
    worn = once
    for n in range(1, MAX_RESUMES):
        nxt = stalled(worn, NOW + timedelta(seconds=STALLED_SECONDS * (n + 1)))
        assert nxt is not None
        worn = nxt
    assert worn.resumes == MAX_RESUMES
    failed = stalled(worn, NOW + timedelta(seconds=STALLED_SECONDS * (MAX_RESUMES + 1)))
    assert failed is not None and failed.status == "failed"
    running = started(e, total=1, snapshot=NOW, now=at)
    assert running.resumes == 0 and stalled(running, at + timedelta(seconds=STALLED_SECONDS - 1)) is None
    done = advanced(running, page=["A"], last_page=True, now=at)
    assert stalled(done, at + timedelta(days=1)) is None
    assert stalled(replace(e, pass_id=""), NOW + timedelta(days=1)) is None  # no PUT started a pass
