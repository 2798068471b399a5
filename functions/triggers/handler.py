from loyalty.jobs import queue_triggered_messages

handler = queue_triggered_messages
