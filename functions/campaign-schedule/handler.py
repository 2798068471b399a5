from loyalty.campaign_schedule import start_scheduled_run

handler = start_scheduled_run
