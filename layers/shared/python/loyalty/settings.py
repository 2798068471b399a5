"""Typed configuration, read from the environment once per cold start and validated there."""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import ConfigDict, Field, ValidationError

from loyalty.domain.models import Model


class Settings(Model):
    model_config = ConfigDict(frozen=True)

    table_name: str = Field(min_length=3)
    event_bus_name: str = "loyalty-events"
    # Name or ARN of the Secrets Manager secret holding the key-hashing pepper: never the value.
    api_key_pepper_secret: str = Field(min_length=1)
    # Name or ARN of the secret that signs list cursors (only the functions serving lists read it).
    cursor_key_secret: str = Field(min_length=1)
    service_name: str = "loyalty"
    tracing_enabled: bool = False
    max_body_bytes: int = 64 * 1024
    # The SQS FIFO queue merge requests wait on (only the functions that request merges have it).
    merge_queue_url: str | None = None
    # The segments job's queue (standard): membership work and segments' background passes.
    segment_queue_url: str | None = None
    # The verified SES identity emails are sent from (the mailer job); None where nothing sends.
    sender_email: str | None = None
    # Where the public routes answer (unsubscribe links in messages point there).
    public_base_url: str = "https://loyalty.invalid"
    # The S3 bucket direct-mail print files go to (the mailer writes, the messaging function lists).
    print_bucket: str | None = None
    # Name or ARN of the secret holding the brand's webhook `{"url", "secret"}` (the `api` channel).
    webhook_secret: str | None = None
    # The SES configuration set whose event destination reports bounces and complaints.
    ses_configuration_set: str | None = None
    # The data lake's bucket (the lake writer, the reports); None where nothing reads or writes it.
    lake_bucket: str | None = None
    # How reports run: "duckdb" (locally, over the lake's Parquet) or "athena" (on AWS).
    report_engine: str = "duckdb"
    athena_workgroup: str | None = None
    lake_database: str = "loyalty_lake"
    # The campaign run state machine (resources.CAMPAIGN_RUN.arn_env_var): who starts and stops runs.
    campaign_run_state_machine_arn: str | None = None
    # The campaign runs' working files (batch files, manifests): the campaign run tasks only.
    campaign_runs_bucket: str | None = None
    # Scheduled campaigns' EventBridge Scheduler group, the function its schedules invoke and the
    # role they invoke it with (resources.CAMPAIGN_SCHEDULES; the campaigns function only).
    campaign_schedule_group: str | None = None
    campaign_schedule_target_arn: str | None = None
    campaign_scheduler_role_arn: str | None = None
    campaign_schedule_dead_letter_arn: str | None = None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        try:
            return cls(
                table_name=source.get("TABLE_NAME", ""),
                event_bus_name=source.get("EVENT_BUS_NAME", "loyalty-events"),
                api_key_pepper_secret=source.get("API_KEY_PEPPER_SECRET", ""),
                cursor_key_secret=source.get("CURSOR_KEY_SECRET", ""),
                service_name=source.get("POWERTOOLS_SERVICE_NAME", "loyalty"),
                tracing_enabled=source.get("TRACING_ENABLED", "false").lower() == "true",
                merge_queue_url=source.get("MERGE_QUEUE_URL") or None,
                segment_queue_url=source.get("SEGMENT_QUEUE_URL") or None,
                sender_email=source.get("SENDER_EMAIL") or None,
                public_base_url=source.get("PUBLIC_BASE_URL") or "https://loyalty.invalid",
                print_bucket=source.get("PRINT_BUCKET") or None,
                webhook_secret=source.get("WEBHOOK_SECRET") or None,
                ses_configuration_set=source.get("SES_CONFIGURATION_SET") or None,
                lake_bucket=source.get("LAKE_BUCKET") or None,
                report_engine=source.get("REPORT_ENGINE", "duckdb"),
                athena_workgroup=source.get("ATHENA_WORKGROUP") or None,
                lake_database=source.get("LAKE_DATABASE", "loyalty_lake"),
                campaign_run_state_machine_arn=source.get("CAMPAIGN_RUN_STATE_MACHINE_ARN") or None,
                campaign_runs_bucket=source.get("CAMPAIGN_RUNS_BUCKET") or None,
                campaign_schedule_group=source.get("CAMPAIGN_SCHEDULE_GROUP") or None,
                campaign_schedule_target_arn=source.get("CAMPAIGN_SCHEDULE_TARGET_ARN") or None,
                campaign_scheduler_role_arn=source.get("CAMPAIGN_SCHEDULER_ROLE_ARN") or None,
                campaign_schedule_dead_letter_arn=source.get("CAMPAIGN_SCHEDULE_DEAD_LETTER_ARN") or None,
            )
        except ValidationError as exc:
            # Fail the cold start loudly: a misconfigured function must not answer requests.
            raise RuntimeError(f"invalid function configuration: {exc}") from exc
