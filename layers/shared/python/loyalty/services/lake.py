"""The lake writer: the table's stream records, as append-only change rows of business records.

Every insert, modify, removal and TTL deletion of a business record (profiles, transactions and
their lines, points ledger entries, redemptions, accounts, customer events, coupons, messages,
stores, campaign receipts) becomes one change row `(op, change_key, changed_at, change_seq,
<columns>)` in a Parquet file under `<kind>/dt=YYYY-MM-DD/<batch id>.parquet`. The current state
of a record is its latest image per key, derived in SQL (the `*_current` views of
loyalty.services.report_sql): nothing is rewritten in place by the writer. The compaction job
(loyalty.services.compaction) rewrites closed days as one file each and keeps per-kind snapshots
of the current state, which the reports read with only the newer change rows; it is not needed
for correctness, only for speed and cost.

What never reaches the lake, by construction: each kind names the columns it takes (an allowlist),
so key hashes, PINs, stored responses, idempotency items, secrets, outboxes, timeline entries and
contact data (names, emails, phones, postal addresses, links, message recipients and bodies) are
simply never read. Records of any other kind (links, API keys, requests, holds, ...) are ignored.

What segments read does reach it, because a preview must count every facet of the rule language
over all customers in one query: on `customers`, consents and reachability per channel (whether
the contact policy could message them: decided from the links and the address, which stay out),
the status clients see, country, time zone, the birthday as month and day only (no year), free
profile attributes (JSON text, and typed for comparison: loyalty.services.segment_facets), the
points earned per month (the effective tier), price groups, badges and RFM scores; on `events`,
their properties. Those two kinds are marked `personal`, and erasing a customer rewrites their
files without that customer's rows, and compaction never copies such rows back
(loyalty.services.compaction); the other kinds hold pseudonymous ids (customer_id) and business
facts only.

A record that cannot be turned into a row (a malformed image: a conversion error is deterministic,
so retrying it would only hold back its shard for hours) is skipped, logged by key and counted
(`poisoned`); the writer raises only when a file cannot be stored, and then the whole batch is
retried: files are named by the batch's first and last sequence numbers, so a retry overwrites
the same files instead of adding duplicates.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal, Protocol

from loyalty.services import segment_facets

ColumnType = Literal["str", "int", "bool", "money", "cents", "ts", "strs"]

# What each column type is in Parquet, Glue and Athena (decimals and UTC millisecond timestamps
# are what Athena reads without surprises; see docs/design.md, "The lake locally").
SQL_TYPES: Mapping[ColumnType, str] = {
    "str": "VARCHAR",
    "int": "BIGINT",
    "bool": "BOOLEAN",
    "money": "DECIMAL(38,2)",
    "cents": "DECIMAL(38,2)",
    "ts": "TIMESTAMP_MS",
    "strs": "VARCHAR[]",
}
GLUE_TYPES: Mapping[ColumnType, str] = {
    "str": "string",
    "int": "bigint",
    "bool": "boolean",
    "money": "decimal(38,2)",
    "cents": "decimal(38,2)",
    "ts": "timestamp",
    "strs": "array<string>",
}


@dataclass(frozen=True)
class Column:
    name: str  # in the lake
    type: ColumnType
    source: str | None = None  # the item's attribute, when it is named otherwise


# Every kind's rows start with these: what happened, to which record, when, in which order.
CHANGE_COLUMNS: tuple[Column, ...] = (
    Column("op", "str"),  # INSERT | MODIFY | REMOVE | EXPIRE (a TTL deletion)
    Column("change_key", "str"),
    Column("changed_at", "ts"),
    Column("change_seq", "str"),  # the stream sequence number, zero-padded to sort as text
)
SEQ_WIDTH = 40


@dataclass(frozen=True)
class Kind:
    name: str
    columns: tuple[Column, ...]
    # The record's key is a bearer credential (a gift card number, a coupon code): the lake keeps
    # a digest of it as the change key, and never the key itself.
    hashed_key: bool = False
    # Rows may carry personal data of the customer named by customer_id (or the change key's
    # CUST#<id>): an erasure rewrites every file of the kind holding such rows without them
    # (loyalty.services.compaction), and compaction never copies an erased customer's rows back.
    personal: bool = False
    # What compacted files and snapshots are sorted by: the time column reports filter on, so
    # Athena skips row groups by their statistics; a personal kind's customer_id instead, so an
    # erasure's scan of it skips row groups too.
    cluster: tuple[str, ...] = ("change_key",)
    # Values computed from the whole image (facets a query reads as plain columns), merged over the
    # image before the columns take theirs.
    derive: Callable[[Mapping[str, Any]], Mapping[str, Any]] | None = None

    @property
    def all_columns(self) -> tuple[Column, ...]:
        return (*CHANGE_COLUMNS, *self.columns)


def _c(spec: str) -> tuple[Column, ...]:
    """`name:type[=source]` separated by spaces: the kinds below stay one readable line each."""
    columns = []
    for part in spec.split():
        name, _, rest = part.partition(":")
        type_, _, source = rest.partition("=")
        columns.append(Column(name, type_, source or None))  # type: ignore[arg-type]
    return tuple(columns)


def _json(value: Any) -> str:
    """Free-form values as canonical JSON text (sorted keys, integral numbers as integers): what
    the segment SQL compares, in both engines, with `json_extract`."""
    from loyalty.adapters.codec import plain

    return json.dumps(plain(value), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _customer_facets(image: Mapping[str, Any]) -> Mapping[str, Any]:
    """What segments read of a profile, flattened: consents and reachability per channel (decided
    by the contact policy itself, from the links and the address, which stay out of the lake), the
    birthday, free attributes (as JSON text and typed), the tier's months, price groups, badges,
    RFM scores."""
    from loyalty.adapters.codec import customer_from_item
    from loyalty.domain import contact
    from loyalty.domain.templates import Channel

    # Only what reachability and the facets need must be there: the rest of the row never did.
    customer = customer_from_item({"customer_id": "", "created_at": None, **image})
    profile = customer.profile
    scores = image.get("scores") or {}
    facets: dict[str, Any] = {
        "country": profile.country,
        "timezone": profile.timezone,
        "birthday_md": profile.birthday.strftime("%m-%d") if profile.birthday else None,
        "shown_status": customer.shown_status,
        "attributes": _json(profile.attributes),
        "attribute_facts": segment_facets.attribute_facts(profile.attributes),
        # The tier is the one its rolling window of months reaches now: the query sums the window.
        "earned_by_month": _json({f"m{k.replace('-', '')}": v for k, v in customer.earned_by_month.items()}),
        "price_groups": json.dumps(sorted(customer.price_groups)),
        "badges": json.dumps(sorted(customer.badges)),
        "score_r": scores.get("r"),
        "score_f": scores.get("f"),
        "score_m": scores.get("m"),
    }
    for channel in (Channel.EMAIL, Channel.SMS, Channel.MAIL):
        facets[f"consent_{channel.value}"] = contact.consented(customer, channel)
        facets[f"reachable_{channel.value}"] = contact.reachable(customer, channel)
    return facets


def _event_facets(image: Mapping[str, Any]) -> Mapping[str, Any]:
    from loyalty.adapters.codec import plain

    properties = plain(image.get("properties") or {})
    return {"properties": _json(properties), "property_facts": segment_facets.equality_facts(properties)}


def _store_facets(image: Mapping[str, Any]) -> Mapping[str, Any]:
    from loyalty.adapters.codec import plain

    attributes = plain(image.get("attributes") or {})
    return {"attributes": _json(attributes), "attribute_facts": segment_facets.equality_facts(attributes)}


CUSTOMERS = Kind(
    "customers",
    _c(
        "customer_id:str member:bool status:str created_at:ts enrolled_at:ts origin_store_id:str "
        "tier:str points_available:int points_pending:int points_lifetime:int txn_count:int "
        "spend:money first_purchase_at:ts last_purchase_at:ts merged_into:str version:int "
        "consent_email:bool consent_sms:bool consent_mail:bool reachable_email:bool "
        "reachable_sms:bool reachable_mail:bool shown_status:str country:str timezone:str birthday_md:str "
        "attributes:str attribute_facts:str earned_by_month:str price_groups:strs badges:strs "
        "score_r:int score_f:int score_m:int"
    ),
    personal=True,
    derive=_customer_facets,
    cluster=("customer_id",),
)
TRANSACTIONS = Kind(
    "transactions",
    _c(
        "store_id:str transaction_id:str txn_type:str channel:str occurred_at:ts recorded_at:ts "
        "customer_id:str member:bool currency:str total:money points_earned:int points_reversed:int "
        "bonus_points:int original_store_id:str original_transaction_id:str order_status:str "
        "cashback:int version:int"
    ),
    cluster=("occurred_at", "store_id"),
)
TRANSACTION_LINES = Kind(
    "transaction_lines",
    _c(
        "store_id:str transaction_id:str txn_type:str occurred_at:ts customer_id:str line_id:str "
        "sku:str category:str quantity:money unit_price:money discount:money points:int "
        "returned_quantity:money"
    ),
    cluster=("occurred_at", "store_id"),
)
LEDGER = Kind(
    "ledger",
    _c(
        "customer_id:str seq:int entry_at:ts=at points:int reason:str balance_after:int "
        "transaction_id:str store_id:str redemption_id:str original_transaction_id:str "
        "lot_expires_at:ts=expires_at rule_id:str event_id:str"
    ),
    cluster=("entry_at",),
)
REDEMPTIONS = Kind(
    "redemptions",
    _c(
        "redemption_id:str kind:str store_id:str customer_id:str created_at:ts points:int "
        "reward_id:str amount:cents status:str reversed_at:ts version:int"
    ),
    cluster=("created_at",),
)
ACCOUNTS = Kind(
    "accounts",
    _c(
        "kind:str currency:str balance:cents created_at:ts customer_id:str store_id:str "
        "valid_until:ts status:str version:int"
    ),
    hashed_key=True,
    cluster=("created_at",),
)
EVENTS = Kind(
    "events",
    _c(
        "event_id:str store_id:str channel:str event_type:str=type customer_id:str member:bool "
        "occurred_at:ts received_at:ts properties:str property_facts:str"
    ),
    personal=True,
    derive=_event_facets,
    cluster=("customer_id",),
)
COUPONS = Kind(
    "coupons",
    _c(
        "offer_id:str customer_id:str issued_at:ts valid_until:ts max_uses:int uses:int source:str status:str"
    ),
    hashed_key=True,
    cluster=("issued_at",),
)
MESSAGES = Kind(
    "messages",
    _c("message_id:str kind:str customer_id:str status:str created_at:ts attempts:int"),
    cluster=("created_at",),
)
STORES = Kind(
    "stores",
    _c("store_id:str channel:str format:str name:str updated_at:ts attributes:str attribute_facts:str"),
    derive=_store_facets,
    cluster=("store_id",),
)


def _receipt_facets(image: Mapping[str, Any]) -> Mapping[str, Any]:
    """A campaign receipt's gifts as the report counts them: the coupon by the digest of its
    record's key (the coupons kind's change key: the code is a bearer credential and never reaches
    the lake, yet the report can tell whether it was redeemed), the channels messaged, and the
    promotional cash as money (or from cents, if that is how it was kept)."""
    nested = image.get("given")
    given: Mapping[str, Any] = nested if isinstance(nested, Mapping) else {}

    def pick(*names: str) -> Any:
        for name in names:
            for source in (image, given):
                if source.get(name) not in (None, ""):
                    return source[name]
        return None

    code = pick("coupon_code")
    amount = pick("amount", "promo_cash")
    if amount is None and pick("amount_cents") is not None:
        amount = Decimal(int(pick("amount_cents"))) / 100
    messages = pick("messages") or {}
    return {
        "coupon_key": hashlib.sha256(f"COUPON#{code}|COUPON".encode()).hexdigest() if code else None,
        "amount": amount,
        "points": pick("points"),
        "message_channels": json.dumps(sorted(str(ch) for ch, mid in dict(messages).items() if mid)),
    }


# Campaign receipts: one per (campaign, occasion, customer), actioned or held out as control,
# with what it gave (loyalty.services.campaign_actions writes them; `CAMPACT#<campaign>#<customer>`
# / `OCC#<occasion>`). The campaign report reads them (loyalty.services.campaign_reports). Sorted by
# campaign, so a report of one campaign skips the others' row groups.
CAMPAIGN_ACTIONS = Kind(
    "campaign_actions",
    _c(
        "campaign_id:str customer_id:str occasion:str run_id:str outcome:str acted_at:ts=at points:int "
        "amount:money coupon_key:str message_channels:strs"
    ),
    derive=_receipt_facets,
    cluster=("campaign_id", "acted_at"),
)

# Saved segments (definitions only: no rule text, no member). A segment's background pass reads
# the lake only once its own save has reached it: the lake writer has then read the stream past
# the save, and every customer created before it is in the lake (loyalty.services.segment_passes).
SEGMENTS = Kind("segments", _c("segment_id:str name:str version:int updated_at:ts"))

KINDS: tuple[Kind, ...] = (
    CUSTOMERS,
    TRANSACTIONS,
    TRANSACTION_LINES,
    LEDGER,
    REDEMPTIONS,
    ACCOUNTS,
    EVENTS,
    COUPONS,
    MESSAGES,
    STORES,
    SEGMENTS,
    CAMPAIGN_ACTIONS,
)
# The first key segment of every record some kind takes: the stream filter on AWS (loyalty_infra.outbox).
KEY_PREFIXES: tuple[str, ...] = (
    "CUST#",
    "TXN#",
    "REDEMPTION#",
    "ACCOUNT#",
    "EVENT#",
    "COUPON#",
    "MESSAGE#",
    "STORE#",
    "SEGMENT#",  # the definitions (a size counter shares the prefix: the writer skips it)
    "CAMPACT#",  # campaign receipts (the latest-receipt marker `LAST` shares it: the writer skips it)
)


def kind_of(pk: str, sk: str, image: Mapping[str, Any]) -> Kind | None:
    """Which kind a record is, from its key and `type`; None for everything the lake leaves out."""
    if pk.startswith("EVENT#") and sk == "EVENT":
        return EVENTS
    if pk.startswith("CAMPACT#"):
        return CAMPAIGN_ACTIONS if sk.startswith("OCC#") else None
    by_type: Mapping[str, Kind] = {
        "customer": CUSTOMERS,
        "transaction": TRANSACTIONS,
        "ledger": LEDGER,
        "redemption": REDEMPTIONS,
        "account": ACCOUNTS,
        "coupon": COUPONS,
        "message": MESSAGES,
        "store": STORES,
        "segment": SEGMENTS,
    }
    kind = by_type.get(str(image.get("type")))
    if kind is CUSTOMERS and sk != "PROFILE":
        return None
    return kind


# ---- values ----------------------------------------------------------------------------------


def _epoch_ms(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return int(value) * 1000  # epoch seconds (a TTL attribute)
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _value(type_: ColumnType, value: Any) -> Any:  # noqa: PLR0911 - one return per type
    """A JSON-ready value the Parquet writer casts to the column's type (decimals travel as text)."""
    if value is None:
        return None
    match type_:
        case "str":
            return str(value)
        case "int":
            return int(value)
        case "bool":
            if not isinstance(value, bool):
                raise ValueError(f"not a boolean: {value!r}")
            return value
        case "money":
            return str(Decimal(str(value)).quantize(Decimal("0.01")))
        case "cents":
            return str((Decimal(int(value)) / 100).quantize(Decimal("0.01")))
        case "ts":
            return _epoch_ms(value)
        case "strs":  # JSON text of a list of strings (the writer casts it to a list)
            items = json.loads(value) if isinstance(value, str) else list(value)
            return json.dumps([str(item) for item in items])


def _row(kind: Kind, image: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    row = dict(change)
    if kind.derive is not None:
        image = {**image, **kind.derive(image)}
    for column in kind.columns:
        row[column.name] = _value(column.type, image.get(column.source or column.name))
    return row


# ---- stream records ----------------------------------------------------------------------------


@dataclass(frozen=True)
class StreamChange:
    """A stream record as the lake needs it (the job turns Lambda's records into these)."""

    event_name: str  # INSERT | MODIFY | REMOVE
    keys: Mapping[str, Any]
    new_image: Mapping[str, Any] | None
    old_image: Mapping[str, Any] | None
    sequence_number: str
    approximate_creation: datetime
    ttl_deletion: bool = False  # a REMOVE by DynamoDB's TTL service, not by the platform


@dataclass
class LakeBatch:
    """Rows by (kind, dt): one file each."""

    rows: dict[tuple[str, str], list[dict[str, Any]]] = field(default_factory=lambda: defaultdict(list))
    poisoned: list[str] = field(default_factory=list)  # sequence numbers skipped
    ignored: int = 0
    first_seq: str | None = None
    last_seq: str | None = None

    @property
    def batch_id(self) -> str:
        return f"{self.first_seq}-{self.last_seq}"

    @property
    def row_count(self) -> int:
        return sum(len(rows) for rows in self.rows.values())


def change_rows(change: StreamChange) -> list[tuple[Kind, dict[str, Any]]]:
    """The lake rows of one stream record (none when the record is no business record)."""
    image = change.old_image if change.event_name == "REMOVE" else change.new_image
    pk, sk = str(change.keys.get("pk", "")), str(change.keys.get("sk", ""))
    if image is None:
        return []
    kind = kind_of(pk, sk, image)
    if kind is None:
        return []
    op = "EXPIRE" if change.ttl_deletion else change.event_name
    key = f"{pk}|{sk}"
    if kind.hashed_key:
        key = hashlib.sha256(key.encode()).hexdigest()
    common = {
        "op": op,
        "change_key": key,
        "changed_at": _epoch_ms(change.approximate_creation),
        "change_seq": change.sequence_number.zfill(SEQ_WIDTH),
    }
    rows: list[tuple[Kind, dict[str, Any]]] = [(kind, _row(kind, image, common))]
    if kind is TRANSACTIONS:
        from loyalty.adapters.transactions import expand_line

        # Lines are stored under short attribute names (adapters.transactions); older ones long.
        for line in (expand_line(dict(raw)) for raw in image.get("lines") or ()):
            line_image = {**{c.name: image.get(c.name) for c in TRANSACTIONS.columns}, **line}
            line_change = {**common, "change_key": f"{key}|{line.get('line_id')}"}
            rows.append((TRANSACTION_LINES, _row(TRANSACTION_LINES, line_image, line_change)))
    return rows


class LakeFiles(Protocol):
    """Where the lake's files go: S3 on AWS and locally (moto), a folder in tests and the bench."""

    def write(self, kind: Kind, dt: str, batch_id: str, rows: Sequence[Mapping[str, Any]]) -> None: ...


@dataclass
class LakeWriter:
    files: LakeFiles
    on_poison: Callable[[str, Exception], None] | None = None

    def collect(self, changes: Iterable[StreamChange]) -> LakeBatch:
        batch = LakeBatch()
        for change in changes:
            batch.first_seq = batch.first_seq or change.sequence_number.zfill(SEQ_WIDTH)
            batch.last_seq = change.sequence_number.zfill(SEQ_WIDTH)
            try:
                rows = change_rows(change)
            except (ValueError, TypeError, ArithmeticError, AttributeError) as exc:
                batch.poisoned.append(change.sequence_number)
                if self.on_poison is not None:
                    self.on_poison(change.sequence_number, exc)
                continue
            if not rows:
                batch.ignored += 1
            dt = change.approximate_creation.astimezone(UTC).date().isoformat()
            for kind, row in rows:
                batch.rows[(kind.name, dt)].append(row)
        return batch

    def write(self, changes: Iterable[StreamChange]) -> LakeBatch:
        batch = self.collect(changes)
        kinds = {k.name: k for k in KINDS}
        for (name, dt), rows in sorted(batch.rows.items()):
            self.files.write(kinds[name], dt, batch.batch_id, rows)
        return batch


# ---- the compacted layout ------------------------------------------------------------------------

MANIFEST_KEY = "_lake/manifest.json"
ERASED_PREFIX = "_lake/erased/"
SNAPSHOT_PREFIX = "_snapshots"
_GENERATION = re.compile(r"^[0-9A-Za-z-]{1,64}$")


def snapshot_table(kind_name: str) -> str:
    return f"{kind_name}_snapshot"


def snapshot_key(kind_name: str, generation: str) -> str:
    return f"{SNAPSHOT_PREFIX}/{kind_name}/generation={generation}/snapshot.parquet"


@dataclass(frozen=True)
class LakeManifest:
    """Which snapshot generation is current, and what it covers: every change row of every day up
    to and including `closed_through`. `newest` is the newest `changed_at` among those change rows
    per kind (what `as_of` would have found in them). Written last by compaction, in one put."""

    generation: str
    closed_through: date
    newest: Mapping[str, datetime | None]
    previous: str | None = None

    def __post_init__(self) -> None:
        # Both end up as literals in the reports' SQL: only the shapes compaction makes pass.
        for generation in (self.generation, self.previous):
            if generation is not None and not _GENERATION.match(generation):
                raise ValueError(f"not a snapshot generation: {generation!r}")

    def to_json(self) -> str:
        return json.dumps(
            {
                "generation": self.generation,
                "closed_through": self.closed_through.isoformat(),
                "previous": self.previous,
                "newest": {k: v.isoformat() if v else None for k, v in sorted(self.newest.items())},
            },
            indent=2,
        )

    @classmethod
    def from_json(cls, text: str) -> LakeManifest:
        raw = json.loads(text)
        return cls(
            generation=str(raw["generation"]),
            closed_through=date.fromisoformat(str(raw["closed_through"])),
            previous=raw.get("previous"),
            newest={
                str(k): datetime.fromisoformat(v) if v else None for k, v in (raw.get("newest") or {}).items()
            },
        )
