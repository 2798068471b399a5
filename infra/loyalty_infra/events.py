"""The custom EventBridge bus for domain events, built from loyalty.resources.EVENT_BUS."""

from __future__ import annotations

from aws_cdk import Duration, Stack
from aws_cdk import aws_events as events
from constructs import Construct

from loyalty.resources import EVENT_BUS, BusDef

ARCHIVE_RETENTION = Duration.days(30)


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
