"""Retrieval library: text and metadata in, ranked matches with reasons out.

Imports nothing from ``bot`` or ``handlers``; knows no Slack and no HTTP.
"""

from retrieval.types import Document, Match, Query

__all__ = ["Document", "Match", "Query"]
