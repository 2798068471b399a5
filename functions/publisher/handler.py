from loyalty.jobs import publish_events

handler = publish_events
