"""Slack listeners (one ``register(app, service)`` per feature) and the Slack chat implementations."""
