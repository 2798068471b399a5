"""The composition root: the one place that picks adapters and wires services.

Functions ask for `container()` on their first request; tests build a Container with their own
clients and install it with `use_container`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from loyalty.services.ports import Clock, SystemClock
from loyalty.settings import Settings

if TYPE_CHECKING:  # each function builds (and so imports) only the services it uses
    from datetime import datetime

    from loyalty.adapters.channels.print_file import S3PrintFiles
    from loyalty.adapters.dynamo import DynamoTable
    from loyalty.adapters.idempotency import IdempotencyStore
    from loyalty.adapters.secrets import SecretValue
    from loyalty.domain.segment_definitions import Use
    from loyalty.domain.templates import Template
    from loyalty.services.account_access import AccountAccess
    from loyalty.services.accounts import AccountService
    from loyalty.services.activity import ActivityWorker
    from loyalty.services.api_keys import ApiKeyService
    from loyalty.services.attribution import Attribution
    from loyalty.services.campaign_actions import CampaignActions
    from loyalty.services.campaign_ports import CampaignCatalogue
    from loyalty.services.campaign_reports import CampaignReports
    from loyalty.services.campaign_run_control import CampaignRunControl
    from loyalty.services.campaign_runs import CampaignRuns
    from loyalty.services.campaign_triggers import CampaignTriggers, CustomerTriggerFacts
    from loyalty.services.campaigns import CampaignSchedules, CampaignService
    from loyalty.services.cart import CartService
    from loyalty.services.compaction import LakeCompactor
    from loyalty.services.config import ProgrammeService, StoreService
    from loyalty.services.confirmation import ConfirmationQueue, ConfirmationService
    from loyalty.services.customer_events import EventIngest
    from loyalty.services.customer_links import CustomerLinks
    from loyalty.services.customer_scores import CustomerScores
    from loyalty.services.customers import CustomerService
    from loyalty.services.email_feedback import EmailFeedback
    from loyalty.services.event_earning import EventEarning
    from loyalty.services.gamification import GamificationService
    from loyalty.services.gift_cards import GiftCardService
    from loyalty.services.holds import HoldService, StoredValueHolds
    from loyalty.services.lake import LakeWriter
    from loyalty.services.mailer import Mailer
    from loyalty.services.merge_requests import MergeRequests
    from loyalty.services.merge_worker import MergeWorker
    from loyalty.services.merges import MergeService
    from loyalty.services.message_triggers import MessageTriggers
    from loyalty.services.messaging import MessageInteractions
    from loyalty.services.offers import OfferService
    from loyalty.services.privacy import PrivacyService
    from loyalty.services.publisher import OutboxPublisher
    from loyalty.services.redemptions import RedemptionService
    from loyalty.services.reports import ReportQueries, ReportService
    from loyalty.services.resolver import CustomerResolver
    from loyalty.services.segment_jobs import SegmentWorker
    from loyalty.services.segment_membership import SegmentCatalogue, SegmentMembership
    from loyalty.services.segment_passes import JobQueue, SegmentPasses
    from loyalty.services.segment_preview import SegmentPreview
    from loyalty.services.segments import SegmentService
    from loyalty.services.stored_value import StoredValueService
    from loyalty.services.sweeper import PointsSweeper
    from loyalty.services.templates import TemplateService
    from loyalty.services.timeline import TimelineService
    from loyalty.services.transactions import TransactionService
    from loyalty.services.unsubscribe import UnsubscribeService

# Fail fast inside the API Gateway 29 s budget; the standard retry mode handles throttling.
_BOTO_CONFIG = Config(
    connect_timeout=2,
    read_timeout=5,
    retries={"mode": "standard", "max_attempts": 3},
    max_pool_connections=50,
)


class Container:
    def __init__(
        self,
        settings: Settings,
        session: Any | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.settings = settings
        self._session = session or boto3.session.Session()
        self.clock = clock or SystemClock()

    def client(self, service: str) -> Any:
        return self._session.client(service, config=_BOTO_CONFIG)

    @cached_property
    def table(self) -> DynamoTable:
        from loyalty.adapters.dynamo import DynamoTable

        return DynamoTable(self.client("dynamodb"), self.settings.table_name)

    @cached_property
    def pepper(self) -> SecretValue:
        from loyalty.adapters.secrets import SecretValue

        return SecretValue(self.client("secretsmanager"), self.settings.api_key_pepper_secret)

    @cached_property
    def cursor_key(self) -> SecretValue:
        """Signs the list cursors clients are given (loyalty.api.cursors)."""
        from loyalty.adapters.secrets import SecretValue

        return SecretValue(self.client("secretsmanager"), self.settings.cursor_key_secret)

    @cached_property
    def stores(self) -> StoreService:
        from loyalty.adapters.stores import StoreRepository
        from loyalty.services.config import StoreService

        return StoreService(repo=StoreRepository(self.table), clock=self.clock)

    @cached_property
    def programme(self) -> ProgrammeService:
        from loyalty.adapters.programme import ProgrammeRepository
        from loyalty.adapters.templates import TemplateRepository
        from loyalty.services.config import ProgrammeService

        return ProgrammeService(
            repo=ProgrammeRepository(self.table), clock=self.clock, templates=TemplateRepository(self.table)
        )

    @cached_property
    def templates(self) -> TemplateService:
        from loyalty.adapters.programme import ProgrammeRepository
        from loyalty.adapters.templates import TemplateRepository
        from loyalty.services.templates import TemplateService

        return TemplateService(
            repo=TemplateRepository(self.table),
            programme=ProgrammeRepository(self.table),
            clock=self.clock,
            other_checks=[self._campaign_template_check],
        )

    def _campaign_template_check(self, template_id: str, template: Template | None) -> str | None:
        """Why saving (or, None, deleting) a template breaks a campaign that sends it (a 409)."""
        return self.campaigns.template_misfit(template_id, template)

    @cached_property
    def message_triggers(self) -> MessageTriggers:
        from loyalty.adapters.messages import MessageRepository
        from loyalty.adapters.templates import TemplateRepository
        from loyalty.services.message_triggers import MessageTriggers
        from loyalty.services.messaging import MessageQueue

        return MessageTriggers(
            queue=MessageQueue(messages=MessageRepository(self.table), clock=self.clock),
            messaging=lambda: self.programme.current().messaging,
            templates=TemplateRepository(self.table),
        )

    @cached_property
    def email_feedback(self) -> EmailFeedback:
        from loyalty.services.email_feedback import EmailFeedback

        return EmailFeedback(customers=self.customers)

    @cached_property
    def unsubscribe(self) -> UnsubscribeService:
        from loyalty.services.unsubscribe import UnsubscribeService

        return UnsubscribeService(customers=self.customers, key=self.cursor_key)

    @cached_property
    def print_files(self) -> S3PrintFiles:
        from loyalty.adapters.channels.print_file import S3PrintFiles

        if not self.settings.print_bucket:
            raise RuntimeError("PRINT_BUCKET is not set: there are no print files to list")
        return S3PrintFiles(self.client("s3"), self.settings.print_bucket)

    @cached_property
    def idempotency(self) -> IdempotencyStore:
        from loyalty.adapters.idempotency import IdempotencyStore

        return IdempotencyStore(self.table)

    @cached_property
    def resolver(self) -> CustomerResolver:
        """A customer id to its live profile: what every service handed a customer id depends on."""
        from loyalty.adapters.customers import CustomerRepository
        from loyalty.services.resolver import CustomerResolver

        return CustomerResolver(customers=CustomerRepository(self.table))

    @cached_property
    def customers(self) -> CustomerService:
        from loyalty.adapters.customers import CustomerRepository
        from loyalty.services.customers import CustomerService

        return CustomerService(
            customers=CustomerRepository(self.table),
            resolver=self.resolver,
            stores=self.stores,
            programme=self.programme,
            idempotency=self.idempotency,
            clock=self.clock,
            links=self.customer_links,
            retro_credit=self.transactions.retro_credit,
            confirmations=self.confirmation_queue,
        )

    @cached_property
    def confirmation_queue(self) -> ConfirmationQueue:
        from loyalty.adapters.messages import MessageRepository
        from loyalty.services.confirmation import ConfirmationQueue
        from loyalty.services.messaging import MessageQueue

        return ConfirmationQueue(queue=MessageQueue(messages=MessageRepository(self.table), clock=self.clock))

    @cached_property
    def confirmation(self) -> ConfirmationService:
        from loyalty.services.confirmation import ConfirmationService

        return ConfirmationService(customers=self.customers, key=self.cursor_key, clock=self.clock)

    @cached_property
    def customer_links(self) -> CustomerLinks:
        from loyalty.adapters.customers import CustomerRepository
        from loyalty.services.customer_links import CustomerLinks

        return CustomerLinks(
            customers=CustomerRepository(self.table),
            resolver=self.resolver,
            programme=self.programme,
            idempotency=self.idempotency,
            clock=self.clock,
            request_merge=self.merge_requests.request_for_link,
            identified=self.attribution.attribute,
        )

    @cached_property
    def attribution(self) -> Attribution:
        from loyalty.adapters.customer_events import CustomerEventRepository
        from loyalty.services.attribution import Attribution

        return Attribution(
            events=CustomerEventRepository(self.table), clock=self.clock, resolve_customer=self.resolver.get
        )

    @cached_property
    def events(self) -> EventIngest:
        from loyalty.adapters.customer_events import CustomerEventRepository
        from loyalty.adapters.customers import CustomerRepository
        from loyalty.services.customer_events import EventIngest

        return EventIngest(
            events=CustomerEventRepository(self.table),
            customers=CustomerRepository(self.table),
            stores=self.stores,
            programme=self.programme,
            clock=self.clock,
            resolve_customer=self.resolver.get,
            idempotency=self.idempotency,
            attribute=self.attribution.attribute,
        )

    @cached_property
    def merge_requests(self) -> MergeRequests:
        from loyalty.adapters.merges import MergeRepository
        from loyalty.adapters.queues import SqsWorkQueue
        from loyalty.services.merge_requests import MergeRequests

        url = self.settings.merge_queue_url
        return MergeRequests(
            merges=MergeRepository(self.table),
            programme=self.programme,
            clock=self.clock,
            queue=SqsWorkQueue(self.client("sqs"), url) if url else None,
            idempotency=self.idempotency,
            resolve_customer=self.resolver.get,
        )

    @cached_property
    def merge_worker(self) -> MergeWorker:
        from loyalty.adapters.merges import MergeRepository
        from loyalty.services.merge_undo import MergeUndo
        from loyalty.services.merge_worker import MergeWorker

        merges = MergeRepository(self.table)
        return MergeWorker(
            merges=merges,
            programme=self.programme,
            clock=self.clock,
            resolve_customer=self.resolver.get,
            undo=MergeUndo(merges=merges, programme=self.programme, clock=self.clock),
        )

    @cached_property
    def privacy(self) -> PrivacyService:
        from loyalty.adapters.merges import MergeRepository
        from loyalty.adapters.timeline import TimelineRepository
        from loyalty.services.privacy import PrivacyService

        return PrivacyService(
            merges=MergeRepository(self.table),
            timeline=TimelineRepository(self.table),
            clock=self.clock,
            resolve_customer=self.resolver.get,
        )

    @cached_property
    def timeline(self) -> TimelineService:
        from loyalty.adapters.timeline import TimelineRepository
        from loyalty.services.timeline import TimelineService

        return TimelineService(timeline=TimelineRepository(self.table), resolve_customer=self.resolver.get)

    @cached_property
    def merges(self) -> MergeService:
        """The merge use cases behind one handle (tests and benches drive a merge through it)."""
        from loyalty.services.merges import MergeService

        return MergeService(requests=self.merge_requests, worker=self.merge_worker, privacy=self.privacy)

    @cached_property
    def transactions(self) -> TransactionService:
        from loyalty.adapters.customers import CustomerRepository
        from loyalty.adapters.offers import OfferRepository
        from loyalty.adapters.stored_value import StoredValueRepository
        from loyalty.adapters.transactions import TransactionRepository
        from loyalty.services.transactions import TransactionService

        return TransactionService(
            transactions=TransactionRepository(self.table),
            customers=CustomerRepository(self.table),
            stores=self.stores,
            programme=self.programme,
            idempotency=self.idempotency,
            clock=self.clock,
            resolve_customer=self.resolver.get,
            accounts=StoredValueRepository(self.table),
            offers=self.offers,
            offer_repo=OfferRepository(self.table),
        )

    @cached_property
    def event_earning(self) -> EventEarning:
        from loyalty.adapters.event_earning import EventEarningRepository
        from loyalty.adapters.transactions import TransactionRepository
        from loyalty.services.event_earning import EventEarning

        return EventEarning(
            earnings=EventEarningRepository(self.table),
            transactions=TransactionRepository(self.table),
            programme=self.programme,
            clock=self.clock,
            resolve_customer=self.resolver.get,
        )

    @cached_property
    def sweeper(self) -> PointsSweeper:
        from loyalty.adapters.customers import CustomerRepository
        from loyalty.adapters.due import DueIndex
        from loyalty.adapters.stored_value import StoredValueRepository
        from loyalty.adapters.transactions import TransactionRepository
        from loyalty.services.sweeper import PointsSweeper

        return PointsSweeper(
            transactions=TransactionRepository(self.table),
            customers=CustomerRepository(self.table),
            programme=self.programme,
            clock=self.clock,
            due=DueIndex(self.table),
            holds=StoredValueRepository(self.table),
        )

    @cached_property
    def mailer(self) -> Mailer:
        from loyalty.adapters.email import SesEmailSender
        from loyalty.adapters.messages import MessageRepository
        from loyalty.services.mailer import Mailer

        if not self.settings.sender_email:
            raise RuntimeError("SENDER_EMAIL is not set: the mailer has no address to send from")
        messages = MessageRepository(self.table)
        return Mailer(
            messages=messages,
            channel=SesEmailSender(self.client("sesv2"), self.settings.sender_email),
            clock=self.clock,
            templated=self.templated_delivery(messages, self.settings.sender_email),
        )

    def templated_delivery(self, messages: Any, sender: str) -> Any:
        """Messages made from templates, on every channel (services/messaging.py)."""
        from loyalty.adapters.channels.email import SesTemplatedEmail
        from loyalty.adapters.channels.print_file import S3PrintFiles
        from loyalty.adapters.channels.sms import SnsSms
        from loyalty.adapters.channels.webhook import SignedWebhook
        from loyalty.adapters.secrets import SecretValue
        from loyalty.domain.templates import Channel
        from loyalty.services.mailer import next_attempt_at
        from loyalty.services.messaging import TemplatedDelivery

        s = self.settings
        webhook: Any = str  # no secret named: str() is "", and the api channel fails each try
        if s.webhook_secret:
            webhook = SecretValue(self.client("secretsmanager"), s.webhook_secret)
        return TemplatedDelivery(
            messages=messages,
            channels={
                Channel.EMAIL: SesTemplatedEmail(self.client("sesv2"), sender, s.ses_configuration_set),
                Channel.SMS: SnsSms(self.client("sns")),
                Channel.API: SignedWebhook(settings=webhook),
            },
            messaging=lambda: self.programme.current().messaging,
            unsubscribe_key=self.cursor_key,
            unsubscribe_base_url=s.public_base_url,
            clock=self.clock,
            print_files=S3PrintFiles(self.client("s3"), s.print_bucket) if s.print_bucket else None,
            store_of=self.stores.find,
            retry_at=lambda attempts: next_attempt_at(self.clock.now(), attempts),
        )

    @cached_property
    def lake_writer(self) -> LakeWriter:
        from loyalty.adapters.lake import S3Lake
        from loyalty.services.lake import LakeWriter

        if not self.settings.lake_bucket:
            raise RuntimeError("LAKE_BUCKET is not set: the lake writer has nowhere to write")
        return LakeWriter(files=S3Lake(s3=self.client("s3"), bucket=self.settings.lake_bucket))

    @cached_property
    def campaign_actor(self) -> CampaignActions:
        """loyalty.services.campaign_ports.CampaignActor: who a campaign actions, exactly once."""
        from loyalty.adapters.campaign_actions import CampaignActionRepository
        from loyalty.adapters.messages import MessageRepository
        from loyalty.adapters.offers import OfferRepository
        from loyalty.adapters.stored_value import StoredValueRepository
        from loyalty.adapters.templates import TemplateRepository
        from loyalty.adapters.transactions import TransactionRepository
        from loyalty.services.campaign_actions import CampaignActions
        from loyalty.services.messaging import MessageQueue

        return CampaignActions(
            repo=CampaignActionRepository(self.table),
            transactions=TransactionRepository(self.table),
            offers=OfferRepository(self.table),
            accounts=StoredValueRepository(self.table),
            messages=MessageQueue(messages=MessageRepository(self.table), clock=self.clock),
            templates=TemplateRepository(self.table),
            programme=self.programme,
            resolve_customer=self.resolver.get,
            clock=self.clock,
        )

    @cached_property
    def campaign_runs(self) -> CampaignRuns:
        """The campaign run workflow's tasks (Prepare, Batch, Finish)."""
        from loyalty.adapters.campaign_runs import (
            DynamoRunLedger,
            DynamoRunRecords,
            S3RunFiles,
            SegmentMembers,
        )
        from loyalty.resources import CAMPAIGN_RUN
        from loyalty.services.campaign_runs import CampaignRuns

        if not self.settings.campaign_runs_bucket:
            raise RuntimeError("CAMPAIGN_RUNS_BUCKET is not set: campaign runs have nowhere to keep batches")
        return CampaignRuns(
            catalogue=self.campaigns,
            actor=self.campaign_actor,
            audience=SegmentMembers(self.table),
            files=S3RunFiles(self.client("s3"), self.settings.campaign_runs_bucket),
            ledger=DynamoRunLedger(self.table),
            records=DynamoRunRecords(self.table),
            clock=self.clock,
            batch_size=CAMPAIGN_RUN.batch_size,
        )

    @cached_property
    def campaign_trigger_facts(self) -> CustomerTriggerFacts:
        from loyalty.adapters.campaign_triggers import DynamoTriggerFacts
        from loyalty.adapters.segments import SegmentRepository

        def zone_of(profile_timezone: str | None) -> str:  # the programme as it is now (cached)
            return self.programme.current().messaging.zone_of(profile_timezone)

        return DynamoTriggerFacts(repo=SegmentRepository(self.table), zone_of=zone_of)

    @cached_property
    def campaign_triggers(self) -> CampaignTriggers:
        """The `campaign-triggers` function's service: bus events to triggered campaigns' actions."""
        from loyalty.services.campaign_triggers import CampaignTriggers

        def live_segments(customer_id: str) -> frozenset[str]:  # built on the first miss only
            return self.segment_membership.answer(customer_id)

        return CampaignTriggers(
            catalogue=self.campaigns,
            actor=self.campaign_actor,
            facts=self.campaign_trigger_facts,
            live_segments=live_segments,
        )

    @cached_property
    def campaign_run_control(self) -> CampaignRunControl:
        """Runs as marketers see them: start, cancel, retry, read, and the dry run."""
        from loyalty.adapters.campaign_run_starter import StepFunctionsRunStarter
        from loyalty.adapters.campaign_runs import DynamoRunLedger, DynamoRunRecords, SegmentMembers
        from loyalty.resources import CAMPAIGN_RUN
        from loyalty.services.campaign_run_control import CampaignRunControl

        arn = self.settings.campaign_run_state_machine_arn
        if not arn:
            raise RuntimeError(f"{CAMPAIGN_RUN.arn_env_var} is not set: campaign runs cannot start")
        return CampaignRunControl(
            catalogue=self.campaigns,
            actor=self.campaign_actor,
            audience=SegmentMembers(self.table),
            records=DynamoRunRecords(self.table),
            ledger=DynamoRunLedger(self.table),
            starter=StepFunctionsRunStarter(self.client("stepfunctions"), arn),
            idempotency=self.idempotency,
            clock=self.clock,
        )

    @cached_property
    def segments(self) -> SegmentService:
        from loyalty.adapters.offers import OfferRepository
        from loyalty.adapters.segment_definitions import SegmentDefinitionRepository
        from loyalty.services.segments import SegmentService

        return SegmentService(
            repo=SegmentDefinitionRepository(self.table),
            documents=OfferRepository(self.table),
            idempotency=self.idempotency,
            clock=self.clock,
            queue=lambda: self.segment_queue,
            other_uses=[self._campaign_segment_uses],
        )

    def _campaign_segment_uses(self, segment_id: str, now: datetime) -> list[Use]:
        """The campaigns naming a segment (a segment's delete answers 409 while there are any)."""
        return self.campaigns.segment_uses(segment_id, now)

    @cached_property
    def campaigns(self) -> CampaignService:
        from loyalty.adapters.campaign_definitions import CampaignRepository
        from loyalty.adapters.offers import OfferRepository
        from loyalty.adapters.templates import TemplateRepository
        from loyalty.services.campaigns import CampaignService

        return CampaignService(
            repo=CampaignRepository(self.table),
            segments=self.segments,
            offers=OfferRepository(self.table),
            templates=TemplateRepository(self.table),
            schedules=lambda: self.campaign_schedules,
            clock=self.clock,
        )

    @cached_property
    def campaign_schedules(self) -> CampaignSchedules:
        from loyalty.adapters.campaign_schedules import SchedulerCampaignSchedules

        s = self.settings
        if not (
            s.campaign_schedule_group and s.campaign_schedule_target_arn and s.campaign_scheduler_role_arn
        ):
            raise RuntimeError(
                "CAMPAIGN_SCHEDULE_GROUP, CAMPAIGN_SCHEDULE_TARGET_ARN and CAMPAIGN_SCHEDULER_ROLE_ARN are "
                "not all set: scheduled campaigns have no Scheduler to keep their schedules in"
            )
        return SchedulerCampaignSchedules(
            self.client("scheduler"),
            group=s.campaign_schedule_group,
            target_arn=s.campaign_schedule_target_arn,
            role_arn=s.campaign_scheduler_role_arn,
            dead_letter_arn=s.campaign_schedule_dead_letter_arn,
        )

    @cached_property
    def segment_queue(self) -> JobQueue:
        from loyalty.adapters.queues import SqsJobQueue

        if not self.settings.segment_queue_url:
            raise RuntimeError("SEGMENT_QUEUE_URL is not set: segments cannot be evaluated in the background")
        return SqsJobQueue(self.client("sqs"), self.settings.segment_queue_url)

    @cached_property
    def segment_passes(self) -> SegmentPasses:
        """A saved segment's background evaluation (the segments job)."""
        from loyalty.adapters.segment_definitions import SegmentDefinitionRepository
        from loyalty.services.segment_passes import SegmentPasses

        return SegmentPasses(
            repo=SegmentDefinitionRepository(self.table),
            lake=lambda: self.lake_queries,
            membership=self.segment_membership,
            queue=lambda: self.segment_queue,
            clock=self.clock,
        )

    @cached_property
    def lake_compactor(self) -> LakeCompactor:
        from loyalty.adapters.lake import S3Lake
        from loyalty.adapters.lake_compaction import DuckDBParquetWork
        from loyalty.services.compaction import LakeCompactor

        if not self.settings.lake_bucket:
            raise RuntimeError("LAKE_BUCKET is not set: compaction has no lake to compact")
        return LakeCompactor(
            objects=S3Lake(s3=self.client("s3"), bucket=self.settings.lake_bucket),
            parquet=DuckDBParquetWork(),
            now=self.clock.now,
        )

    @cached_property
    def lake_queries(self) -> ReportQueries:
        """The lake's query engine: Athena on AWS, DuckDB over the same Parquet locally."""
        if not self.settings.lake_bucket:
            raise RuntimeError("LAKE_BUCKET is not set: there is no lake to read")
        if self.settings.report_engine == "athena":
            from loyalty.adapters.report_queries import AthenaQueries, s3_manifest

            if not self.settings.athena_workgroup:
                raise RuntimeError("ATHENA_WORKGROUP is not set: Athena queries need a workgroup")
            return AthenaQueries(
                athena=self.client("athena"),
                workgroup=self.settings.athena_workgroup,
                database=self.settings.lake_database,
                read_manifest=s3_manifest(self.client("s3"), self.settings.lake_bucket),
            )
        from loyalty.adapters.report_queries import DuckDBQueries

        return DuckDBQueries.over_s3(
            self.client("s3"), self.settings.lake_bucket, self._session.get_credentials()
        )

    @cached_property
    def reports(self) -> ReportService:
        from loyalty.services.reports import ReportService

        return ReportService(queries=self.lake_queries)

    @cached_property
    def segment_preview(self) -> SegmentPreview:
        from loyalty.services.segment_preview import SegmentPreview

        return SegmentPreview(queries=self.lake_queries, programme=self.programme.current, clock=self.clock)

    @cached_property
    def campaign_catalogue(self) -> CampaignCatalogue:
        """The saved campaigns, for the report and the backtest."""
        return self.campaigns

    @cached_property
    def campaign_reports(self) -> CampaignReports:
        from loyalty.adapters.campaign_reads import SavedSegmentRules
        from loyalty.adapters.segment_definitions import SegmentDefinitionRepository
        from loyalty.services.campaign_reports import CampaignReports

        return CampaignReports(
            queries=self.lake_queries,
            campaigns=self.campaign_catalogue,
            segments=SavedSegmentRules(SegmentDefinitionRepository(self.table)),
            programme=self.programme.current,
            clock=self.clock,
        )

    @cached_property
    def customer_scores(self) -> CustomerScores:
        from loyalty.adapters.customers import CustomerRepository
        from loyalty.services.customer_scores import CustomerScores

        return CustomerScores(
            queries=self.lake_queries, store=CustomerRepository(self.table), clock=self.clock
        )

    @cached_property
    def outbox(self) -> OutboxPublisher:
        from loyalty.adapters.events import EventBridgePublisher
        from loyalty.services.publisher import OutboxPublisher

        return OutboxPublisher(bus=EventBridgePublisher(self.client("events"), self.settings.event_bus_name))

    @cached_property
    def offers(self) -> OfferService:
        from loyalty.adapters.offers import OfferRepository
        from loyalty.services.offers import OfferService

        return OfferService(
            repo=OfferRepository(self.table),
            clock=self.clock,
            idempotency=self.idempotency,
            stores=self.stores,
            programme=self.programme,
            resolve_customer=self.resolver.get,
        )

    @cached_property
    def gamification(self) -> GamificationService:
        from loyalty.adapters.gamification import GamificationRepository
        from loyalty.adapters.offers import OfferRepository
        from loyalty.services.gamification import GamificationService

        return GamificationService(
            documents=OfferRepository(self.table),
            repo=GamificationRepository(self.table),
            stores=self.stores,
            programme=self.programme,
            clock=self.clock,
            resolve_customer=self.resolver.get,
        )

    @cached_property
    def activity_worker(self) -> ActivityWorker:
        from loyalty.adapters.gamification import GamificationRepository
        from loyalty.adapters.offers import OfferRepository
        from loyalty.adapters.transactions import TransactionRepository
        from loyalty.services.activity import ActivityWorker

        return ActivityWorker(
            repo=GamificationRepository(self.table),
            transactions=TransactionRepository(self.table),
            offers=OfferRepository(self.table),
            stores=self.stores,
            programme=self.programme,
            resolve_customer=self.resolver.get,
            clock=self.clock,
            earn_on_event=self.event_earning.apply,
            link_message=self.message_interactions.link,
        )

    @cached_property
    def segment_catalogue(self) -> SegmentCatalogue:
        from loyalty.adapters.segments import SegmentRepository
        from loyalty.services.segment_membership import SegmentCatalogue

        return SegmentCatalogue(repo=SegmentRepository(self.table))

    @cached_property
    def segment_membership(self) -> SegmentMembership:
        from loyalty.adapters.segments import SegmentRepository
        from loyalty.services.segment_membership import SegmentMembership

        return SegmentMembership(
            repo=SegmentRepository(self.table),
            catalogue=self.segment_catalogue,
            programme=self.programme,
            stores=self.stores,
            clock=self.clock,
            resolve_customer=self.resolver.get,
            fan_out=self._segment_fan_out(),
        )

    def _segment_fan_out(self) -> Callable[[Sequence[str]], None] | None:
        """The sweep's due customers, onto the segments queue (where the function has its URL)."""
        if not self.settings.segment_queue_url:
            return None
        from loyalty.adapters.queues import SqsJobQueue
        from loyalty.services.segment_jobs import EVALUATE_CUSTOMERS

        queue = SqsJobQueue(self.client("sqs"), self.settings.segment_queue_url)
        return lambda ids: queue.send({EVALUATE_CUSTOMERS: list(ids)})

    @cached_property
    def segment_worker(self) -> SegmentWorker:
        """The segments queue's consumer. Background jobs (segadmin's evaluation of one segment
        over every customer) register here by kind: services/segment_jobs.py."""
        from loyalty.services.segment_jobs import EVALUATE_SEGMENT, SegmentWorker
        from loyalty.services.segment_passes import PURGE_SEGMENT

        # Built on the first pass message: the lake's engine and the queue, not for every event.
        def evaluate_segment(message: Any) -> Any:
            return self.segment_passes.handle(message)

        def purge_segment(message: Any) -> Any:
            return self.segment_passes.purge(message)

        return SegmentWorker(
            membership=self.segment_membership,
            jobs={EVALUATE_SEGMENT: evaluate_segment, PURGE_SEGMENT: purge_segment},
        )

    @cached_property
    def message_interactions(self) -> MessageInteractions:
        from loyalty.adapters.messages import MessageRepository
        from loyalty.services.messaging import MessageInteractions

        return MessageInteractions(messages=MessageRepository(self.table))

    @cached_property
    def cart(self) -> CartService:
        from loyalty.adapters.customers import CustomerRepository
        from loyalty.adapters.offers import OfferRepository
        from loyalty.services.cart import CartService

        return CartService(
            offers=self.offers,
            offer_repo=OfferRepository(self.table),
            customers=CustomerRepository(self.table),
            stores=self.stores,
            programme=self.programme,
            clock=self.clock,
        )

    @cached_property
    def redemptions(self) -> RedemptionService:
        from loyalty.adapters.customers import CustomerRepository
        from loyalty.adapters.offers import OfferRepository
        from loyalty.adapters.redemptions import RedemptionRepository
        from loyalty.adapters.stored_value import StoredValueRepository
        from loyalty.adapters.transactions import TransactionRepository
        from loyalty.services.redemptions import RedemptionService

        return RedemptionService(
            redemptions=RedemptionRepository(self.table),
            transactions=TransactionRepository(self.table),
            customers=CustomerRepository(self.table),
            offers=OfferRepository(self.table),
            stores=self.stores,
            programme=self.programme,
            clock=self.clock,
            resolve_customer=self.resolver.get,
            idempotency=self.idempotency,
            stored_value=self.stored_value,
            catalogue=self.offers,
            holds=StoredValueRepository(self.table),
        )

    @cached_property
    def account_access(self) -> AccountAccess:
        from loyalty.adapters.stored_value import StoredValueRepository
        from loyalty.services.account_access import AccountAccess

        return AccountAccess(
            accounts=StoredValueRepository(self.table),
            programme=self.programme,
            idempotency=self.idempotency,
            pepper=self.pepper,
            clock=self.clock,
        )

    @cached_property
    def gift_cards(self) -> GiftCardService:
        from loyalty.adapters.stored_value import StoredValueRepository
        from loyalty.services.gift_cards import GiftCardService

        return GiftCardService(
            accounts=StoredValueRepository(self.table),
            access=self.account_access,
            stores=self.stores,
            idempotency=self.idempotency,
            pepper=self.pepper,
            clock=self.clock,
        )

    @cached_property
    def accounts(self) -> AccountService:
        from loyalty.adapters.redemptions import RedemptionRepository
        from loyalty.adapters.stored_value import StoredValueRepository
        from loyalty.services.accounts import AccountService

        return AccountService(
            accounts=StoredValueRepository(self.table),
            redemptions=RedemptionRepository(self.table),
            access=self.account_access,
            stores=self.stores,
            idempotency=self.idempotency,
            clock=self.clock,
            resolve_customer=self.resolver.get,
        )

    @cached_property
    def money_holds(self) -> StoredValueHolds:
        from loyalty.adapters.stored_value import StoredValueRepository
        from loyalty.services.holds import StoredValueHolds

        return StoredValueHolds(
            accounts=StoredValueRepository(self.table),
            access=self.account_access,
            idempotency=self.idempotency,
            clock=self.clock,
        )

    @cached_property
    def holds(self) -> HoldService:
        """Settles any hold by its id: points holds through the redemption service."""
        from loyalty.services.holds import HoldService

        return HoldService(money=self.money_holds, points=self.redemptions)

    @cached_property
    def stored_value(self) -> StoredValueService:
        """Stored value behind one handle: what the redemption service spends and reverses through."""
        from loyalty.services.stored_value import StoredValueService

        return StoredValueService(
            access=self.account_access,
            gift_cards=self.gift_cards,
            accounts=self.accounts,
            holds=self.money_holds,
        )

    @cached_property
    def api_keys(self) -> ApiKeyService:
        from loyalty.adapters.api_keys import ApiKeyRepository
        from loyalty.services.api_keys import ApiKeyService

        return ApiKeyService(
            repo=ApiKeyRepository(self.table), stores=self.stores, pepper=self.pepper, clock=self.clock
        )


_container: Container | None = None
# A container bound to the current thread's context wins over the process's. On Lambda nothing binds
# one; a process that hosts several platforms at once (the local runtime inside a test worker, beside
# tests that swap the process's container) binds its own in the threads it runs handlers on.
_bound: ContextVar[Container | None] = ContextVar("loyalty_container", default=None)


def container() -> Container:
    bound = _bound.get()
    if bound is not None:
        return bound
    global _container  # noqa: PLW0603 - the per-process composition root, built once per cold start
    if _container is None:
        _container = Container(Settings.from_env())
    return _container


def use_container(replacement: Container | None) -> None:
    global _container  # noqa: PLW0603
    _container = replacement


@contextmanager
def bound_container(bound: Container | None) -> Iterator[None]:
    """`container()` answers `bound` in this context (this thread) until the block ends."""
    token = _bound.set(bound)
    try:
        yield
    finally:
        _bound.reset(token)
