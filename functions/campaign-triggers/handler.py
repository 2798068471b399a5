from loyalty.jobs import act_on_campaign_trigger

handler = act_on_campaign_trigger
