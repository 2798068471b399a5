"""The campaign run state machine through the Step Functions API (services.campaign_run_control's
RunStarter). Executions are named by the run's attempt, so their ARNs follow from the machine's."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError


def execution_arn(state_machine_arn: str, name: str) -> str:
    """arn:aws:states:<region>:<account>:stateMachine:<machine> -> …:execution:<machine>:<name>."""
    return f"{state_machine_arn.replace(':stateMachine:', ':execution:', 1)}:{name}"


class StepFunctionsRunStarter:
    def __init__(self, client: Any, state_machine_arn: str) -> None:
        self._client = client
        self._arn = state_machine_arn

    def start(self, name: str, execution_input: Mapping[str, Any]) -> None:
        try:
            self._client.start_execution(
                stateMachineArn=self._arn, name=name, input=json.dumps(dict(execution_input))
            )
        except ClientError as exc:
            # Started already (by the same start retried, or a repeated schedule firing): that one
            # is this run's execution.
            if exc.response["Error"]["Code"] != "ExecutionAlreadyExists":
                raise

    def stop(self, name: str, cause: str) -> None:
        try:
            self._client.stop_execution(
                executionArn=execution_arn(self._arn, name), error="Cancelled", cause=cause[:200]
            )
        except ClientError as exc:
            # Never started (a start that failed) or already gone: nothing runs to stop.
            if exc.response["Error"]["Code"] != "ExecutionDoesNotExist":
                raise

    def status(self, name: str) -> str | None:
        try:
            described = self._client.describe_execution(executionArn=execution_arn(self._arn, name))
        except ClientError as exc:
            if exc.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise
        return str(described["status"])
