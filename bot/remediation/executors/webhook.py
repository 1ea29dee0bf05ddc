"""``webhook``: POST a JSON body, HMAC-signed, with an Idempotency-Key, to an http(s) URL.

Front matter (``url`` may also sit beside ``type``, the older form)::

    - id: restart-pgbouncer
      type: webhook
      params: {url: /actions/restart-pgbouncer, service: checkout}

Every other key in ``params`` is sent as the body's ``params``; a relative URL is joined to
ACTION_BASE_URL. One POST, never retried (the receiver may not be idempotent; it gets the key).
"""

from __future__ import annotations

import builtins
import hashlib
import hmac
import json
import logging
import time
from typing import Any, ClassVar
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr, field_validator

from bot.kernel.config import Settings
from bot.remediation.base import ActionContext, ExecutionResult, Executor, Preview
from bot.remediation.secrets import mask

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Incident-Bot-Signature"
TIMESTAMP_HEADER = "X-Incident-Bot-Timestamp"


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=<hex>`` of HMAC-SHA256 over ``v1:<timestamp>:<body>`` (the same scheme Slack uses)."""
    mac = hmac.new(secret.encode(), b"v1:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookParams(BaseModel):
    """``url`` plus any extra keys, which go to the receiver as ``params``."""

    model_config = ConfigDict(extra="allow", frozen=True)
    url: str

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        if v.startswith("/"):
            return v
        try:
            parts = urlsplit(v)
        except ValueError as exc:
            raise ValueError(f"not a URL: {exc}") from None
        if parts.scheme not in {"http", "https"} or not parts.hostname:
            raise ValueError("must be an http(s) URL or a path starting with '/' (joined to ACTION_BASE_URL)")
        return v

    def extra(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class WebhookExecutor:
    type: ClassVar[str] = "webhook"
    Params: ClassVar[builtins.type[BaseModel]] = (
        WebhookParams  # builtins: `type` in this class is the action type
    )
    needs_model: ClassVar[bool] = False

    def __init__(
        self, *, client: httpx.Client, base_url: str | None, secret: SecretStr | None, timeout: float
    ) -> None:
        self._client = client
        self._base_url = base_url
        self._secret = secret
        self._timeout = timeout

    def resolve_url(self, url: str) -> str | None:
        try:
            if url.startswith("/"):
                return urljoin(self._base_url.rstrip("/") + "/", url.lstrip("/")) if self._base_url else None
            return url if urlsplit(url).scheme in {"http", "https"} else None
        except ValueError:
            return None

    def payload(self, params: WebhookParams, ctx: ActionContext) -> dict[str, Any]:
        return {
            "request_id": ctx.request_id,
            # the same as the Idempotency-Key header: the request's UUID, unique across deployments (two bots
            # sharing this receiver both have a request #1)
            "idempotency_key": ctx.idempotency_key,
            "incident_id": ctx.incident_id,
            "action": ctx.action_id,
            "params": params.extra(),
            "requested_by": ctx.requested_by,
            "approved_by": ",".join(ctx.approved_by),
            "incident_title": ctx.incident_title,
            "service": ctx.service,
            "model": ctx.model,
        }

    def preview(self, params: BaseModel, ctx: ActionContext) -> Preview:
        assert isinstance(params, WebhookParams)
        url = self.resolve_url(params.url)
        parts = urlsplit(url) if url else None
        target = f"{parts.scheme}://{parts.netloc}" if parts else "(ACTION_BASE_URL not set)"
        return Preview(
            executor="Signed webhook" if self._secret is not None else "Webhook (unsigned)",
            target=mask(target),
            method="POST",
            path=parts.path if parts else params.url,
            params=mask(params.extra()),
            details=[("idempotency key", ctx.idempotency_key)],
            error=None
            if url
            else (
                "the action URL is relative but ACTION_BASE_URL is not set"
                if params.url.startswith("/")
                else "the action URL must be http(s)"
            ),
        )

    def run(self, params: BaseModel, ctx: ActionContext) -> ExecutionResult:
        assert isinstance(params, WebhookParams)
        started = time.perf_counter()
        url = self.resolve_url(params.url)
        if url is None:
            return ExecutionResult(
                False,
                None,
                0.0,
                error=(
                    "action URL is relative but ACTION_BASE_URL is not set"
                    if params.url.startswith("/")
                    else "action URL must be http(s)"
                ),
            )
        body = json.dumps(self.payload(params, ctx), sort_keys=True, default=str).encode()
        ts = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: ts,
            "Idempotency-Key": ctx.idempotency_key,
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret.get_secret_value(), ts, body)
        try:
            resp = self._client.post(url, content=body, headers=headers, timeout=self._timeout)
        except httpx.TimeoutException:
            return self._failed(started, f"timed out after {self._timeout:g}s")
        except (httpx.HTTPError, httpx.InvalidURL, ValueError) as exc:
            return self._failed(started, f"{type(exc).__name__}: {exc}")
        elapsed = (time.perf_counter() - started) * 1000
        excerpt = resp.text[:300] if resp.text else None
        if resp.is_success:
            return ExecutionResult(True, resp.status_code, elapsed, response_excerpt=excerpt)
        return ExecutionResult(
            False, resp.status_code, elapsed, error=f"HTTP {resp.status_code}", response_excerpt=excerpt
        )

    @staticmethod
    def _failed(started: float, error: str) -> ExecutionResult:
        log.warning("action webhook failed: %s", error)
        return ExecutionResult(False, None, (time.perf_counter() - started) * 1000, error=error)


class WebhookSettings(BaseModel):
    """The settings this executor reads: Settings fields by name (declared in bot/kernel/config.py)."""

    model_config = ConfigDict(from_attributes=True, frozen=True)
    action_base_url: str | None
    executor_hmac_secret: SecretStr | None
    executor_timeout_seconds: float


def from_settings(settings: Settings, http_client: httpx.Client) -> list[Executor]:
    """Always registered: an absolute action URL needs no setting (a relative one needs ACTION_BASE_URL)."""
    s = WebhookSettings.model_validate(settings)
    return [
        WebhookExecutor(
            client=http_client,
            base_url=s.action_base_url,
            secret=s.executor_hmac_secret,
            timeout=s.executor_timeout_seconds,
        )
    ]
