"""``RetrievalError``: the root of the errors retrieval/ raises (a runbook file, an import source or a record
that cannot be read).

It stands apart from ``bot.kernel.errors.IncidentBotError`` on purpose: retrieval/ is a library that imports
nothing from bot/ or handlers/ (tests/test_architecture.py), so it cannot derive from the bot's root. It stays
a ``ValueError``, as its subclasses always were, for callers that catch ``ValueError`` (the importers'
per-record loop); the message names the file, line or field, for whoever supplied it.
"""

from __future__ import annotations


class RetrievalError(ValueError):
    """Input that retrieval/ cannot use; the message says which and why."""
