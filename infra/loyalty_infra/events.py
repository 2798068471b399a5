"""The custom EventBridge bus for domain events, built from loyalty.resources.EVENT_BUS."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from constructs import Construct

from loyalty.domain import events as domain_events
from loyalty.resources import EVENT_BUS, BusDef

ARCHIVE_RETENTION = Duration.days(30)

# What the platform puts on the bus, read from the domain module so a new event type needs no
# change here: Source is its SOURCE, and every other upper-case string constant is a DetailType.
EVENT_SOURCE = domain_events.SOURCE
DETAIL_TYPES: tuple[str, ...] = tuple(
    sorted(
        value
        for name, value in vars(domain_events).items()
        if name.isupper() and name != "SOURCE" and isinstance(value, str)
    )
)


class DomainEventBus(Construct):
    """The bus plus an archive of everything published on it, so events can be replayed."""

    def __init__(self, scope: Construct, construct_id: str, *, definition: BusDef = EVENT_BUS) -> None:
        super().__init__(scope, construct_id)
        self.bus = events.EventBus(self, definition.logical_id, description="Loyalty platform domain events")
        self.archive = self.bus.archive(
            "Archive",
            description="Every domain event, for replay after a consumer bug",
            # An archive needs a pattern; every event on this bus comes from this account.
            event_pattern=events.EventPattern(account=[Stack.of(self).account]),
            retention=ARCHIVE_RETENTION,
        )

    def grant_publish(self, grantee: iam.IGrantable) -> None:
        """events:PutEvents on this bus, for the platform's own Source and DetailTypes only."""
        grantee.grant_principal.add_to_principal_policy(
            iam.PolicyStatement(
                sid="PublishDomainEvents",
                actions=["events:PutEvents"],
                resources=[self.bus.event_bus_arn],
                conditions={
                    "StringEquals": {
                        "events:source": [EVENT_SOURCE],
                        "events:detail-type": list(DETAIL_TYPES),
                    }
                },
            )
        )
