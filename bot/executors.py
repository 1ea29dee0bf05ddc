"""Executors run an approved runbook action. Today: a signed generic webhook over httpx."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx
from pydantic import SecretStr

log = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Incident-Bot-Signature"
TIMESTAMP_HEADER = "X-Incident-Bot-Timestamp"


@dataclass
class ExecutionResult:
    ok: bool
    status_code: int | None
    duration_ms: float
    error: str | None = None
    response_excerpt: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """``v1=<hex>`` of HMAC-SHA256 over ``v1:<timestamp>:<body>`` (the same scheme Slack uses)."""
    mac = hmac.new(secret.encode(), b"v1:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def verify(secret: str, timestamp: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


class WebhookExecutor:
    def __init__(self, *, client: httpx.Client, base_url: str | None, secret: SecretStr | None,
                 timeout: float) -> None:
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

    def run(self, *, action: dict[str, Any], payload: dict[str, Any], idempotency_key: str) -> ExecutionResult:
        started = time.perf_counter()
        url = self.resolve_url(str(action.get("url", "")))
        if url is None:
            return ExecutionResult(False, None, 0.0, error=(
                "action URL is relative but ACTION_BASE_URL is not set" if str(action.get("url", "")).startswith("/")
                else "action URL must be http(s)"))
        body = json.dumps(payload, sort_keys=True, default=str).encode()
        ts = str(int(time.time()))
        headers = {"Content-Type": "application/json", TIMESTAMP_HEADER: ts, "Idempotency-Key": idempotency_key}
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
        return ExecutionResult(False, resp.status_code, elapsed, error=f"HTTP {resp.status_code}",
                               response_excerpt=excerpt)

    @staticmethod
    def _failed(started: float, error: str) -> ExecutionResult:
        log.warning("action webhook failed: %s", error)
        return ExecutionResult(False, None, (time.perf_counter() - started) * 1000, error=error)
