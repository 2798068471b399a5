from loyalty.jobs import write_lake

handler = write_lake
