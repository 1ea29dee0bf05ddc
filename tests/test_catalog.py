"""The service catalog (bot/catalog): Backstage and plain YAML read as they are, problems named by file and
entry, reloaded when a file changes; the probable origin on the dependency graph; priority; owners."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.catalog.loader import CatalogSource, dangling, load_catalog
from bot.catalog.model import Catalog, CatalogError, Service
from bot.catalog.origin import Analysis, OriginParams, Signal
from bot.catalog.owners import service_owner_members
from bot.catalog.priority import TIMING, priority
from bot.kernel.config import SAMPLE_DATA
from incident_bot.cli.main import main as cli

SAMPLE = SAMPLE_DATA / "catalog"
T0 = datetime(2026, 12, 6, 4, 0, tzinfo=UTC)


def test_sample_catalog_reads_backstage_and_plain_forms() -> None:
    cat = load_catalog(SAMPLE, owner_groups={"group:default/payments-team": "S0PAYMENTS"})
    assert set(cat.services) == {
        "checkout",
        "payments",
        "postgres-main",
        "inventory",
        "recommendations",
        "fraud-scoring",
    }
    checkout = cat.services["checkout"]
    assert checkout.depends_on == ("payments", "inventory")  # component:default/x and component:x
    assert (checkout.tier, checkout.lifecycle, checkout.system) == (1, "production", "shop")
    assert checkout.owner_group == "S0CHECKOUT"  # the annotation
    assert cat.services["payments"].depends_on == ("postgres-main",)  # resource:default/x
    assert cat.services["payments"].owner_group == "S0PAYMENTS"  # from the mapping setting
    assert cat.services["recommendations"].lifecycle == "experimental"
    assert cat.graph.has_edge("inventory", "postgres-main") and "shop" not in cat  # the System is skipped
    assert dangling(cat) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("kind: Component\nmetadata: {}\nspec: {}\n", "metadata.name: missing"),
        (
            "kind: Component\nmetadata: {name: a}\nspec: {dependsOn: ['api:x']}\n",
            "Component a: spec.dependsOn: 'api:x' is not a component or resource reference",
        ),
        (
            "kind: Component\nmetadata: {name: a, annotations: {incident-bot/tier: high}}\nspec: {}\n",
            "Component a: metadata.annotations.incident-bot/tier: expected 1-9, got 'high'",
        ),
        (
            "kind: Component\nmetadata: {name: a, annotations: {incident-bot/slack-usergroup: '@team'}}\n",
            "is not a Slack user group id",
        ),
        ("services:\n  a: {tier: 0}\n", "services.a.tier: Input should be greater than or equal to 1"),
        ("services:\n  a: {owner: x, team: y}\n", "services.a.team: Extra inputs are not permitted"),
        ("services: [a, b]\n", "services: expected a mapping"),
        ("services:\n  a: {depends_on: ['group:x']}\n", "services.a.depends_on: not a service reference"),
        ("just: text\n", "neither a Backstage entity"),
        ("services: {a: {}\n", "invalid YAML"),
    ],
)
def test_problems_name_the_file_and_the_entry(tmp_path: Path, text: str, expected: str) -> None:
    f = tmp_path / "catalog-info.yaml"
    f.write_text(text)
    with pytest.raises(CatalogError) as err:
        load_catalog(f)
    assert str(f) in str(err.value) and expected in str(err.value)


def test_duplicate_names_across_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("services:\n  db: {tier: 1}\n")
    (tmp_path / "b.yaml").write_text("kind: Resource\nmetadata: {name: db}\nspec: {owner: x}\n")
    with pytest.raises(CatalogError, match="db: defined twice"):
        load_catalog(tmp_path)


def test_source_reloads_on_change_and_keeps_the_last_good_catalog(tmp_path: Path) -> None:
    f = tmp_path / "services.yaml"
    f.write_text("services:\n  a: {depends_on: [b]}\n  b: {}\n")
    clock = [0.0]
    src = CatalogSource(f, check_seconds=2.0, clock=lambda: clock[0])
    assert src.current().graph.has_edge("a", "b")
    f.write_text("services:\n  a: {}\n  b: {depends_on: [c]}\n  c: {}\n")
    os.utime(f, ns=(1, 10**18))  # a new mtime even on a coarse filesystem clock
    assert src.current().graph.has_edge("a", "b")  # not checked again yet
    clock[0] = 3.0
    assert src.current().graph.has_edge("b", "c") and not src.current().graph.has_edge("a", "b")
    f.write_text("services:\n  a: {tier: nope}\n")  # a broken edit: logged, the last good one stays
    os.utime(f, ns=(1, 2 * 10**18))
    clock[0] = 6.0
    assert set(src.current().services) == {"a", "b", "c"}


def test_first_load_of_a_bad_catalog_fails(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not found"):
        CatalogSource(tmp_path / "missing.yaml")


def test_cli_check_and_show(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli(["catalog", "check", str(SAMPLE)]) == 0
    assert "ok: 6 services, 5 dependencies, 2 file(s)" in capsys.readouterr().out
    assert cli(["catalog", "show", "--json", str(SAMPLE)]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["services"]["checkout"]["depends_on"] == ["payments", "inventory"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("services:\n  a: {depends_on: [ghost]}\n  b: {tier: x}\n")
    assert cli(["catalog", "check", str(bad)]) == 1
    assert f"{bad}: services.b.tier" in capsys.readouterr().err
    bad.write_text("services:\n  a: {depends_on: [ghost]}\n")
    assert cli(["catalog", "check", str(bad)]) == 0
    assert "depends on 'ghost', which no entry defines" in capsys.readouterr().out


# ---- origin ---------------------------------------------------------------------------------------------
def _graph() -> Catalog:
    return Catalog.build(
        [
            Service("checkout", depends_on=("payments", "inventory")),
            Service("payments", depends_on=("postgres-main",)),
            Service("inventory", depends_on=("postgres-main",)),
            Service("postgres-main"),
            Service("search", depends_on=("elastic",)),
            Service("elastic"),
        ]
    )


def _sig(key: int, service: str, minutes: float) -> Signal:
    return Signal(key, service, T0 + timedelta(minutes=minutes))


def test_cascade_names_the_upstream_origin_and_never_an_unconnected_service() -> None:
    signals = [
        _sig(1, "postgres-main", 0),
        _sig(2, "payments", 2),
        _sig(3, "checkout", 4),
        _sig(4, "elastic", -1),
    ]
    a = Analysis(_graph().graph, signals)
    o2, o3 = a.origin_of(2), a.origin_of(3)
    assert o2 is not None and o2.origin.signal.key == 1 and o2.hops == 1
    assert o3 is not None and o3.origin.signal.key == 1 and o3.hops == 2
    assert o3.summary == "2 hops upstream, started 4 min earlier"
    assert "2 of 2 related alerting incidents depend on it" in o3.reasons
    assert a.origin_of(1) is None and a.origin_of(4) is None  # the origin itself; the unrelated one
    assert [x.signal.key for x in a.affected_by(1)] == [2, 3]
    assert a.affected_by(4) == [] and all(4 != x.signal.key for x in a.affected_by(1))
    assert a.rank()[0].signal.key == 1


def test_outside_the_window_nothing_is_related() -> None:
    signals = [_sig(1, "postgres-main", 0), _sig(2, "payments", 45)]
    a = Analysis(_graph().graph, signals, OriginParams(window=timedelta(minutes=30)))
    assert a.origin_of(2) is None and a.affected_by(1) == []


def test_a_caller_that_alerted_first_is_still_not_the_origin_of_its_dependency() -> None:
    # checkout's alert fired first, but checkout depends on postgres-main, not the other way round
    signals = [_sig(1, "checkout", 0), _sig(2, "postgres-main", 1), _sig(3, "inventory", 2)]
    a = Analysis(_graph().graph, signals)
    assert a.origin_of(2) is None
    found = a.origin_of(1)
    assert (
        found is not None and found.origin.signal.key == 2 and found.summary.endswith("started 1 min later")
    )


# ---- priority and owners ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("severity", "tier", "lifecycle", "expected"),
    [
        ("critical", None, None, 1),
        ("high", 1, "production", 1),
        ("high", 2, "production", 2),
        ("warning", 1, None, 2),
        ("warning", 3, None, 4),
        ("critical", 3, "experimental", 3),
        ("info", 1, "deprecated", 4),
        ("info", None, None, 4),
    ],
)
def test_priority_table(severity: str, tier: int | None, lifecycle: str | None, expected: int) -> None:
    service = None if tier is None and lifecycle is None else Service("x", tier=tier, lifecycle=lifecycle)
    assert priority(severity, service) == expected
    assert TIMING[4].escalation_factor is None and TIMING[1].reminder_factor < TIMING[2].reminder_factor


def test_service_owner_members_come_from_the_catalog_group() -> None:
    cat = load_catalog(SAMPLE)
    groups = {"S0CHECKOUT": ["U0ANA", "U0BOB", "not-a-user"]}
    assert service_owner_members(cat, "checkout", lambda g: groups.get(g, [])) == ["U0ANA", "U0BOB"]
    assert service_owner_members(cat, "payments", lambda g: groups.get(g, [])) == []  # no group: nobody
    assert service_owner_members(cat, None, lambda g: ["U0X"]) == []


def test_origin_block_escapes_names_and_renders_reasons_like_similarity_reasons() -> None:
    from bot.advice.context import IncidentContext
    from bot.catalog.lookup import OriginNote, RelatedNote
    from handlers.blocks.incident import _origin

    hostile = "db`<!channel>&"
    note = OriginNote(
        origin=RelatedNote(12, hostile, "t", "open", "2 hops upstream, started 4 min earlier"),
        origin_reasons=["2 hops upstream (a depends on <b>)", "started 4 min earlier"],
        affecting=[
            RelatedNote(n, f"svc-{n}", "t", "open", "1 hop downstream, started 1 min later")
            for n in range(10)
        ],
        affecting_reasons=["10 of 10 related alerting incidents depend on it"],
    )
    blocks = _origin(IncidentContext(origin=note))
    text = json.dumps(blocks, ensure_ascii=False)
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text and "&lt;b&gt;" in text
    assert blocks[0]["text"]["text"].startswith("🧭 *probable origin:* #12 ")
    assert blocks[1]["type"] == "context" and " · " in blocks[1]["elements"][0]["text"]  # like _why
    assert "…and 2 more" in blocks[2]["text"]["text"]  # at most 8 named
    assert _origin(IncidentContext()) == []
