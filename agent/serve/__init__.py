"""The agent's HTTP endpoint: /metrics, /healthz, /readyz and the status page."""
