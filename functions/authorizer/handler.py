from loyalty.api.authorizer import authorize

handler = authorize
