from loyalty.campaigns import run_batch

handler = run_batch
