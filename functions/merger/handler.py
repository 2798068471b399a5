from loyalty.jobs import run_merges

handler = run_merges
