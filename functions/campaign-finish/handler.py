from loyalty.campaigns import finish_run

handler = finish_run
