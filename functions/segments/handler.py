from loyalty.jobs import keep_segments

handler = keep_segments
