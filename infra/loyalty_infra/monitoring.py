"""Alarms, the topic they notify and one dashboard, for whatever the stack holds.

Built last in the stage: it looks for every Lambda function and every dead-letter queue of the stage
stack (see inventory.py) instead of being told, so a new function or queue is watched without an
edit here. It is given that stack rather than taking the one it sits in: it lives in a nested stack
of its own (nested.py).

Alarms (5-minute periods, missing data is not breaching), each notifying the alarm topic when it
fires and when it clears:

- API: the 5xx rate (share of requests answered 5xx) and the p99 latency, as callers see it;
- every function: errors, throttles and p99 duration. The authorizer refuses an unknown key by
  failing (API Gateway's contract for a 401), so its error alarm fires only at a refusal rate
  that looks like a guessing or misconfigured client, not on every bad key;
- the table: read and write throttle events, the table and every index together;
- every dead-letter queue: a message waiting in it;
- failed identity merges: the `MergesFailed` business metric, by name whatever its dimensions
  (a Metrics Insights query over the namespace), so it works whichever function emits it.

The topic is encrypted with its own customer-managed key (CloudWatch may use it to publish; the
AWS-managed SNS key does not allow that) and refuses requests without TLS. An email address from
the `alarmEmail` context setting is subscribed, with a dead-letter queue for undeliverable
notifications.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from aws_cdk import ArnFormat, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct, IConstruct

from loyalty_infra import inventory
from loyalty_infra.config import DeploySettings
from loyalty_infra.data import DataTable
from loyalty_infra.firewall import ApiFirewall
from loyalty_infra.functions import METRICS_NAMESPACE
from loyalty_infra.queues import HOLDS_METADATA, dead_letter_queue

PERIOD = Duration.minutes(5)
API_5XX_RATE = 0.01  # share of requests: 1 % answered 5xx ...
API_5XX_PERIODS = (2, 3)  # ... in 2 of the last 3 periods
API_P99_MS = 2_000  # what callers wait, authorizer and integration included ...
LATENCY_PERIODS = (3, 3)  # ... for 15 minutes in a row (one cold start is not an incident)
# A function's p99: at most this behind the API, and never above this share of its timeout.
FUNCTION_P99_MS = 3_000
TIMEOUT_SHARE = 0.8
FUNCTION_ERRORS = 1  # any unhandled error in 5 minutes
AUTHORIZER_REFUSALS = 100  # refused keys in 5 minutes (each one is a function error)
TABLE_THROTTLES = 1
DEAD_LETTERS = 1
MERGES_FAILED_METRIC = "MergesFailed"
MERGES_FAILED = 1
MAX_METRICS_PER_ALARM = 10  # CloudWatch's limit for a metric-math alarm
_METRIC_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class _Watched:
    """A function as the alarms see it."""

    function: lambda_.Function
    name: str
    behind_api: bool
    authorizer: bool


class Monitoring(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        stage: Stack,
        rest_api: apigw.RestApi,
        data: DataTable,
        api_functions: Iterable[lambda_.IFunction],
        authorizer: lambda_.IFunction,
        firewall: ApiFirewall | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = Stack.of(self)
        self.topic = self._topic(stack, settings)
        self.alarms: list[cloudwatch.Alarm] = []

        behind_api = {f.node.path for f in api_functions} | {authorizer.node.path}
        functions = inventory.functions(stage)
        watched = [
            _Watched(
                function=f,
                name=name,
                behind_api=f.node.path in behind_api,
                authorizer=f.node.path == authorizer.node.path,
            )
            for f, name in zip(functions, _names(functions), strict=True)
        ]
        # After the topic's own email dead-letter queue exists, so that it is watched too.
        self.dead_letter_queues = inventory.dead_letter_queues(stage)

        self._api_alarms(rest_api)
        for item in watched:
            self._function_alarms(item)
        table_throttles = self._table_throttles(data)
        self._alarm(
            "TableThrottles",
            table_throttles,
            threshold=TABLE_THROTTLES,
            description="DynamoDB throttled reads or writes on the data table or its indexes (a hot "
            "partition: look at the keys written most often)",
        )
        for queue in self.dead_letter_queues:
            self._alarm(
                f"{_queue_id(queue)}Depth",
                _dead_letter_depth(queue),
                threshold=DEAD_LETTERS,
                description=f"Messages are waiting in a dead-letter queue: {_holds(queue)}. Read them, "
                "fix the cause, then redrive or delete them.",
            )
        merges_failed = business_metric(MERGES_FAILED_METRIC)
        self._alarm(
            "MergesFailed",
            merges_failed,
            threshold=MERGES_FAILED,
            description="Identity merges failed (MergesFailed, emitted by the merge worker): see its log "
            "group and the merge queue's dead-letter queue.",
        )
        self.dashboard = self._dashboard(
            stage, rest_api, data, watched, table_throttles, merges_failed, firewall
        )

    # ---- the topic -----------------------------------------------------------------------------

    def _topic(self, stack: Stack, settings: DeploySettings) -> sns.Topic:
        self.key = kms.Key(
            self,
            "AlarmTopicKey",
            description=f"Encrypts the loyalty {settings.stage} alarm topic",
            enable_key_rotation=True,
            # It encrypts notifications in flight only: nothing to keep once the stack is gone.
            removal_policy=RemovalPolicy.DESTROY,
            pending_window=Duration.days(7),
        )
        # CloudWatch publishes alarm notifications to the encrypted topic (AWS's documented grant).
        self.key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsUseTheKey",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["kms:Decrypt", "kms:GenerateDataKey*"],
                resources=["*"],
            )
        )
        topic = sns.Topic(
            self,
            "AlarmTopic",
            display_name=f"Loyalty {settings.stage} alarms",
            master_key=self.key,
            enforce_ssl=True,
        )
        topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="CloudWatchAlarmsPublish",
                principals=[iam.ServicePrincipal("cloudwatch.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[topic.topic_arn],
                conditions={
                    "ArnLike": {
                        "aws:SourceArn": stack.format_arn(
                            service="cloudwatch",
                            resource="alarm",
                            resource_name="*",
                            arn_format=ArnFormat.COLON_RESOURCE_NAME,
                        )
                    },
                    "StringEquals": {"aws:SourceAccount": stack.account},
                },
            )
        )
        self.email_failures: sqs.Queue | None = None
        if settings.alarm_email:
            self.email_failures = dead_letter_queue(
                self, "AlarmEmailFailures", holds="alarm notifications SNS could not deliver by email"
            )
            topic.add_subscription(
                subscriptions.EmailSubscription(settings.alarm_email, dead_letter_queue=self.email_failures)
            )
        return topic

    # ---- alarms ----------------------------------------------------------------------------------

    def _alarm(
        self,
        construct_id: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        periods: tuple[int, int] = (1, 1),
    ) -> cloudwatch.Alarm:
        datapoints, evaluation = periods
        alarm = cloudwatch.Alarm(
            self,
            construct_id,
            metric=metric,
            threshold=threshold,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            datapoints_to_alarm=datapoints,
            evaluation_periods=evaluation,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms.append(alarm)
        return alarm

    def _api_alarms(self, rest_api: apigw.RestApi) -> None:
        self._alarm(
            "Api5xxRate",
            rest_api.metric_server_error(statistic="Average", period=PERIOD, label="5xx rate"),
            threshold=API_5XX_RATE,
            periods=API_5XX_PERIODS,
            description=f"More than {API_5XX_RATE:.0%} of API requests were answered 5xx (functions "
            "failing or timing out, or the authorizer failing): see the function error alarms.",
        )
        self._alarm(
            "ApiLatencyP99",
            rest_api.metric_latency(statistic="p99", period=PERIOD, label="latency p99"),
            threshold=API_P99_MS,
            periods=LATENCY_PERIODS,
            description=f"API p99 latency above {API_P99_MS} ms for 15 minutes, as callers see it "
            "(authorizer and integration included).",
        )

    def _function_alarms(self, item: _Watched) -> None:
        function = item.function
        timeout_ms = (function.timeout or Duration.seconds(3)).to_milliseconds()
        p99_ms = int(timeout_ms * TIMEOUT_SHARE)
        if item.behind_api:
            p99_ms = min(p99_ms, FUNCTION_P99_MS)
        errors = AUTHORIZER_REFUSALS if item.authorizer else FUNCTION_ERRORS
        self._alarm(
            f"{item.name}Errors",
            function.metric_errors(statistic="Sum", period=PERIOD),
            threshold=errors,
            description=(
                f"The authorizer failed {errors}+ times in 5 minutes: refused keys (a guessing or "
                "misconfigured client: see keyId and ip in the API access log) or its own errors."
                if item.authorizer
                else f"The {item.name} function raised an unhandled error: see its log group."
            ),
        )
        self._alarm(
            f"{item.name}Throttles",
            function.metric_throttles(statistic="Sum", period=PERIOD),
            threshold=1,
            description=f"Lambda throttled the {item.name} function: the account's concurrency is "
            "exhausted (raise the quota, or find what is using it).",
        )
        self._alarm(
            f"{item.name}DurationP99",
            function.metric_duration(statistic="p99", period=PERIOD),
            threshold=p99_ms,
            periods=LATENCY_PERIODS,
            description=f"The {item.name} function's p99 duration was above {p99_ms} ms for 15 minutes.",
        )

    def _table_throttles(self, data: DataTable) -> cloudwatch.MathExpression:
        table = data.table
        dimension_sets: list[dict[str, str]] = [{"TableName": table.table_name}] + [
            {"TableName": table.table_name, "GlobalSecondaryIndexName": index.name}
            for index in data.definition.indexes
        ]
        using: dict[str, cloudwatch.IMetric] = {}
        for n, dimensions in enumerate(dimension_sets):
            for kind in ("Read", "Write"):
                using[f"{kind[0].lower()}{n}"] = cloudwatch.Metric(
                    namespace="AWS/DynamoDB",
                    metric_name=f"{kind}ThrottleEvents",
                    dimensions_map=dimensions,
                    statistic="Sum",
                    period=PERIOD,
                )
        if len(using) > MAX_METRICS_PER_ALARM:
            raise ValueError(f"{len(using)} throttle metrics: more than one alarm can hold")
        return cloudwatch.MathExpression(
            expression=" + ".join(f"FILL({key}, 0)" for key in using),
            using_metrics=using,
            label="throttle events",
            period=PERIOD,
        )

    # ---- the dashboard ---------------------------------------------------------------------------

    def _dashboard(
        self,
        stack: Stack,
        rest_api: apigw.RestApi,
        data: DataTable,
        watched: Collection[_Watched],
        table_throttles: cloudwatch.IMetric,
        merges_failed: cloudwatch.IMetric,
        firewall: ApiFirewall | None,
    ) -> cloudwatch.Dashboard:
        def graph(title: str, metrics: list[cloudwatch.IMetric], width: int = 8) -> cloudwatch.GraphWidget:
            return cloudwatch.GraphWidget(title=title, left=metrics, width=width, height=6)

        def per_function(title: str, metric: str, statistic: str) -> cloudwatch.GraphWidget:
            return graph(
                title,
                [
                    item.function.metric(metric, statistic=statistic, period=PERIOD, label=item.name)
                    for item in watched
                ],
                width=6,
            )

        dashboard = cloudwatch.Dashboard(
            self,
            "Dashboard",
            # One per stage, named after its stack so that operators find it.
            dashboard_name=stack.stack_name,
            default_interval=Duration.hours(6),
        )
        dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(self.alarms), width=24, height=6)
        )
        dashboard.add_widgets(
            graph("API requests", [rest_api.metric_count(period=PERIOD, label="requests")]),
            graph(
                "API 4xx / 5xx rate",
                [
                    rest_api.metric_client_error(statistic="Average", period=PERIOD, label="4xx rate"),
                    rest_api.metric_server_error(statistic="Average", period=PERIOD, label="5xx rate"),
                ],
            ),
            graph(
                "API latency (ms)",
                [
                    rest_api.metric_latency(statistic="p50", period=PERIOD, label="p50"),
                    rest_api.metric_latency(statistic="p99", period=PERIOD, label="p99"),
                    rest_api.metric_integration_latency(
                        statistic="p99", period=PERIOD, label="integration p99"
                    ),
                ],
            ),
        )
        dashboard.add_widgets(
            per_function("Invocations", "Invocations", "Sum"),
            per_function("Errors", "Errors", "Sum"),
            per_function("Throttles", "Throttles", "Sum"),
            per_function("Duration p99 (ms)", "Duration", "p99"),
        )
        dashboard.add_widgets(
            graph(
                "Table capacity used",
                [
                    data.table.metric_consumed_read_capacity_units(period=PERIOD, label="read units"),
                    data.table.metric_consumed_write_capacity_units(period=PERIOD, label="write units"),
                ],
            ),
            graph("Table throttle events", [table_throttles]),
            graph(
                "Dead-letter queues (messages waiting)",
                [_dead_letter_depth(queue) for queue in self.dead_letter_queues],
            ),
        )
        dashboard.add_widgets(
            graph("Failed merges", [merges_failed]),
            graph("Unhandled API errors", [business_metric("UnhandledErrors")]),
            graph("Events published", [business_metric("EventsPublished")]),
        )
        if firewall is not None:
            dashboard.add_widgets(
                graph(
                    "WAF: blocked requests by rule",
                    [_waf_metric(stack, firewall, rule, "BlockedRequests") for rule in firewall.rule_names],
                    width=12,
                ),
                graph(
                    "WAF: allowed / counted requests",
                    [
                        _waf_metric(stack, firewall, "ALL", "AllowedRequests"),
                        _waf_metric(stack, firewall, "ALL", "CountedRequests"),
                    ],
                    width=12,
                ),
            )
        return dashboard


def _names(constructs: Iterable[IConstruct]) -> list[str]:
    """Each construct's id where it is unique in the list, else its path below the stack, joined."""
    listed = list(constructs)
    ids = [c.node.id for c in listed]
    return [c.node.id if ids.count(c.node.id) == 1 else _below_stack(c) for c in listed]


def _below_stack(construct: IConstruct) -> str:
    """The ids of the construct's path below the stack, joined (scopes[0] is the app, [1] the stack)."""
    return "".join(scope.node.id for scope in construct.node.scopes[2:])


def business_metric(name: str) -> cloudwatch.MathExpression:
    """The sum of one of our metrics over every dimension it is emitted with (powertools adds the
    emitting function's `service`), as a Metrics Insights query: alarms and graphs by name alone."""
    if not _METRIC_NAME.match(name):
        raise ValueError(f"{name!r} is not a plain metric name")
    query = f"SELECT SUM({name}) FROM {METRICS_NAMESPACE}"  # noqa: S608 - CloudWatch, not SQL; constants
    return cloudwatch.MathExpression(expression=query, label=name, period=PERIOD)


def _queue_id(queue: sqs.CfnQueue) -> str:
    """The queue's construct path below the stack (its L2's, when it has one), joined: unique and readable."""
    owner: IConstruct = queue.node.scope if isinstance(queue.node.scope, sqs.Queue) else queue
    return _below_stack(owner)


def _holds(queue: sqs.CfnQueue) -> str:
    parent = queue.node.scope
    if parent is not None:
        for entry in parent.node.metadata:
            if entry.type == HOLDS_METADATA:
                return str(entry.data)
    return f"queue {_queue_id(queue)}"


def _dead_letter_depth(queue: sqs.CfnQueue) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/SQS",
        metric_name="ApproximateNumberOfMessagesVisible",
        dimensions_map={"QueueName": queue.attr_queue_name},
        statistic="Maximum",
        period=PERIOD,
        label=_queue_id(queue),
    )


def _waf_metric(stack: Stack, firewall: ApiFirewall, rule: str, metric: str) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace="AWS/WAFV2",
        metric_name=metric,
        dimensions_map={"WebACL": firewall.name, "Region": stack.region, "Rule": rule},
        statistic="Sum",
        period=PERIOD,
        label=rule if rule != "ALL" else metric,
    )
