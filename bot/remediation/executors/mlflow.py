"""MLflow alias rollback: move a registered model's alias (``champion``) back to the last good version.

Everything goes through MLflow's REST API (``/api/2.0/mlflow/``) with httpx, so the bot needs no mlflow
package and works against any MLflow-compatible registry:

- ``GET registered-models/alias`` reads the version the alias points at now;
- ``GET model-versions/search`` lists the model's versions (deleted versions are not returned);
- ``GET registered-models/get`` reads the model's tags (the last rollback this bot made, see below);
- ``POST registered-models/alias`` moves the alias; ``POST registered-models/set-tag`` records the rollback.

"Last good" (the default target) is the highest version number *below* the current alias version that is
``READY`` (not still registering, not failed) and not in stage ``Archived`` (an owner retired it in the stage
workflow); deleted versions no longer exist. A runbook or request can name ``target_version`` instead.

:meth:`MlflowRollbackExecutor.preview` is a dry run. Its ``params`` are the *resolved, pinned* parameters
(model, alias, ``target_version``, ``expected_current_version``): running with them does exactly what the
approvers saw, and refuses if the alias has moved since. ``run`` also refuses when the alias is already on
the target, and when this request (its idempotency key) already rolled this alias back, so a duplicate run
never walks the alias further back. Nothing is retried; errors carry the HTTP status and MLflow's message;
the bearer token is sent only as a header and never appears in errors or logs.
"""

from __future__ import annotations

import builtins
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, ConfigDict, Field, SecretStr

from bot.kernel.config import Settings
from bot.kernel.errors import OperationalError
from bot.remediation.base import ActionContext, ExecutionResult, Executor, Preview

log = logging.getLogger(__name__)

API = "/api/2.0/mlflow"
SET_ALIAS_PATH = f"{API}/registered-models/alias"
ROLLBACK_TAG = "incident_bot.last_rollback.{alias}"
_ALIAS_PATTERN = r"^[A-Za-z0-9_\-]{1,255}$"


class MlflowRollbackParams(BaseModel):
    model_config = ConfigDict(extra="forbid")

    alias: str = Field(default="champion", pattern=_ALIAS_PATTERN)
    model: str | None = Field(
        default=None,
        min_length=1,
        max_length=256,
        description="registered model name; default: the incident's model",
    )
    target_version: int | None = Field(default=None, ge=1, description="default: the last good version below")
    expected_current_version: int | None = Field(
        default=None, ge=1, description="set by the preview: refuse to run if the alias has moved since"
    )


class MlflowError(OperationalError):
    """A failed MLflow call, as one clear sentence (HTTP status and MLflow's own message, never the token)."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        super().__init__(message)
        self.status_code = status_code


class Refused(MlflowError):
    """The rollback was declined before anything changed (the alias moved since the preview, is already on
    the target, or this request already moved it): the request ends "refused", not "failed"."""


@dataclass(frozen=True)
class Version:
    number: int
    created_ms: int
    run_id: str
    stage: str
    status: str

    @classmethod
    def from_json(cls, mv: dict[str, Any]) -> Version:
        return cls(
            int(mv["version"]),
            int(mv.get("creation_timestamp") or 0),
            str(mv.get("run_id") or ""),
            str(mv.get("current_stage") or "None"),
            str(mv.get("status") or "READY"),
        )

    def describe(self) -> str:
        created = datetime.fromtimestamp(self.created_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"v{self.number} (created {created}, run {self.run_id or 'none'})"

    @property
    def good(self) -> bool:
        return self.status == "READY" and self.stage != "Archived"


def safe_base(url: str) -> str:
    """scheme://host[:port][/path] without user-info, so a credential in the URI never reaches a message."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path.rstrip('/')}"


class MlflowRollbackExecutor:
    type: ClassVar[str] = "mlflow_rollback"
    Params: ClassVar[builtins.type[BaseModel]] = (
        MlflowRollbackParams  # builtins: `type` in this class is the action type
    )
    needs_model: ClassVar[bool] = True
    label: ClassVar[str] = "MLflow alias rollback"

    def __init__(
        self,
        *,
        client: httpx.Client,
        tracking_uri: str,
        token: SecretStr | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._client = client
        # User-info in the URI (https://user:pw@host) becomes HTTP basic auth, unless a bearer token is set.
        self._base = self._shown = safe_base(tracking_uri)
        parts = urlsplit(tracking_uri)
        self._basic = (
            (parts.username or "", parts.password or "") if parts.username and token is None else None
        )
        self._token = token
        self._timeout = timeout

    # ---- HTTP ---------------------------------------------------------------------------------------
    def _call(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self._request(method, path, params=params, body=body)[1]

    def _request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        headers = {"Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = "Bearer " + self._token.get_secret_value()
        where = f"{method} {self._shown}{API}{path}"
        try:
            resp = self._client.request(
                method,
                f"{self._base}{API}{path}",
                params=params,
                json=body,
                headers=headers,
                timeout=self._timeout,
                auth=self._basic or httpx.USE_CLIENT_DEFAULT,
            )
        except httpx.TimeoutException:
            raise MlflowError(f"{where} timed out after {self._timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise MlflowError(f"MLflow at {self._shown} is unreachable ({type(exc).__name__})") from None
        if resp.is_success:
            try:
                return resp.status_code, (dict(resp.json()) if resp.content else {})
            except (TypeError, ValueError):
                raise MlflowError(
                    f"{where}: HTTP {resp.status_code} but the body is not a JSON object", resp.status_code
                ) from None
        raise MlflowError(f"{where}: HTTP {resp.status_code} {_mlflow_message(resp)}", resp.status_code)

    def _alias_version(self, model: str, alias: str) -> Version:
        mv = self._call("GET", "/registered-models/alias", params={"name": model, "alias": alias})
        return Version.from_json(mv["model_version"])

    def _versions(self, model: str) -> list[Version]:
        out: list[Version] = []
        token: str | None = None
        while True:
            query: dict[str, Any] = {"filter": f"name='{_quote(model)}'", "max_results": 1000}
            if token:
                query["page_token"] = token
            page = self._call("GET", "/model-versions/search", params=query)
            out += [Version.from_json(mv) for mv in page.get("model_versions", []) if mv.get("name") == model]
            token = page.get("next_page_token")
            if not token:
                return sorted(out, key=lambda v: v.number)

    def _last_rollback(self, model: str, alias: str) -> dict[str, Any] | None:
        rm = self._call("GET", "/registered-models/get", params={"name": model}).get("registered_model") or {}
        key = ROLLBACK_TAG.format(alias=alias)
        for tag in rm.get("tags", []):
            if tag.get("key") == key:
                try:
                    return dict(json.loads(tag.get("value") or "{}"))
                except (TypeError, ValueError):
                    return None
        return None

    # ---- planning -----------------------------------------------------------------------------------
    def _plan(self, p: MlflowRollbackParams, ctx: ActionContext) -> tuple[str, Version, Version]:
        try:
            return self._plan_unchecked(p, ctx)
        except (KeyError, TypeError, ValueError) as exc:  # JSON, but not the shape MLflow documents
            raise MlflowError(
                f"unexpected answer from MLflow at {self._shown}: {type(exc).__name__} {exc}"
            ) from None

    def _plan_unchecked(self, p: MlflowRollbackParams, ctx: ActionContext) -> tuple[str, Version, Version]:
        model = p.model or ctx.model
        if not model:
            raise MlflowError("no model: the incident names none and the action does not set `model`")
        current = self._alias_version(model, p.alias)
        versions = {v.number: v for v in self._versions(model)}
        if p.target_version is not None:
            target = versions.get(p.target_version)
            if target is None:
                raise MlflowError(f"{model} has no version {p.target_version} (it may have been deleted)")
        else:
            earlier = [v for v in versions.values() if v.number < current.number and v.good]
            if not earlier:
                raise MlflowError(
                    f"{model}@{p.alias} is on v{current.number} and there is no earlier version "
                    "to roll back to (READY, not Archived)"
                )
            target = max(earlier, key=lambda v: v.number)
        return model, current, target

    def preview(self, params: BaseModel, ctx: ActionContext) -> Preview:
        p = MlflowRollbackParams.model_validate(params.model_dump())
        name = f"{p.model or ctx.model or '?'}@{p.alias}"
        try:
            model, current, target = self._plan(p, ctx)
        except MlflowError as exc:
            return Preview(
                executor=self.label,
                target=name,
                method="POST",
                path=SET_ALIAS_PATH,
                params=p.model_dump(),
                error=str(exc),
            )
        pinned = p.model_copy(
            update={
                "model": model,
                "target_version": target.number,
                "expected_current_version": current.number,
            }
        )
        # the short change line first: on a phone it is what the approver reads before scrolling
        details = [
            ("change", f"{model}@{p.alias}: v{current.number} → v{target.number}"),
            ("current", current.describe()),
            ("target", target.describe()),
            ("model", model),
            ("alias", p.alias),
            ("server", self._shown),
        ]
        if current.number == target.number:
            return Preview(
                executor=self.label,
                target=f"{model}@{p.alias}",
                method="POST",
                path=SET_ALIAS_PATH,
                params=pinned.model_dump(),
                details=details,
                error=f"{model}@{p.alias} is already on v{target.number}; nothing to roll back",
            )
        if p.expected_current_version is not None and current.number != p.expected_current_version:
            return Preview(
                executor=self.label,
                target=f"{model}@{p.alias}",
                method="POST",
                path=SET_ALIAS_PATH,
                params=p.model_dump(),
                details=details,
                error=f"{model}@{p.alias} moved to v{current.number} since this request showed "
                f"v{p.expected_current_version}; request the rollback again",
            )
        return Preview(
            executor=self.label,
            target=f"{model}@{p.alias}",
            method="POST",
            path=SET_ALIAS_PATH,
            params=pinned.model_dump(),
            details=details,
            pin=pinned.model_dump(),
        )

    # ---- running ------------------------------------------------------------------------------------
    def run(self, params: BaseModel, ctx: ActionContext) -> ExecutionResult:
        started = time.perf_counter()
        p = MlflowRollbackParams.model_validate(params.model_dump())
        detail: dict[str, Any] = {"model": p.model or ctx.model, "alias": p.alias}
        try:
            model, current, target = self._plan(p, ctx)
            detail.update(model=model, current_version=str(current.number))
            done = self._last_rollback(model, p.alias)
            # the key is the request's UUID: another deployment's request #N never matches it
            if done and done.get("idempotency_key") == ctx.idempotency_key:
                raise Refused(
                    f"this request already moved {model}@{p.alias} from v{done.get('from')} to "
                    f"v{done.get('to')}; not rolling back again"
                )
            if current.number == target.number:
                raise Refused(f"{model}@{p.alias} is already on v{target.number}; nothing changed")
            if p.expected_current_version is not None and current.number != p.expected_current_version:
                raise Refused(
                    f"{model}@{p.alias} moved to v{current.number} since the preview showed "
                    f"v{p.expected_current_version}; not changing it"
                )
            status, _ = self._request(
                "POST",
                "/registered-models/alias",
                body={"name": model, "alias": p.alias, "version": str(target.number)},
            )
        except MlflowError as exc:
            refused = isinstance(exc, Refused)
            log.warning(
                "mlflow rollback (request %s) %s: %s", ctx.request_id, "refused" if refused else "failed", exc
            )
            return ExecutionResult(
                False, exc.status_code, _ms(started), error=str(exc), detail=detail, refused=refused
            )
        detail.update(from_version=str(current.number), to_version=str(target.number), changed=True)
        record = {
            "idempotency_key": ctx.idempotency_key,
            "request_id": ctx.request_id,
            "from": current.number,
            "to": target.number,
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        try:  # a record for duplicate detection; the rollback itself has happened either way
            self._call(
                "POST",
                "/registered-models/set-tag",
                body={"name": model, "key": ROLLBACK_TAG.format(alias=p.alias), "value": json.dumps(record)},
            )
        except MlflowError as exc:
            detail["warning"] = f"alias moved, but recording the rollback tag failed: {exc}"
        log.info(
            "mlflow rollback (request %s): %s@%s v%s -> v%s",
            ctx.request_id,
            model,
            p.alias,
            current.number,
            target.number,
        )
        return ExecutionResult(
            True,
            status,
            _ms(started),
            detail=detail,
            response_excerpt=(f"{model}@{p.alias}: {current.describe()} → {target.describe()}"),
        )


def _mlflow_message(resp: httpx.Response) -> str:
    try:
        err = resp.json()
    except ValueError:
        return resp.text[:200].strip() or resp.reason_phrase
    if isinstance(err, dict) and err.get("message"):
        code = f"{err['error_code']}: " if err.get("error_code") else ""
        return f"{code}{err['message']}"[:300]
    return resp.text[:200]


def _quote(name: str) -> str:
    return name.replace("\\", "\\\\").replace("'", "\\'")


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000


class MlflowSettings(BaseModel):
    """The settings this executor reads: Settings fields by name (declared in bot/kernel/config.py)."""

    model_config = ConfigDict(from_attributes=True, frozen=True)
    mlflow_tracking_uri: str | None
    mlflow_tracking_token: SecretStr | None
    executor_timeout_seconds: float


def from_settings(settings: Settings, http_client: httpx.Client) -> list[Executor]:
    """Registered only when MLFLOW_TRACKING_URI is set."""
    s = MlflowSettings.model_validate(settings)
    if not s.mlflow_tracking_uri:
        return []
    return [
        MlflowRollbackExecutor(
            client=http_client,
            tracking_uri=s.mlflow_tracking_uri,
            token=s.mlflow_tracking_token,
            timeout=s.executor_timeout_seconds,
        )
    ]
