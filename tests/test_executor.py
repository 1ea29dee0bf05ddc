import json

import httpx
from pydantic import SecretStr

from bot.remediation.base import ActionContext
from bot.remediation.executors.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookExecutor,
    WebhookParams,
    verify,
)

CTX = ActionContext(
    request_id=5,
    incident_id=7,
    incident_title="Checkout 5xx",
    service="checkout",
    model=None,
    requested_by="U0REQ",
    approved_by=("U0APP",),
    idempotency_key="k1",
    action_id="restart",
)


def _run(executor: WebhookExecutor, url: str, **params: object):  # type: ignore[no-untyped-def]
    return executor.run(WebhookParams(url=url, **params), CTX)


def _executor(handler, secret: str | None = "s3cret", base: str | None = "http://runner.local"):  # type: ignore[no-untyped-def]
    client = httpx.Client(transport=httpx.MockTransport(handler))
    return WebhookExecutor(
        client=client, base_url=base, secret=SecretStr(secret) if secret else None, timeout=2.0
    )


def test_posts_signed_json_to_relative_url_joined_with_base() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(202, json={"queued": True})

    result = _run(_executor(handler), "/actions/restart", a=1)
    assert result.ok and result.status_code == 202 and result.error is None
    req = seen[0]
    assert str(req.url) == "http://runner.local/actions/restart"
    body = json.loads(req.content)
    assert body["params"] == {"a": 1} and body["request_id"] == 5 and body["approved_by"] == "U0APP"
    assert req.headers["Idempotency-Key"] == "k1"
    assert verify("s3cret", req.headers[TIMESTAMP_HEADER], req.content, req.headers[SIGNATURE_HEADER])
    assert not verify("other", req.headers[TIMESTAMP_HEADER], req.content, req.headers[SIGNATURE_HEADER])


def test_http_error_status_is_a_failure() -> None:
    result = _executor(lambda r: httpx.Response(503, text="busy")).run(
        WebhookParams.model_construct(url="/x"), CTX
    )
    assert not result.ok and result.status_code == 503 and result.error == "HTTP 503"


def test_timeout_is_a_failure_with_reason() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    result = _executor(handler).run(WebhookParams.model_construct(url="/x"), CTX)
    assert not result.ok and result.status_code is None and "timed out" in (result.error or "")


def test_relative_url_without_base_is_refused_without_sending() -> None:
    calls: list[httpx.Request] = []
    result = _executor(lambda r: calls.append(r) or httpx.Response(200), base=None).run(  # type: ignore[func-returns-value]
        WebhookParams(url="/x"), CTX
    )
    assert not result.ok and "ACTION_BASE_URL" in (result.error or "") and calls == []


def test_non_http_url_is_refused() -> None:
    result = _executor(lambda r: httpx.Response(200)).run(
        WebhookParams.model_construct(url="file:///etc/passwd"), CTX
    )
    assert not result.ok and "http" in (result.error or "")


def test_params_refuse_non_http_urls_on_import() -> None:
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="http"):
        WebhookParams(url="file:///etc/passwd")


def test_preview_states_method_path_and_masks_secrets() -> None:
    ex = _executor(lambda r: httpx.Response(200))
    p = ex.preview(
        WebhookParams(
            url="https://u:pw@ops.example.com/actions/restart?token=abc&x=1",
            deployment="pgbouncer",
            api_token="t0p",
        ),
        CTX,
    )
    assert p.method == "POST" and p.path == "/actions/restart" and p.error is None
    assert "pw" not in p.target and "ops.example.com" in p.target
    assert p.params == {"deployment": "pgbouncer", "api_token": "••••"}
    rel = ex.preview(WebhookParams(url="/actions/x"), CTX)
    assert rel.target == "http://runner.local" and rel.path == "/actions/x"
    assert _executor(lambda r: httpx.Response(200), base=None).preview(WebhookParams(url="/x"), CTX).error
