from loyalty.jobs import apply_email_feedback

handler = apply_email_feedback
