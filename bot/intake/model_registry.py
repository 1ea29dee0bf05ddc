"""When was a model version registered? Asked of MLflow's REST API (``model-versions/get``) for a promotion
whose registration was never sent to ``/changes`` (MLflow's alias webhook does not carry it).

Never raises: a registry that is down, slow or does not know the version only leaves the lead time unknown
(the promotion is still stored), and the reason is logged without the URI's credentials.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import SecretStr

log = logging.getLogger(__name__)
API = "/api/2.0/mlflow"


class Registrations(Protocol):
    def __call__(self, model: str, version: str) -> datetime | None: ...


class MlflowRegistrations:
    def __init__(
        self,
        *,
        client: httpx.Client,
        tracking_uri: str,
        token: SecretStr | None = None,
        timeout: float = 5.0,
    ) -> None:
        parts = urlsplit(tracking_uri)
        port = f":{parts.port}" if parts.port else ""
        # user-info never reaches a log line; it becomes basic auth unless a bearer token is set
        self._base = f"{parts.scheme}://{parts.hostname or ''}{port}{parts.path.rstrip('/')}"
        self._basic = (
            (parts.username or "", parts.password or "") if parts.username and token is None else None
        )
        self._client, self._token, self._timeout = client, token, timeout

    def __call__(self, model: str, version: str) -> datetime | None:
        headers = {"Accept": "application/json"}
        if self._token is not None:
            headers["Authorization"] = "Bearer " + self._token.get_secret_value()
        try:
            resp = self._client.get(
                f"{self._base}{API}/model-versions/get",
                params={"name": model, "version": version},
                headers=headers,
                timeout=self._timeout,
                auth=self._basic or httpx.USE_CLIENT_DEFAULT,
            )
            resp.raise_for_status()
            millis = resp.json()["model_version"]["creation_timestamp"]
            return datetime.fromtimestamp(int(millis) / 1000, UTC)
        except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
            log.warning(
                "MLflow at %s: registration time of %s v%s unknown (%s)",
                self._base,
                model,
                version,
                type(exc).__name__,
            )
            return None
