from loyalty.jobs import send_messages

handler = send_messages
