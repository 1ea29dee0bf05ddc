"""What an alert's graph is made of: its PromQL expression (from the ``generatorURL`` Prometheus puts on every
alert: ``/graph?g0.expr=...``), the threshold its rule states, and the series ``/api/v1/query_range`` returns.

The generatorURL comes from an untrusted payload, so only its expression is used, and it is sent to *our*
Prometheus (``PROMETHEUS_URL``); its host is never contacted. Errors are ``PrometheusError`` with a message
for the incident thread (no credentials: user-info is stripped from the URL before it is shown).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import httpx

from bot.kernel.errors import OperationalError

MAX_EXPR = 2000  # characters of PromQL we are willing to send
MAX_POINTS = 300  # per series: the step is chosen so that the window has about this many
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_FLIP = {">": "<", "<": ">", ">=": "<=", "<=": ">="}


class PrometheusError(OperationalError):
    """A query that could not be answered; the message says why in one line."""


@dataclass(frozen=True)
class Threshold:
    op: str  # >, <, >=, <=
    value: float

    @property
    def text(self) -> str:
        return f"{self.op} {self.value:g}"


@dataclass(frozen=True)
class Series:
    labels: dict[str, str]
    points: list[tuple[datetime, float]]


def expr_from_generator_url(url: str | None) -> str | None:
    """``g0.expr`` of a Prometheus generatorURL (``http://prom:9090/graph?g0.expr=...&g0.tab=1``)."""
    if not url:
        return None
    try:
        values = parse_qs(urlsplit(url).query).get("g0.expr")
    except ValueError:
        return None
    expr = (values or [""])[0].strip()
    return expr[:MAX_EXPR] if expr else None


def split_threshold(expr: str) -> tuple[str, Threshold | None]:
    """``rate(errors[5m]) > 0.05`` → (``rate(errors[5m])``, > 0.05): the one comparison with a number at the
    top level of the expression (outside parentheses, brackets, braces and strings). Anything else (no
    comparison, several, ``bool``, a comparison of two series, ``and``/``or`` around it) has no threshold we
    can draw, and the whole expression is what is plotted."""
    found: list[tuple[int, str]] = []
    depth, quote, i = 0, "", 0
    while i < len(expr):
        c = expr[i]
        if quote:
            if c == "\\":
                i += 2
                continue
            if c == quote:
                quote = ""
        elif c in "\"'`":
            quote = c
        elif c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        elif depth == 0 and c in "<>=!":
            two = expr[i : i + 2]
            op = two if two in (">=", "<=", "==", "!=") else c
            found.append((i, op))
            i += len(op)
            continue
        i += 1
    if len(found) != 1 or found[0][1] not in _FLIP:
        return expr, None
    at, op = found[0]
    left, right = expr[:at].strip(), expr[at + len(op) :].strip()
    if _NUMBER.fullmatch(right) and left:
        return left, Threshold(op, float(right))
    if _NUMBER.fullmatch(left) and right and not right.startswith("bool"):
        return right, Threshold(_FLIP[op], float(left))
    return expr, None


def step_for(start: datetime, end: datetime) -> timedelta:
    """About ``MAX_POINTS`` points over the window, never finer than one second."""
    seconds = max((end - start).total_seconds(), 1.0)
    return timedelta(seconds=max(1, math.ceil(seconds / MAX_POINTS)))


def shown_url(url: str) -> str:
    """scheme://host[:port][/path], without user-info: what a message may show."""
    parts = urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path.rstrip('/')}"


class Prometheus:
    """``/api/v1/query_range`` on the configured Prometheus (user-info in the URL becomes basic auth)."""

    def __init__(self, *, client: httpx.Client, url: str, timeout: float = 5.0) -> None:
        parts = urlsplit(url)
        self.shown = self._base = shown_url(url)
        self._auth = (parts.username or "", parts.password or "") if parts.username else None
        self._client, self._timeout = client, timeout

    def version(self) -> str:
        """Prometheus's version (``/api/v1/status/buildinfo``): a reachability check for ``doctor``."""
        try:
            resp = self._client.get(
                f"{self._base}/api/v1/status/buildinfo",
                timeout=self._timeout,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
            )
            return str(resp.raise_for_status().json()["data"]["version"])
        except httpx.HTTPStatusError as exc:
            raise PrometheusError(
                f"Prometheus at {self.shown} answered HTTP {exc.response.status_code}"
            ) from None
        except httpx.HTTPError as exc:
            raise PrometheusError(
                f"Prometheus at {self.shown} is unreachable ({type(exc).__name__})"
            ) from None
        except (ValueError, KeyError, TypeError):
            raise PrometheusError(f"Prometheus at {self.shown} did not answer like Prometheus") from None

    def query_range(self, expr: str, *, start: datetime, end: datetime, step: timedelta) -> list[Series]:
        try:
            resp = self._client.get(
                f"{self._base}/api/v1/query_range",
                params={
                    "query": expr,
                    "start": f"{start.timestamp():.3f}",
                    "end": f"{end.timestamp():.3f}",
                    "step": f"{step.total_seconds():g}",
                    "timeout": f"{self._timeout:g}s",  # Prometheus gives up evaluating too
                },
                timeout=self._timeout,
                auth=self._auth or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException:
            raise PrometheusError(
                f"Prometheus at {self.shown} did not answer within {self._timeout:g}s"
            ) from None
        except httpx.HTTPError as exc:
            raise PrometheusError(
                f"Prometheus at {self.shown} is unreachable ({type(exc).__name__})"
            ) from None
        try:
            body = resp.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PrometheusError(f"Prometheus at {self.shown} answered HTTP {resp.status_code}, not JSON")
        if body.get("status") != "success":
            error = " ".join(str(body.get("error") or "").split())[:200]
            raise PrometheusError(
                f"query failed: HTTP {resp.status_code} {body.get('errorType') or 'error'}: {error}"
            )
        data = body.get("data") or {}
        if data.get("resultType") != "matrix":
            raise PrometheusError(f"query returned a {data.get('resultType')}, not a range of samples")
        return [_series(item) for item in data.get("result") or [] if isinstance(item, dict)]


def _series(item: dict[str, object]) -> Series:
    metric = item.get("metric")
    labels = {str(k): str(v) for k, v in metric.items()} if isinstance(metric, dict) else {}
    points = []
    for pair in item.get("values") or []:  # type: ignore[attr-defined]
        try:
            t, v = float(pair[0]), float(pair[1])
        except (TypeError, ValueError, IndexError):
            continue
        if math.isfinite(v):
            points.append((datetime.fromtimestamp(t, UTC), v))
    return Series(labels, points)
