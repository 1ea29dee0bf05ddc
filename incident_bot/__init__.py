"""The composition root: builds the runtime (serve, demo and tests share it), the CLI, the demo kit."""
