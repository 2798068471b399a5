from loyalty.jobs import score_customers

handler = score_customers
