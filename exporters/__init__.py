"""Where run results go. Each exporter reads RunResult and nothing else."""
