"""The HTTP edge: alert and change webhooks, the Slack endpoint, readiness and metrics."""
