"""MLflow alias rollback against a real MLflow tracking server (``mlflow server``, sqlite backend).

Versions are created through MLflow's REST API (``registered-models/create`` + ``model-versions/create``);
each test registers its own model on the session's server. Results are checked by reading the alias back
through the REST API and, independently, with ``mlflow.MlflowClient``.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from pydantic import SecretStr, ValidationError

from bot.remediation.base import ActionContext, Executor
from bot.remediation.executors.mlflow import SET_ALIAS_PATH, MlflowRollbackExecutor, MlflowRollbackParams
from incident_bot.demo.mlflow_local import LocalMlflowServer
from tests import mlflow_fixtures as fx
from tests.mlflow_fixtures import MlflowRest, closed_port_url

# The session's real MLflow server and helpers come from tests/mlflow_fixtures.py, registered once in conftest.py
# (one server for the whole session, whichever modules use it).

TOKEN = "mlflow-secret-token-do-not-log"  # noqa: S105


def ctx(model: str | None, *, key: str | None = None, request_id: int = 7) -> ActionContext:
    return ActionContext(
        request_id=request_id,
        incident_id=3,
        incident_title="fraud-model drift",
        service="scoring",
        model=model,
        requested_by="U0REQ",
        approved_by=("U0OWNER",),
        idempotency_key=key or uuid.uuid4().hex,
    )


def created(mv: dict) -> str:
    return datetime.fromtimestamp(int(mv["creation_timestamp"]) / 1000, tz=UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC"
    )


@pytest.fixture
def http() -> httpx.Client:
    with httpx.Client() as client:
        yield client


@pytest.fixture
def executor(http: httpx.Client, mlflow_server: LocalMlflowServer) -> MlflowRollbackExecutor:
    return MlflowRollbackExecutor(
        client=http, tracking_uri=mlflow_server.url, token=SecretStr(TOKEN), timeout=10
    )


def test_satisfies_the_executor_contract() -> None:
    assert isinstance(MlflowRollbackExecutor(client=httpx.Client(), tracking_uri="http://x"), Executor)
    assert MlflowRollbackExecutor.type == "mlflow_rollback" and MlflowRollbackExecutor.needs_model
    with pytest.raises(ValidationError, match="alias"):
        MlflowRollbackParams.model_validate({"alias": "champion; drop"})
    with pytest.raises(ValidationError, match="target_version"):
        MlflowRollbackParams.model_validate({"target_version": 0})
    with pytest.raises(ValidationError, match="extra"):
        MlflowRollbackParams.model_validate({"alais": "champion"})


@pytest.mark.mlflow
def test_seeded_registry_is_the_demo_starting_point(mlflow_rest: MlflowRest) -> None:
    versions = mlflow_rest.call(
        "GET", "/model-versions/search", params={"filter": f"name='{fx.SESSION_MODEL}'"}
    )
    assert sorted(int(v["version"]) for v in versions["model_versions"]) == [1, 2, 3]
    assert len({v["run_id"] for v in versions["model_versions"]}) == 3
    assert mlflow_rest.alias_version(fx.SESSION_MODEL) == "3"


@pytest.mark.mlflow
def test_preview_reads_current_and_previous_version(
    executor: MlflowRollbackExecutor, mlflow_rest: MlflowRest, mlflow_server: LocalMlflowServer
) -> None:
    model, versions = mlflow_rest.seed()
    v2, v3 = versions[1], versions[2]
    preview = executor.preview(MlflowRollbackParams(), ctx(model))
    assert preview.error is None
    assert preview.target == f"{model}@champion"
    assert (preview.method, preview.path) == ("POST", SET_ALIAS_PATH)
    details = dict(preview.details)
    assert details["current"] == f"v3 (created {created(v3)}, run {v3['run_id']})"
    assert details["target"] == f"v2 (created {created(v2)}, run {v2['run_id']})"
    assert details["change"] == f"{model}@champion: v3 → v2"  # the one line a phone shows first
    assert details["server"] == mlflow_server.url
    # The preview pins what the approvers see: running these params does exactly this, or refuses.
    assert preview.params == {
        "alias": "champion",
        "model": model,
        "target_version": 2,
        "expected_current_version": 3,
    }
    assert preview.pin == preview.params  # what the flow stores on the request when the prompt is posted
    assert mlflow_rest.alias_version(model) == "3"  # a dry run changes nothing
    # Re-rendered after the alias moved: the pinned plan is shown as stale, and nothing is pinned anew.
    mlflow_rest.set_alias(model, 1)
    stale = executor.preview(MlflowRollbackParams.model_validate(preview.pin), ctx(model))
    assert stale.error and "moved to v1 since this request showed v3" in stale.error and stale.pin is None


@pytest.mark.mlflow
def test_run_moves_alias_to_previous_version(
    executor: MlflowRollbackExecutor, mlflow_rest: MlflowRest, mlflow_server: LocalMlflowServer
) -> None:
    model, _ = mlflow_rest.seed()
    c = ctx(model)
    pinned = MlflowRollbackParams.model_validate(executor.preview(MlflowRollbackParams(), c).params)
    result = executor.run(pinned, c)
    assert result.ok, result.error
    assert result.detail["from_version"] == "3" and result.detail["to_version"] == "2"
    assert result.detail["changed"] is True and "warning" not in result.detail
    assert mlflow_rest.alias_version(model) == "2"
    from mlflow import MlflowClient

    independent = MlflowClient(tracking_uri=mlflow_server.url, registry_uri=mlflow_server.url)
    assert independent.get_model_version_by_alias(model, "champion").version == "2"
    tags = independent.get_registered_model(model).tags
    assert c.idempotency_key in tags["incident_bot.last_rollback.champion"]


@pytest.mark.mlflow
def test_second_run_never_walks_the_alias_further_back(
    executor: MlflowRollbackExecutor, mlflow_rest: MlflowRest
) -> None:
    model, _ = mlflow_rest.seed()
    c = ctx(model)
    assert executor.run(MlflowRollbackParams(), c).ok
    # The same request again (a duplicate execution): refused, alias stays on v2.
    again = executor.run(MlflowRollbackParams(), c)
    assert not again.ok and "already moved" in (again.error or "") and "from v3 to v2" in (again.error or "")
    assert again.detail == {
        "model": model,
        "alias": "champion",
        "current_version": "2",
    }  # no from/to: no change
    assert mlflow_rest.alias_version(model) == "2"
    # Another request carrying the pinned v3 -> v2 plan: the alias is already there.
    pinned = MlflowRollbackParams(model=model, target_version=2, expected_current_version=3)
    same_target = executor.run(pinned, ctx(model))
    assert not same_target.ok and "already on v2; nothing changed" in (same_target.error or "")
    assert mlflow_rest.alias_version(model) == "2"
    # A new request is a new decision: its own preview shows the next step back (v2 -> v1) before approval.
    nxt = executor.preview(MlflowRollbackParams(), ctx(model))
    assert nxt.error is None and dict(nxt.details)["change"] == f"{model}@champion: v2 → v1"


@pytest.mark.mlflow
def test_run_refuses_when_alias_moved_since_preview(
    executor: MlflowRollbackExecutor, mlflow_rest: MlflowRest
) -> None:
    model, _ = mlflow_rest.seed(versions=4)
    pinned = MlflowRollbackParams.model_validate(executor.preview(MlflowRollbackParams(), ctx(model)).params)
    assert (pinned.expected_current_version, pinned.target_version) == (4, 3)
    mlflow_rest.set_alias(model, 1)  # someone else moved it meanwhile
    result = executor.run(pinned, ctx(model))
    assert not result.ok and "moved to v1 since the preview showed v4" in (result.error or "")
    assert mlflow_rest.alias_version(model) == "1"


@pytest.mark.mlflow
def test_last_good_skips_deleted_and_archived_versions(
    executor: MlflowRollbackExecutor, mlflow_rest: MlflowRest
) -> None:
    model, _ = mlflow_rest.seed(versions=4)
    mlflow_rest.call("DELETE", "/model-versions/delete", json={"name": model, "version": "3"})
    mlflow_rest.call(
        "POST",
        "/model-versions/transition-stage",
        json={"name": model, "version": "2", "stage": "Archived", "archive_existing_versions": False},
    )
    preview = executor.preview(MlflowRollbackParams(), ctx(model))
    assert preview.error is None and preview.params["target_version"] == 1
    # A named version overrides "last good", even an archived one.
    named = executor.preview(MlflowRollbackParams(target_version=2), ctx(model))
    assert named.error is None and dict(named.details)["target"].startswith("v2 (")


@pytest.mark.mlflow
def test_named_model_overrides_incident_model(
    executor: MlflowRollbackExecutor, mlflow_rest: MlflowRest
) -> None:
    model, _ = mlflow_rest.seed()
    preview = executor.preview(MlflowRollbackParams(model=model), ctx("some-other-model"))
    assert preview.error is None and preview.target == f"{model}@champion"


@pytest.mark.mlflow
def test_errors_are_clear(
    executor: MlflowRollbackExecutor, mlflow_rest: MlflowRest, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    unknown = executor.preview(MlflowRollbackParams(), ctx("no-such-model"))
    assert unknown.error and "HTTP 404" in unknown.error and "no-such-model not found" in unknown.error
    assert "registered-models/alias" in unknown.error

    model, _ = mlflow_rest.seed(alias=None)
    missing = executor.preview(MlflowRollbackParams(), ctx(model))
    assert missing.error and "HTTP 400" in missing.error and "alias champion not found" in missing.error

    single, _ = mlflow_rest.seed(versions=1)
    only = executor.preview(MlflowRollbackParams(), ctx(single))
    assert (
        only.error == f"{single}@champion is on v1 and there is no earlier version to roll back to "
        "(READY, not Archived)"
    )
    run_only = executor.run(MlflowRollbackParams(), ctx(single))
    assert not run_only.ok and run_only.error == only.error
    assert mlflow_rest.alias_version(single) == "1"

    model3, _ = mlflow_rest.seed()
    no_version = executor.preview(MlflowRollbackParams(target_version=9), ctx(model3))
    assert no_version.error == f"{model3} has no version 9 (it may have been deleted)"

    no_model = executor.preview(MlflowRollbackParams(), ctx(None))
    assert no_model.error and no_model.error.startswith("no model")

    failed = executor.run(MlflowRollbackParams(), ctx("no-such-model"))
    assert not failed.ok and failed.status_code == 404
    everything = " ".join([caplog.text, str(unknown), str(missing), str(only), str(failed)])
    assert TOKEN not in everything


def test_unreachable_server(http: httpx.Client) -> None:
    url = closed_port_url()
    ex = MlflowRollbackExecutor(client=http, tracking_uri=url, token=SecretStr(TOKEN), timeout=2)
    preview = ex.preview(MlflowRollbackParams(), ctx("fraud-model"))
    assert preview.error == f"MLflow at {url} is unreachable (ConnectError)"
    result = ex.run(MlflowRollbackParams(), ctx("fraud-model"))
    assert not result.ok and result.status_code is None and result.error == preview.error


def test_timeout_against_a_socket_that_never_answers(
    http: httpx.Client, silent_socket: str, caplog: pytest.LogCaptureFixture
) -> None:
    ex = MlflowRollbackExecutor(client=http, tracking_uri=silent_socket, token=SecretStr(TOKEN), timeout=0.3)
    result = ex.run(MlflowRollbackParams(), ctx("fraud-model"))
    assert not result.ok
    assert result.error == f"GET {silent_socket}/api/2.0/mlflow/registered-models/alias timed out after 0.3s"
    assert TOKEN not in (result.error + caplog.text)


def test_token_is_sent_as_bearer_and_credentials_in_the_uri_are_never_shown() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(403, json={"error_code": "PERMISSION_DENIED", "message": "no access"})

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        ex = MlflowRollbackExecutor(
            client=client, tracking_uri="https://user:pw@mlflow.example.com/", token=SecretStr(TOKEN)
        )
        preview = ex.preview(MlflowRollbackParams(), ctx("fraud-model"))
    assert seen[0].headers["Authorization"] == f"Bearer {TOKEN}"
    assert preview.error == (
        "GET https://mlflow.example.com/api/2.0/mlflow/registered-models/alias: "
        "HTTP 403 PERMISSION_DENIED: no access"
    )
    assert "pw" not in preview.error and TOKEN not in preview.error


def test_user_info_in_the_uri_is_basic_auth_when_no_token_is_set() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(401, text="unauthorized")

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        ex = MlflowRollbackExecutor(client=client, tracking_uri="https://user:pw@mlflow.example.com")
        preview = ex.preview(MlflowRollbackParams(), ctx("fraud-model"))
    assert seen[0].headers["Authorization"] == "Basic dXNlcjpwdw=="  # base64("user:pw")
    assert seen[0].url.host == "mlflow.example.com" and seen[0].url.userinfo == b""
    assert preview.error and preview.error.endswith("HTTP 401 unauthorized") and "pw" not in preview.error


def test_an_answer_of_the_wrong_shape_is_an_error_not_a_crash() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"model_version": {"name": "fraud-model"}})  # no "version"

    with httpx.Client(transport=httpx.MockTransport(handler)) as client:
        ex = MlflowRollbackExecutor(client=client, tracking_uri="http://mlflow.local:5000")
        preview = ex.preview(MlflowRollbackParams(), ctx("fraud-model"))
        result = ex.run(MlflowRollbackParams(), ctx("fraud-model"))
    assert preview.error == "unexpected answer from MLflow at http://mlflow.local:5000: KeyError 'version'"
    assert not result.ok and result.error == preview.error


def test_without_mlflow_the_reason_is_one_clear_sentence(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from incident_bot.demo import mlflow_local

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlflow" else real(name, *a)
    )
    reason = mlflow_local.mlflow_unavailable_reason()
    assert reason and reason.startswith("mlflow is not installed") and "pip install mlflow" in reason
    with pytest.raises(RuntimeError, match="mlflow is not installed"):
        mlflow_local.LocalMlflowServer().start()
