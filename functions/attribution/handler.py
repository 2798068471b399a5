from loyalty.jobs import attribute_identified

handler = attribute_identified
