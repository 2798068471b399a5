"""The `mail` channel: one CSV print file per batch the mailer sends, on S3, for the brand's mail house.

Columns (UTF-8 with a BOM so spreadsheet tools read accents right, comma-separated, RFC 4180
quoting): message_id, name, line1, line2, postal_code, city, country. Files are named
`print/<YYYY-MM-DD>/<first message id>-<n>.csv`; a row is sent when its file is written, so a
message is marked sent only after the put succeeded (a failed put fails the whole batch, which
the mailer retries).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from loyalty.adapters.email import SendFailed
from loyalty.domain.outgoing import Outgoing

COLUMNS = ("message_id", "name", "line1", "line2", "postal_code", "city", "country")
PREFIX = "print/"


def rows_csv(batch: Sequence[Outgoing]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    for o in batch:
        p = o.customer.profile
        a = p.address
        name = " ".join(part for part in (p.first_name, p.last_name) if part)
        lines = [a.line1, a.line2 or "", a.postal_code or "", a.city, a.country] if a else [""] * 5
        writer.writerow([o.message_id, name, *lines])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


class S3PrintFiles:
    batched = True

    def __init__(self, client: Any, bucket: str) -> None:
        self._client = client
        self._bucket = bucket

    def write(self, batch: Sequence[Outgoing], now: datetime) -> str:
        """Put one file holding the batch; its s3:// address (each row's provider id)."""
        key = f"{PREFIX}{now:%Y-%m-%d}/{now:%H%M%S}-{batch[0].message_id}-{len(batch)}.csv"
        try:
            self._client.put_object(
                Bucket=self._bucket, Key=key, Body=rows_csv(batch), ContentType="text/csv; charset=utf-8"
            )
        except ClientError as exc:
            raise SendFailed(str(exc.response.get("Error", {}).get("Code") or "ClientError")) from None
        except BotoCoreError as exc:
            raise SendFailed(type(exc).__name__) from None
        return f"s3://{self._bucket}/{key}"

    def list(self, limit: int, cursor: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Print files, oldest first (S3's continuation token is the cursor)."""
        request: dict[str, Any] = {"Bucket": self._bucket, "Prefix": PREFIX, "MaxKeys": limit}
        if cursor:
            request["ContinuationToken"] = cursor
        response = self._client.list_objects_v2(**request)
        files = [
            {"key": o["Key"], "size": int(o["Size"]), "last_modified": o["LastModified"]}
            for o in response.get("Contents", [])
        ]
        return files, response.get("NextContinuationToken")
