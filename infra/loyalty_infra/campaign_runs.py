"""The campaign run workflow (resources.CAMPAIGN_RUN): its working-files bucket and state machine.

Prepare (Lambda) exports the audience as batch files and a manifest; a Distributed Map reads the
manifest (ItemReader, s3:getObject) and runs one child execution per batch, up to MaxConcurrency at
once: the Batch task with a backing-off Retry and a Catch that records the failed batch; Finish
(Lambda) sums the batches' outcomes and marks the run. A failed run ends FAILED, so it can be
redriven. The task contracts are in loyalty.campaigns.

What the local emulator cannot run is avoided on purpose (design.md): no ItemBatcher (Prepare
batches), STANDARD child executions (EXPRESS ones fail locally; STANDARD ones can be redriven), no
JSONata or Assign. ToleratedFailurePercentage is left at its default, which is 0: the local parser
rejects an explicit 0, and every batch failure is caught and recorded inside the iteration anyway.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_stepfunctions as sfn
from aws_cdk import aws_stepfunctions_tasks as tasks
from constructs import Construct

from loyalty.resources import CAMPAIGN_RUN, CampaignRunMachineDef
from loyalty_infra.config import DeploySettings
from loyalty_infra.waivers import (
    CAMPAIGN_RUN_CONTROL,
    CAMPAIGN_RUN_FILES_BUCKET,
    CAMPAIGN_RUN_ROLE,
    CAMPAIGN_RUN_TRACING_SWITCHABLE,
    waive,
)

RESULTS_PREFIX = "results"
RESULT_WRITER_V2_FLAG = "@aws-cdk/aws-stepfunctions:useDistributedMapResultWriterV2"
FAILED_ERROR = "CampaignRunFailed"


class CampaignRunFiles(Construct):
    """The runs' working files: private, TLS only, expiring."""

    def __init__(
        self, scope: Construct, construct_id: str, *, definition: CampaignRunMachineDef = CAMPAIGN_RUN
    ) -> None:
        super().__init__(scope, construct_id)
        retention = definition.bucket.retention_days
        assert retention is not None, "campaign run files expire"
        self.bucket = s3.Bucket(
            self,
            definition.bucket.logical_id,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    expiration=Duration.days(retention),
                    noncurrent_version_expiration=Duration.days(1),
                    abort_incomplete_multipart_upload_after=Duration.days(1),
                )
            ],
            removal_policy=RemovalPolicy.RETAIN,
        )
        waive(self.bucket, CAMPAIGN_RUN_FILES_BUCKET)


def _invoke(
    scope: Construct, state_id: str, function: lambda_.IFunction, **kwargs: object
) -> tasks.LambdaInvoke:
    # The function's ARN as the resource: the task's result is the function's own answer. Lambda's
    # transient errors are retried by the Retry written for each task, not CDK's default one.
    return tasks.LambdaInvoke(
        scope,
        state_id,
        lambda_function=function,
        payload_response_only=True,  # no Parameters: the function gets the state's whole input
        retry_on_service_exceptions=False,
        **kwargs,  # type: ignore[arg-type]
    )


def _retried(task: tasks.LambdaInvoke, definition: CampaignRunMachineDef) -> tasks.LambdaInvoke:
    """What no retry can mend goes straight to the Catch; anything else is retried with back-off."""
    retry = definition.batch_retry
    if definition.not_retried:
        task.add_retry(errors=list(definition.not_retried), max_attempts=0)
    task.add_retry(
        errors=[sfn.Errors.ALL],
        interval=Duration.seconds(retry.interval_s),
        backoff_rate=retry.backoff_rate,
        max_attempts=retry.max_attempts,
        max_delay=Duration.seconds(retry.max_delay_s),
        jitter_strategy=sfn.JitterType.FULL,
    )
    return task


class CampaignRunWorkflow(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: DeploySettings,
        jobs: Mapping[str, lambda_.Function],
        bucket: s3.IBucket,
        definition: CampaignRunMachineDef = CAMPAIGN_RUN,
    ) -> None:
        super().__init__(scope, construct_id)
        # ResultWriterV2 renders only under this feature flag; set here, before any child exists,
        # so the workflow is the same whatever context the app was given.
        self.node.set_context(RESULT_WRITER_V2_FLAG, True)
        failed = sfn.Fail(self, "RunFailed", error=FAILED_ERROR, cause="the run's summary says what failed")
        finish = _retried(_invoke(self, "Finish", jobs[definition.finish]), definition)
        outcome = (
            sfn.Choice(self, "Succeeded?")
            .when(sfn.Condition.string_equals("$.status", "succeeded"), sfn.Succeed(self, "RunSucceeded"))
            .otherwise(failed)
        )
        finish.next(outcome)

        # One iteration: the batch, retried with back-off; when every attempt failed, the failure
        # is recorded (by the same function, told so by `error`) and the iteration succeeds.
        apply = _retried(_invoke(self, "Batch", jobs[definition.batch]), definition)
        record_failure = _retried(_invoke(self, "RecordBatchFailure", jobs[definition.batch]), definition)
        apply.add_catch(record_failure, errors=[sfn.Errors.ALL], result_path="$.error")

        batches = sfn.DistributedMap(
            self,
            "Batches",
            item_reader=sfn.S3JsonItemReader(
                bucket=bucket, key=sfn.JsonPath.string_at("$.prepared.manifest_key")
            ),
            item_selector={
                "campaign_id": sfn.JsonPath.string_at("$.campaign_id"),
                "run_id": sfn.JsonPath.string_at("$.run_id"),
                "batch": sfn.JsonPath.object_at("$$.Map.Item.Value"),
            },
            max_concurrency=definition.max_concurrency,
            map_execution_type=sfn.StateMachineType.STANDARD,
            # Iteration results go to S3, not into the state: thousands of batches would pass the
            # 256 KB state limit.
            result_writer_v2=sfn.ResultWriterV2(bucket=bucket, prefix=RESULTS_PREFIX),
            result_path=sfn.JsonPath.DISCARD,
        )
        batches.item_processor(apply)
        batches.add_catch(finish, errors=[sfn.Errors.ALL], result_path="$.error")
        batches.next(finish)

        prepare = _retried(
            _invoke(self, "Prepare", jobs[definition.prepare], result_path="$.prepared"), definition
        )
        prepare.add_catch(finish, errors=[sfn.Errors.ALL], result_path="$.error")
        prepare.next(batches)

        log_group = logs.LogGroup(self, "Logs", retention=settings.log_retention)
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            comment=definition.description,
            definition_body=sfn.DefinitionBody.from_chainable(prepare),
            state_machine_type=sfn.StateMachineType.STANDARD,
            timeout=Duration.seconds(definition.timeout_s),
            tracing_enabled=settings.tracing,
            logs=sfn.LogOptions(destination=log_group, level=sfn.LogLevel.ALL, include_execution_data=False),
        )
        waive(self.state_machine.role.node.find_child("DefaultPolicy"), CAMPAIGN_RUN_ROLE)
        waive(self.state_machine.node.find_child("DistributedMapPolicy"), CAMPAIGN_RUN_ROLE)
        if not settings.tracing:
            waive(self.state_machine, CAMPAIGN_RUN_TRACING_SWITCHABLE)

    def grant_start(self, grantee: iam.IGrantable) -> None:
        self.state_machine.grant_start_execution(grantee)

    def grant_run_control(
        self, function: lambda_.Function, definition: CampaignRunMachineDef = CAMPAIGN_RUN
    ) -> None:
        """What the run control (services.campaign_run_control) needs, and no more: start this
        machine's executions, stop and describe them (not other machines'), and its ARN."""
        function.add_environment(definition.arn_env_var, self.state_machine.state_machine_arn)
        self.state_machine.grant_start_execution(function)
        self.state_machine.grant_execution(function, "states:StopExecution", "states:DescribeExecution")
        if function.role is not None:
            waive(function.role.node.find_child("DefaultPolicy"), CAMPAIGN_RUN_CONTROL)
