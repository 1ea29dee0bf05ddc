"""Block Kit builders: pure functions from our models to Slack payloads (no I/O), one module per message
(``incident``, ``approval``, ``kpi``, ``render`` for the terminal), plus ``ids`` (action ids, button values) and
``mrkdwn`` (escaping). Built with ``slack_sdk.models.blocks`` so Slack's limits are checked at build time;
every piece of untrusted text goes through :mod:`handlers.blocks.mrkdwn`."""
