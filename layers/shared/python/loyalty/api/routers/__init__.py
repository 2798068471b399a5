"""One router per function; `loyalty.api.openapi` puts them all in one document."""
