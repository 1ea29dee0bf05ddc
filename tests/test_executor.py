import json

import httpx
from pydantic import SecretStr

from bot.executors import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookExecutor, verify


def _executor(handler, secret: str | None = "s3cret", base: str | None = "http://runner.local"):  # type: ignore[no-untyped-def]
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return WebhookExecutor(client=client, base_url=base, secret=SecretStr(secret) if secret else None, timeout=2.0)


def test_posts_signed_json_to_relative_url_joined_with_base() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"queued": True})

    result = _executor(handler).run(action={"url": "/actions/restart"}, payload={"a": 1}, idempotency_key="k1")
    assert result.ok and result.status_code == 202 and result.error is None
    req = seen[0]
    assert str(req.url) == "http://runner.local/actions/restart"
    assert json.loads(req.content) == {"a": 1} and req.headers["Idempotency-Key"] == "k1"
    assert verify("s3cret", req.headers[TIMESTAMP_HEADER], req.content, req.headers[SIGNATURE_HEADER])
    assert not verify("other", req.headers[TIMESTAMP_HEADER], req.content, req.headers[SIGNATURE_HEADER])


def test_http_error_status_is_a_failure() -> None:
    result = _executor(lambda r: httpx.Response(503, text="busy")).run(
        action={"url": "/x"}, payload={}, idempotency_key="k")
    assert not result.ok and result.status_code == 503 and result.error == "HTTP 503"


def test_timeout_is_a_failure_with_reason() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    result = _executor(handler).run(action={"url": "/x"}, payload={}, idempotency_key="k")
    assert not result.ok and result.status_code is None and "timed out" in (result.error or "")


def test_relative_url_without_base_is_refused_without_sending() -> None:
    calls: list[httpx.Request] = []
    result = _executor(lambda r: calls.append(r) or httpx.Response(200), base=None).run(  # type: ignore[func-returns-value]
        action={"url": "/x"}, payload={}, idempotency_key="k")
    assert not result.ok and "ACTION_BASE_URL" in (result.error or "") and calls == []


def test_non_http_url_is_refused() -> None:
    result = _executor(lambda r: httpx.Response(200)).run(
        action={"url": "file:///etc/passwd"}, payload={}, idempotency_key="k")
    assert not result.ok and "http" in (result.error or "")
