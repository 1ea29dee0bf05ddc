"""The ``incident-bot`` command line: one module per command group."""
