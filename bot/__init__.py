"""incident-bot core: configuration, persistence, triage, approvals, executors, audit, composition."""

__version__ = "0.1.0"
