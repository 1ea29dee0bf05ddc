"""The exception hierarchy of bot/ and handlers/: one root, two branches, told apart by who may read the message.

    IncidentBotError
    ├── DomainError        the person who caused it may read it (no secrets, no internals): a private reply
    │   ├── NotFound, NotAuthorised, InvalidState
    │   └── (handlers) PayloadError, InvalidValue: a webhook body or a Slack button value we refuse
    └── OperationalError   infrastructure or configuration failed: for operators and logs, never a user reply
        ├── (executors) K8sError, MlflowError; (Slack delivery) ChatError, LeaseLost
        └── ConfigError    a setting or config file that cannot be used
            └── (remediation) PolicyError, ActionError

Subclasses keep ``ValueError`` as a second base where callers catch ``ValueError`` (parsers, button values,
policy and runbook validation). ``retrieval/`` has its own root (``retrieval.errors.RetrievalError``): it is a
library that imports nothing from bot/.
"""

from __future__ import annotations


class IncidentBotError(Exception):
    """Root of every error bot/ and handlers/ raise on purpose."""


class DomainError(IncidentBotError):
    """Base of errors whose message is meant for the user (no secrets, no internals)."""


class NotFound(DomainError):
    pass


class NotAuthorised(DomainError):
    pass


class InvalidState(DomainError):
    pass


class OperationalError(IncidentBotError):
    """Infrastructure or configuration failed; the message is for operators and logs, not for a Slack user."""


class ConfigError(OperationalError):
    """A setting or a config file (policy, runbook actions) that cannot be used; the message names it."""
