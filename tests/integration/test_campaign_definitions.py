"""Campaign definitions against DynamoDB Local and moto's EventBridge Scheduler: the repository
(versions, the segment guard, the list in id order), what the service keeps in step with a saved
campaign (its schedule, its derived trigger segment, the segments it blocks from deletion), and a
weekly schedule fired by the local Scheduler on a controlled clock across both daylight-saving
changes, starting one run per occurrence at 09:00 Amsterdam time."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from loyalty.adapters.campaign_definitions import (
    CampaignExists,
    CampaignRepository,
    SegmentGone,
    StaleCampaign,
)
from loyalty.bootstrap import Container
from loyalty.domain.campaign_definitions import schedule_name, trigger_segment_id
from loyalty.domain.campaigns import Campaign, CampaignDefinition
from loyalty.domain.errors import (
    CampaignNotFound,
    CampaignNotRunnable,
    SegmentInUse,
    SegmentNotFound,
    TemplateInUse,
    ValidationFailed,
)
from loyalty.domain.offers import Offer
from loyalty.domain.templates import Channel, Purpose, Template
from loyalty.resources import CAMPAIGN_SCHEDULES
from loyalty_local import stepfunctions
from loyalty_local.scheduler import ScheduleRunner
from loyalty_local.seed import DEMO_ABANDONED_CART, DEMO_CAMPAIGNS, seed_demo_campaigns
from tests.conftest import FixedClock

# The local Scheduler's runners fire every schedule in moto: one worker runs the tests that tick.
pytestmark = pytest.mark.xdist_group("scheduler")

START = datetime(2026, 10, 1, 10, 0, tzinfo=UTC)


class ListQueue:
    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []

    def send(self, body: Mapping[str, Any], delay_seconds: int = 0) -> None:
        self.sent.append(dict(body))


class RecordingRunControl:
    """Stands in for camprun's run control: records each start."""

    def __init__(self) -> None:
        self.started: list[tuple[str, str, str]] = []

    def start(self, campaign_id: str, *, run_id: str, trigger: str) -> dict[str, str]:
        self.started.append((campaign_id, run_id, trigger))
        return {"run_id": run_id, "status": "running"}


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def platform(make_container: Any, clock: FixedClock) -> Container:
    container: Container = make_container(clock)
    container.segment_queue = ListQueue()  # the segments job is not under test
    container.segments.put("vip", name="VIP", description="", rule={"attr": "member", "eq": True})
    container.offers.create_offer(
        Offer.model_validate(
            {
                "offer_id": "ten-off",
                "name": "10% off",
                "requires_coupon": True,
                "effect": {"type": "percent_off", "value": "10"},
            }
        )
    )
    return container


def weekly(status: str = "active", **changes: Any) -> CampaignDefinition:
    body: dict[str, Any] = {
        "name": "Monday mail",
        "trigger": {"type": "schedule", "cron": "cron(0 9 ? * MON *)", "timezone": "Europe/Amsterdam"},
        "audience": {"segment_id": "vip"},
        "actions": [{"type": "points", "points": 10}],
        "status": status,
    }
    return CampaignDefinition.model_validate(body | changes)


def schedule_of(container: Container, campaign_id: str) -> dict[str, Any] | None:
    client = container.client("scheduler")
    try:
        found: dict[str, Any] = client.get_schedule(
            GroupName=container.settings.campaign_schedule_group, Name=schedule_name(campaign_id)
        )
    except client.exceptions.ResourceNotFoundException:
        return None
    return found


# ---- the repository ---------------------------------------------------------------------------


def test_versions_are_conditional_and_the_list_pages_in_id_order(platform: Container) -> None:
    repo = CampaignRepository(platform.table)
    made = [
        Campaign(**weekly().model_dump(), campaign_id=f"repo-{n}", created_at=START, updated_at=START)
        for n in (3, 1, 2)
    ]
    for campaign in made:
        repo.save(campaign, None)
    with pytest.raises(CampaignExists):
        repo.save(made[0], None)
    second = made[0].model_copy(update={"version": 2, "name": "renamed"})
    repo.save(second, 1)
    with pytest.raises(StaleCampaign):
        repo.save(second.model_copy(update={"version": 3}), 1)
    assert repo.get("repo-3") == second
    first, cursor = repo.list_page(2, None)
    rest, end = repo.list_page(2, cursor)
    assert [c.campaign_id for c in first + rest] == ["repo-1", "repo-2", "repo-3"]
    assert end is None
    repo.delete("repo-1", 1)
    assert repo.get("repo-1") is None


def test_a_save_naming_a_segment_that_is_gone_fails(platform: Container) -> None:
    repo = CampaignRepository(platform.table)
    orphan = weekly(audience={"segment_id": "never-saved"})
    with pytest.raises(SegmentGone):
        repo.save(
            Campaign(**orphan.model_dump(), campaign_id="orphan", created_at=START, updated_at=START), None
        )
    assert repo.get("orphan") is None


# ---- the service ------------------------------------------------------------------------------


def test_an_active_schedule_campaign_has_its_schedule_and_nothing_else_does(platform: Container) -> None:
    campaigns = platform.campaigns
    campaign, created = campaigns.put("monday", weekly())
    assert created and campaign.version == 1
    schedule = schedule_of(platform, "monday")
    assert schedule is not None
    assert schedule["ScheduleExpression"] == "cron(0 9 ? * MON *)"
    assert schedule["ScheduleExpressionTimezone"] == "Europe/Amsterdam"
    assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert schedule["Target"]["Arn"] == platform.settings.campaign_schedule_target_arn
    assert json.loads(schedule["Target"]["Input"]) == {
        "campaign_id": "monday",
        "scheduled_time": "<aws.scheduler.scheduled-time>",
    }
    # Paused: no schedule; active again: back; a new expression replaces it.
    assert campaigns.put("monday", weekly("paused"))[0].version == 2
    assert schedule_of(platform, "monday") is None
    campaigns.put("monday", weekly(trigger={"type": "schedule", "cron": "cron(30 8 ? * TUE *)"}))
    assert (schedule_of(platform, "monday") or {})["ScheduleExpression"] == "cron(30 8 ? * TUE *)"
    assert (schedule_of(platform, "monday") or {})["ScheduleExpressionTimezone"] == "UTC"
    # Turned into a manual campaign: gone; a one-time one deletes itself after its run.
    campaigns.put("monday", weekly(trigger={"type": "manual"}))
    assert schedule_of(platform, "monday") is None
    campaigns.put("monday", weekly(trigger={"type": "schedule", "at": "2026-10-05T07:00:00Z"}))
    once = schedule_of(platform, "monday") or {}
    assert once["ScheduleExpression"] == "at(2026-10-05T07:00:00)"
    assert once["ActionAfterCompletion"] == "DELETE"
    assert campaigns.view(campaigns.get("monday")).next_run_at == datetime(2026, 10, 5, 7, 0, tzinfo=UTC)
    # Ended: no schedule, and final.
    campaigns.put("monday", weekly("ended", trigger={"type": "schedule", "at": "2026-10-05T07:00:00Z"}))
    assert schedule_of(platform, "monday") is None
    with pytest.raises(CampaignNotRunnable):
        campaigns.put("monday", weekly())
    campaigns.delete("monday")
    with pytest.raises(CampaignNotFound):
        campaigns.get("monday")


def test_deleting_a_schedule_campaign_deletes_its_schedule(platform: Container) -> None:
    platform.campaigns.put("gone-soon", weekly())
    assert schedule_of(platform, "gone-soon") is not None
    platform.campaigns.delete("gone-soon")
    assert schedule_of(platform, "gone-soon") is None
    with pytest.raises(CampaignNotFound):
        platform.campaigns.delete("gone-soon")


def test_a_segment_in_use_by_a_campaign_cannot_be_deleted_until_the_campaign_ends(
    platform: Container,
) -> None:
    platform.campaigns.put("uses-vip", weekly("draft"))
    with pytest.raises(SegmentInUse) as refused:
        platform.segments.delete("vip")
    assert refused.value.extra["used_by"] == [
        {"kind": "campaign", "id": "uses-vip", "name": "Monday mail", "status": "draft"}
    ]
    platform.campaigns.put("uses-vip", weekly("ended"))
    platform.segments.delete("vip")
    with pytest.raises(SegmentNotFound):
        platform.segments.get("vip")
    with pytest.raises(ValidationFailed) as bad:
        platform.campaigns.put("late", weekly("draft"))
    assert [e.loc for e in bad.value.errors] == [("body", "audience", "segment_id")]


def test_a_birthday_campaign_keeps_its_trigger_segment_while_active(platform: Container) -> None:
    birthday = CampaignDefinition.model_validate(
        {
            "name": "Birthday coupon",
            "trigger": {"type": "birthday", "days_before": 2},
            "audience": {"segment_id": "vip", "members_only": True},
            "actions": [{"type": "coupon", "offer_id": "ten-off"}],
            "status": "active",
        }
    )
    campaigns, segments = platform.campaigns, platform.segments
    campaign, _ = campaigns.put("birthday", birthday)
    derived = trigger_segment_id("birthday")
    assert campaigns.view(campaign).trigger_segment_id == derived
    assert segments.get(derived).definition.rule == {
        "all": [{"birthday": {"within_days": 2}}, {"attr": "member", "eq": True}]
    }
    assert [c.campaign_id for c in campaigns.triggered()] == ["birthday"]
    # Nobody else writes or deletes it; saving the campaign unchanged leaves its version alone.
    with pytest.raises(SegmentInUse):
        segments.put(derived, name="mine", description="", rule={"attr": "member", "eq": False})
    with pytest.raises(SegmentInUse):
        segments.delete(derived)
    version = segments.get(derived).definition.version
    campaigns.put("birthday", birthday)
    assert segments.get(derived).definition.version == version
    # Paused: the segment goes (and the campaign is no longer a trigger); active again: back.
    campaigns.put("birthday", birthday.model_copy(update={"status": "paused"}))
    with pytest.raises(SegmentNotFound):
        segments.get(derived)
    assert campaigns.triggered() == []
    campaigns.put("birthday", birthday)
    assert segments.get(derived).definition.rule["all"][0] == {"birthday": {"within_days": 2}}
    campaigns.delete("birthday")
    with pytest.raises(SegmentNotFound):
        segments.get(derived)


def test_an_inactivity_campaign_without_audience_derives_its_segment_alone(platform: Container) -> None:
    lapsed = CampaignDefinition.model_validate(
        {
            "name": "Win back",
            "trigger": {"type": "inactivity", "days": 90},
            "actions": [{"type": "points", "points": 100}],
            "status": "active",
        }
    )
    platform.campaigns.put("win-back", lapsed)
    rule = platform.segments.get(trigger_segment_id("win-back")).definition.rule
    assert rule == {"attr": "stats.last_purchase_at", "before": "P90D"}


# ---- a weekly schedule fired by the local Scheduler across both DST changes --------------------


def test_a_weekly_schedule_starts_one_run_per_week_at_9_amsterdam_across_dst(
    platform: Container, clock: FixedClock, aws_session: Any, emulators: Any
) -> None:
    # Given the campaign-schedule function in moto (our handler, in-process, bound to this platform)
    # and a run control that records what it is asked to start
    _, moto = emulators
    stepfunctions.enable(moto.endpoint)
    assert platform.settings.campaign_schedule_target_arn is not None
    function = platform.settings.campaign_schedule_target_arn.rsplit(":", 1)[-1]
    stepfunctions.provision_job_function(aws_session, function, CAMPAIGN_SCHEDULES.target, platform)
    control = RecordingRunControl()
    platform.campaign_run_control = control  # type: ignore[attr-defined]
    try:
        # and an active campaign every Monday at 09:00 in Amsterdam
        platform.campaigns.put("weekly-dst", weekly())
        runner = ScheduleRunner(aws_session, clock=clock.now)
        ours = schedule_name("weekly-dst")
        fired: list[datetime] = []
        # When the clock walks from 1 October 2026 to 15 April 2027, ticking twice at each step
        clock.current = datetime(2026, 10, 10, 12, 0, tzinfo=UTC)
        end = datetime(2027, 4, 15, 0, 0, tzinfo=UTC)
        while clock.now() < end:
            fired += [f.scheduled for f in runner.tick() if f.name == ours]
            assert not [f for f in runner.tick() if f.name == ours]  # the same moment again: nothing
            clock.advance(hours=31)
    finally:
        stepfunctions.unregister_functions([function])
    # Then it fired every Monday at 09:00 Amsterdam time: 07:00Z in summer time, 08:00Z in winter
    mondays = [datetime(2026, 10, 12, 7, 0, tzinfo=UTC) + timedelta(weeks=n) for n in range(27)]
    expected = [
        m + timedelta(hours=1)
        if datetime(2026, 10, 25) < m.replace(tzinfo=None) < datetime(2027, 3, 28)
        else m
        for m in mondays
    ]
    assert fired == expected
    assert expected[2] == datetime(2026, 10, 26, 8, 0, tzinfo=UTC)  # the first Monday of winter time
    assert expected[-3] == datetime(2027, 3, 29, 7, 0, tzinfo=UTC)  # the first Monday of summer time
    # and each occurrence started exactly one run, named by its time
    assert control.started == [("weekly-dst", f"sched-{m:%Y%m%dT%H%M%SZ}", "schedule") for m in expected]


# ---- the demo campaigns `make run` seeds -------------------------------------------------------


def test_the_demo_campaigns_are_seeded_once_and_stay_editable(platform: Container) -> None:
    # When `make run`'s seed runs on a fresh table
    created = seed_demo_campaigns(platform)
    # Then the six campaigns exist, the triggered ones active, each naming what exists
    assert sorted(created) == sorted(campaign_id for campaign_id, _ in DEMO_CAMPAIGNS)
    assert len(created) == 6
    triggered = {c.campaign_id: c.trigger.type for c in platform.campaigns.triggered()}
    assert triggered == {
        "demo-welcome-coupon": "event",
        "demo-birthday-coupon": "birthday",
        "demo-tier-upgrade": "event",
        "demo-win-back": "inactivity",
        "demo-abandoned-cart": "event",
        "demo-app-install": "event",
    }
    assert platform.segments.get(trigger_segment_id("demo-win-back")).definition.rule == {
        "attr": "stats.last_purchase_at",
        "before": "P90D",
    }
    assert platform.segments.get("demo-abandoned-cart").definition.rule == DEMO_ABANDONED_CART
    # and a marketer's edit survives the next start's seed, which creates nothing again
    welcome = platform.campaigns.get("demo-welcome-coupon")
    edited = CampaignDefinition.model_validate(
        welcome.model_dump(include=set(CampaignDefinition.model_fields))
        | {"name": "Hello!", "status": "paused"}
    )
    platform.campaigns.put("demo-welcome-coupon", edited)
    assert seed_demo_campaigns(platform) == []
    assert platform.campaigns.get("demo-welcome-coupon").name == "Hello!"


def test_a_template_a_campaign_sends_stays_until_the_campaign_lets_go(platform: Container) -> None:
    templates = platform.templates
    unsubscribe = " {{ unsubscribe_url }}"
    templates.put(Template("with-coupon", Channel.EMAIL, "Use {{ coupon.code }}" + unsubscribe, subject="Hi"))
    coupon_then_mail = weekly(
        "draft",
        actions=[
            {"type": "coupon", "offer_id": "ten-off"},
            {"type": "message", "template_id": "with-coupon"},
        ],
    )
    platform.campaigns.put("mailer", coupon_then_mail)
    # Deleting it, or editing it into what the campaign cannot send, is a conflict naming the campaign.
    with pytest.raises(TemplateInUse) as refused:
        templates.delete("with-coupon")
    assert "campaign 'mailer'" in refused.value.detail
    with pytest.raises(TemplateInUse):
        templates.put(
            Template(
                "with-coupon",
                Channel.EMAIL,
                "{{ confirm_url }}" + unsubscribe,
                purpose=Purpose.CONFIRMATION,
                subject="Confirm",
            )
        )
    # An edit the campaign can still send is fine; once the campaign has ended, so is the delete.
    templates.put(
        Template("with-coupon", Channel.EMAIL, "Still {{ coupon.code }}" + unsubscribe, subject="Hi")
    )
    platform.campaigns.put("mailer", coupon_then_mail.model_copy(update={"status": "ended"}))
    templates.delete("with-coupon")
