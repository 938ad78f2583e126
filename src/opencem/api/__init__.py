"""`opencem serve`: the platform's insight as an HTTP API (experience and NPS resources, CAMARA APIs, preferences)."""
