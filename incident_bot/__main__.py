"""``python -m incident_bot``: the same as the ``incident-bot`` command."""

from incident_bot.cli.main import main

raise SystemExit(main())
