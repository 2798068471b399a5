from loyalty.campaigns import prepare_run

handler = prepare_run
