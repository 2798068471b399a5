"""The Athena adapter's calls, checked against Athena's own service model by botocore's Stubber:
a query in the workgroup against the lake database, waited for, its pages read and typed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from loyalty.adapters.report_queries import AthenaQueries, AthenaQueryFailed


def column(name: str, type_: str) -> dict[str, Any]:
    return {"Name": name, "Type": type_}


def row(*values: str | None) -> dict[str, Any]:
    return {"Data": [{"VarCharValue": v} if v is not None else {} for v in values]}


@pytest.fixture
def athena() -> Any:
    return boto3.session.Session(aws_access_key_id="a", aws_secret_access_key="b").client(
        "athena", region_name="eu-west-1", endpoint_url="https://athena.eu-west-1.amazonaws.com"
    )


def test_a_query_runs_in_the_workgroup_and_every_page_is_read_and_typed(athena: Any) -> None:
    info = {
        "ColumnInfo": [
            column("grp", "varchar"),
            column("transactions", "bigint"),
            column("revenue", "decimal"),
        ]
    }
    with Stubber(athena) as stub:
        stub.add_response(
            "start_query_execution",
            {"QueryExecutionId": "q1"},
            {
                "QueryString": "SELECT 1",
                "WorkGroup": "reports",
                "QueryExecutionContext": {"Database": "loyalty_lake"},
            },
        )
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"Status": {"State": "RUNNING"}}},
            {"QueryExecutionId": "q1"},
        )
        stub.add_response(
            "get_query_execution",
            {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}},
            {"QueryExecutionId": "q1"},
        )
        stub.add_response(
            "get_query_results",
            {
                "ResultSet": {
                    "Rows": [row("grp", "transactions", "revenue"), row("members", "2", "50.00")],
                    "ResultSetMetadata": info,
                },
                "NextToken": "page2",
            },
            {"QueryExecutionId": "q1"},
        )
        stub.add_response(
            "get_query_results",
            {"ResultSet": {"Rows": [row("anonymous", "1", None)], "ResultSetMetadata": info}},
            {"QueryExecutionId": "q1", "NextToken": "page2"},
        )
        rows = AthenaQueries(athena=athena, workgroup="reports", database="loyalty_lake", poll_seconds=0).run(
            "SELECT 1"
        )
        stub.assert_no_pending_responses()
    assert rows == [
        {"grp": "members", "transactions": 2, "revenue": Decimal("50.00")},
        {"grp": "anonymous", "transactions": 1, "revenue": None},
    ]


def test_a_failed_query_is_an_error_naming_the_reason(athena: Any) -> None:
    with Stubber(athena) as stub:
        stub.add_response("start_query_execution", {"QueryExecutionId": "q2"})
        stub.add_response(
            "get_query_execution",
            {
                "QueryExecution": {
                    "Status": {
                        "State": "FAILED",
                        "StateChangeReason": "Query exhausted the bytes scanned limit",
                    }
                }
            },
        )
        with pytest.raises(AthenaQueryFailed, match="bytes scanned"):
            AthenaQueries(athena=athena, workgroup="reports", database="loyalty_lake", poll_seconds=0).run(
                "SELECT 2"
            )
