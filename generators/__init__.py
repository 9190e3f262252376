"""From journey files to other files (never from results): Prometheus rules."""
