"""Scheduled campaigns' EventBridge Scheduler schedules (services/campaigns.CampaignSchedules).

One schedule per active schedule campaign, `campaign-<id>` in the group resources.CAMPAIGN_SCHEDULES,
invoking the campaign-schedule function with `{"campaign_id", "scheduled_time"}` (Scheduler fills
in the occurrence's time: the run's id is made from it, so a repeated delivery starts nothing
twice). No flexible window: a run starts at the time the marketer chose, in the campaign's time zone.
A one-time (`at`) schedule deletes itself once it has run.
"""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from loyalty.domain.campaign_definitions import Schedule, schedule_name
from loyalty.domain.errors import ServiceUnavailable

# Scheduler's own retries of an invocation that failed to reach the function (throttling, say).
RETRY_ATTEMPTS = 5
MAX_EVENT_AGE_S = 3600


class SchedulerCampaignSchedules:
    def __init__(
        self, client: Any, *, group: str, target_arn: str, role_arn: str, dead_letter_arn: str | None = None
    ) -> None:
        self._client = client
        self._group = group
        self._target_arn = target_arn
        self._role_arn = role_arn
        self._dead_letter_arn = dead_letter_arn

    def put(self, campaign_id: str, schedule: Schedule) -> None:
        request = self._request(campaign_id, schedule)
        try:
            try:
                self._client.create_schedule(**request)
            except ClientError as exc:
                if exc.response["Error"]["Code"] != "ConflictException":
                    raise
                self._client.update_schedule(**request)
        except ClientError as exc:
            raise ServiceUnavailable(f"the campaign's schedule could not be saved: {_code(exc)}") from exc

    def delete(self, campaign_id: str) -> None:
        try:
            self._client.delete_schedule(GroupName=self._group, Name=schedule_name(campaign_id))
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return
            raise ServiceUnavailable(f"the campaign's schedule could not be deleted: {_code(exc)}") from exc

    def get(self, campaign_id: str) -> dict[str, Any] | None:
        """The schedule as Scheduler holds it (None: there is none)."""
        try:
            found: dict[str, Any] = self._client.get_schedule(
                GroupName=self._group, Name=schedule_name(campaign_id)
            )
        except ClientError as exc:
            if _code(exc) == "ResourceNotFoundException":
                return None
            raise ServiceUnavailable(f"the campaign's schedule could not be read: {_code(exc)}") from exc
        return found

    def _request(self, campaign_id: str, schedule: Schedule) -> dict[str, Any]:
        target: dict[str, Any] = {
            "Arn": self._target_arn,
            "RoleArn": self._role_arn,
            "Input": json.dumps(
                {"campaign_id": campaign_id, "scheduled_time": "<aws.scheduler.scheduled-time>"}
            ),
            "RetryPolicy": {
                "MaximumRetryAttempts": RETRY_ATTEMPTS,
                "MaximumEventAgeInSeconds": MAX_EVENT_AGE_S,
            },
        }
        if self._dead_letter_arn:
            target["DeadLetterConfig"] = {"Arn": self._dead_letter_arn}
        return {
            "GroupName": self._group,
            "Name": schedule_name(campaign_id),
            "Description": f"Starts a run of campaign {campaign_id}"[:512],
            "ScheduleExpression": schedule.expression,
            "ScheduleExpressionTimezone": schedule.timezone,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED",
            "ActionAfterCompletion": "DELETE" if schedule.expression.startswith("at(") else "NONE",
            "Target": target,
        }


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))
