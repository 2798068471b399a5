from loyalty.jobs import apply_activity

handler = apply_activity
