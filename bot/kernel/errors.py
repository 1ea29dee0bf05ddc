"""Domain errors. Known errors carry a message that is safe to show to the user who caused them."""

from __future__ import annotations


class DomainError(Exception):
    """Base of errors whose message is meant for the user (no secrets, no internals)."""


class NotFound(DomainError):
    pass


class NotAuthorised(DomainError):
    pass


class InvalidState(DomainError):
    pass
