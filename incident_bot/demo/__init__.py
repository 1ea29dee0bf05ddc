"""The demo kit: the offline demo, a recording Slack Web API stand-in, a webhook receiver, a local MLflow."""
