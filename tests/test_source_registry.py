"""A new alert source is its declaration plus one registry line: the HTTP edge serves it from that alone
(parser, its own signature auth from a setting, dead letters), with no source name in handlers/http."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr
from sqlalchemy import select

import handlers.parsers
from bot.intake.alerts import Alert, AlertStatus
from bot.kernel.config import Settings
from bot.kernel.models import AlertRecord, DeadLetter
from handlers.http.app import build_http_app
from handlers.parsers import configure_sources, known_sources
from handlers.parsers._common import require_object
from handlers.parsers.errors import PayloadError
from handlers.parsers.source import SignatureAuth, Source
from tests.apphelpers import ALERT_TOKEN, App


class AcmeSettings(Settings):
    """A deployment's settings with the new source's secret (config.py is where a real one is declared)."""

    acme_webhook_secret: SecretStr | None = None


def acme_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def acme_signed(secret: str, body: bytes, header: str | None) -> bool:
    return header is not None and hmac.compare_digest(header.encode(), acme_signature(secret, body).encode())


def parse_acme(body: Any) -> list[Alert]:
    obj = require_object(body)
    if not isinstance(obj.get("title"), str):
        raise PayloadError("title: field required")
    return [
        Alert(
            source="acme",
            name=obj["title"],
            status=AlertStatus.FIRING,
            service=obj.get("service"),
            source_fingerprint=obj.get("id"),
        )
    ]


ACME = Source(
    "acme",
    parse_acme,
    signature=SignatureAuth(setting="acme_webhook_secret", header="X-Acme-Signature", verify=acme_signed),
)


def test_a_source_declared_in_a_test_is_served_through_the_registry_alone(
    app: App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        handlers.parsers, "SOURCES", (*handlers.parsers.SOURCES, ACME)
    )  # its one registry line
    settings = AcmeSettings(
        _env_file=None, alert_webhook_token=ALERT_TOKEN, acme_webhook_secret=SecretStr("acme-secret")
    )
    body = b'{"title": "Queue backlog", "service": "billing", "id": "acme-1"}'
    with TestClient(build_http_app(service=app.rt.service, settings=settings, bolt=None)) as client:
        signed = client.post(
            "/alerts/acme", content=body, headers={"X-Acme-Signature": acme_signature("acme-secret", body)}
        )
        assert signed.status_code == 202, signed.text
        assert signed.json()["alerts"] == 1 and len(signed.json()["incidents_created"]) == 1
        wrong = client.post(
            "/alerts/acme", content=body, headers={"X-Acme-Signature": acme_signature("x", body)}
        )
        assert wrong.status_code == 401
        assert wrong.json() == {"error": "missing or wrong bearer token or X-Acme-Signature"}
        bearer = client.post(
            "/alerts/acme", content=b'{"id": "acme-2"}', headers={"Authorization": f"Bearer {ALERT_TOKEN}"}
        )
        assert (
            bearer.status_code == 400
            and bearer.json()["error"] == "invalid acme payload: title: field required"
        )
        # the signature is the new source's only: others still need the bearer token
        other = client.post(
            "/alerts/generic",
            content=b'{"name": "x"}',
            headers={"X-Acme-Signature": acme_signature("acme-secret", b'{"name": "x"}')},
        )
        assert other.status_code == 401
        unknown = client.post(
            "/alerts/acmee", content=b"{}", headers={"Authorization": f"Bearer {ALERT_TOKEN}"}
        )
        assert unknown.status_code == 404 and "known: acme, alertmanager" in unknown.json()["error"]
    with app.rt.sessions() as s:
        assert [(r.source, r.name) for r in s.scalars(select(AlertRecord))] == [("acme", "Queue backlog")]
        dead = s.get(DeadLetter, bearer.json()["dead_letter_id"])
        assert dead is not None and dead.source == "alerts/acme" and dead.body == '{"id": "acme-2"}'
    assert "acme" in known_sources()


def test_without_its_secret_a_signed_source_takes_the_bearer_token_only() -> None:
    configured = ACME.configure(AcmeSettings(_env_file=None))
    assert configured.signature is None and configured.parser({}) is parse_acme


def test_a_signature_setting_that_does_not_exist_stops_the_edge_at_start() -> None:
    with pytest.raises(ValueError, match="alert source 'acme': no setting 'acme_webhook_secret'"):
        ACME.configure(Settings(_env_file=None))


def test_two_sources_with_one_name_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        handlers.parsers, "SOURCES", (*handlers.parsers.SOURCES, Source("generic", parse_acme))
    )
    with pytest.raises(ValueError, match=r"two alert sources share a name: \['generic'\]"):
        configure_sources(Settings(_env_file=None))


def test_no_source_is_named_in_the_http_edge() -> None:
    from pathlib import Path

    edge = Path(__file__).resolve().parents[1] / "handlers" / "http"
    text = "\n".join((edge / name).read_text() for name in ("app.py", "edge.py", "changes.py")).lower()
    for source in known_sources():
        assert f'"{source}"' not in text and f"/alerts/{source}" not in text, source
