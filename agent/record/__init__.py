"""``journeyman record``: a journey written by clicking through a site (docs/recording.md)."""
