"""`opencem stream`: session records and PM consumed as they arrive, into continuously refreshed experience and NPS."""
