"""Local provisioning keeps up with the one resource definition: a table kept by `make run` from an
older version gets the indexes added since (as a CloudFormation update adds them on AWS), backfilled,
and the data it held stays."""

from __future__ import annotations

import dataclasses
import uuid

import boto3

from loyalty.resources import TABLE
from loyalty_local.provision import add_missing_indexes, create_table


def test_a_table_from_an_older_version_gets_the_new_index_and_keeps_its_data(
    aws_session: boto3.session.Session,
) -> None:
    client = aws_session.client("dynamodb")
    name = f"old-{uuid.uuid4().hex[:10]}"
    newest = TABLE.indexes[-1]
    older = dataclasses.replace(TABLE, indexes=TABLE.indexes[:-1])
    create_table(client, older, name)
    client.put_item(
        TableName=name,
        Item={
            "pk": {"S": "CUST#1"},
            "sk": {"S": "THING"},
            newest.partition_key: {"S": "P"},
            newest.sort_key: {"S": "S"},
            **({a: {"M": {}} for a in newest.projection or ()}),
        },
    )

    create_table(client, TABLE, name)  # what `make run` does on its next start

    indexes = {
        i["IndexName"] for i in client.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"]
    }
    assert indexes == {i.name for i in TABLE.indexes}
    found = client.query(
        TableName=name,
        IndexName=newest.name,
        KeyConditionExpression="#p = :p",
        ExpressionAttributeNames={"#p": newest.partition_key},
        ExpressionAttributeValues={":p": {"S": "P"}},
    )["Items"]
    assert [i["pk"]["S"] for i in found] == ["CUST#1"], "the old item is in the new index"
    assert add_missing_indexes(client, TABLE, name) == [], "nothing more to add"
