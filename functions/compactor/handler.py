from loyalty.jobs import compact_lake

handler = compact_lake
