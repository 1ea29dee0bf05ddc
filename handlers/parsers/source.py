"""What an alert source declares about itself, in its own parser module (``SOURCE = Source(...)``).

The HTTP edge serves ``POST /alerts/<name>`` for every source listed in ``handlers/parsers/__init__.py``
from this declaration alone: how to parse, whether the query string is read, what to prepare from
settings, and an optional signature the source may authenticate with instead of the bearer token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import SecretStr

from bot.intake.alerts import Alert
from bot.kernel.config import Settings, secret_value

Parser = Callable[[Any], list[Alert]]
Rewrite = Callable[[Any], Any]
"""A body -> body step run before the parser (e.g. the generic source's ``GENERIC_FIELD_MAP``)."""


@dataclass(frozen=True)
class SignatureAuth:
    """A source's own request signature, accepted instead of the bearer token once its secret is set."""

    setting: str  # the Settings field that holds the secret, e.g. "pagerduty_webhook_secret"
    header: str  # the request header carrying the signature, e.g. "X-PagerDuty-Signature"
    verify: Callable[[str, bytes, str | None], bool]  # (secret, raw body, header value or None) -> valid


@dataclass(frozen=True)
class SignatureCheck:
    """A ``SignatureAuth`` with its secret, read from settings when the edge is built."""

    auth: SignatureAuth
    secret: str

    @property
    def header(self) -> str:
        return self.auth.header

    def ok(self, body: bytes, headers: Mapping[str, str]) -> bool:
        """``headers``: the request's (Starlette's are case-insensitive)."""
        return self.auth.verify(self.secret, body, headers.get(self.auth.header))


@dataclass(frozen=True)
class Source:
    """One alert source, declared at the end of its parser module and listed once in ``SOURCES``."""

    name: str  # the path segment: POST /alerts/<name>
    parse: Callable[..., list[Alert]]  # parse(body), or parse(body, query) when reads_query
    reads_query: bool = False  # the parser also reads the query parameters (Evidently: the model's name)
    prepare: Callable[[Settings], Rewrite | None] | None = None  # settings -> a Rewrite, or None when not set
    signature: SignatureAuth | None = None

    def configure(self, settings: Settings) -> ConfiguredSource:
        """This source with ``settings`` applied; a setting it cannot use raises ``ValueError``."""
        return ConfiguredSource(
            source=self,
            prepare=self.prepare(settings) if self.prepare else None,
            signature=self._signature(settings),
        )

    def _signature(self, settings: Settings) -> SignatureCheck | None:
        if self.signature is None:
            return None
        if not hasattr(settings, self.signature.setting):
            raise ValueError(
                f"alert source '{self.name}': no setting '{self.signature.setting}' for its signature"
            )
        raw = getattr(settings, self.signature.setting)
        secret = secret_value(raw) if isinstance(raw, SecretStr) or raw is None else (raw or None)
        if secret is None:  # unset or empty: an empty key would let anyone sign
            return None
        return SignatureCheck(self.signature, secret)


@dataclass(frozen=True)
class ConfiguredSource:
    """What the edge runs for one source: ``prepare`` (if any), then ``parser(query)``."""

    source: Source
    prepare: Rewrite | None = None
    signature: SignatureCheck | None = None  # None: the bearer token only

    def parser(self, query: Mapping[str, str]) -> Parser:
        parse = self.source.parse
        if self.source.reads_query:
            return lambda body: parse(body, query)
        return parse
