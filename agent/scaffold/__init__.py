"""``journeyman init``: a journeys folder to start from (docs/first-journey.md)."""
