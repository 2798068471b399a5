from loyalty.jobs import points_sweep

handler = points_sweep
