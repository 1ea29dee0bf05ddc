"""Reading the catalog: Backstage ``catalog-info.yaml`` documents as they are, or the short plain form; a file
or a folder of them (``SERVICE_CATALOG``). Every problem names the file and the entry. ``CatalogSource``
re-reads the files when one changed (mtime and size, checked at most every few seconds on use), so an edit
takes effect without a restart; a broken edit is logged and the last good catalog stays in use.

Backstage (https://backstage.io/docs/features/software-catalog/descriptor-format): ``kind: Component`` and
``kind: Resource`` entities become services: ``metadata.name``, ``spec.owner``, ``spec.dependsOn``
(``component:default/x``, ``component:x``, ``resource:x`` or ``x``), ``spec.lifecycle``, ``spec.system``, and the
annotations ``incident-bot/tier`` ("1" most critical) and ``incident-bot/slack-usergroup`` (S…). Other kinds
(System, Group, API, Location…) are skipped. The plain form::

    services:
      postgres-main: {tier: 1, owner: dba-team, lifecycle: production}
      payments: {depends_on: [postgres-main], owner: payments-team, tier: 1, slack_usergroup: S0PAYMENTS}
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.catalog.model import Catalog, CatalogError, Service
from bot.kernel.validation import format_loc

log = logging.getLogger(__name__)
TIER_ANNOTATION = "incident-bot/tier"
GROUP_ANNOTATION = "incident-bot/slack-usergroup"
SERVICE_KINDS = {"component", "resource"}
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")


class _Plain(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    depends_on: list[str] = Field(default_factory=list)
    owner: str | None = None
    tier: int | None = Field(default=None, ge=1, le=9)
    lifecycle: str | None = None
    system: str | None = None
    slack_usergroup: str | None = Field(default=None, pattern=_GROUP_ID.pattern)


def catalog_files(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())
    return [path]


def load_catalog(path: Path | None, *, owner_groups: Mapping[str, str] | None = None) -> Catalog:
    """The catalog at ``path`` (a file or a folder; None: empty). Raises CatalogError listing every problem."""
    if path is None:
        return Catalog()
    if not path.exists():
        raise CatalogError(f"{path}: not found (SERVICE_CATALOG)")
    services: dict[str, Service] = {}
    problems: list[str] = []
    files = catalog_files(path)
    for file in files:
        for service in _read_file(file, problems):
            earlier = services.get(service.name)
            if earlier is not None:
                problems.append(
                    f"{file}: {service.name}: defined twice (also in {earlier.source}); names must be unique"
                )
                continue
            services[service.name] = service
    if problems:
        raise CatalogError("\n".join(problems))
    return Catalog.build(services.values(), [str(f) for f in files]).with_owner_groups(owner_groups or {})


def dangling(catalog: Catalog) -> list[str]:
    """Dependencies on names the catalog does not define (kept in the graph; ``catalog check`` warns)."""
    return [
        f"{s.source}: {s.name}: depends on {d!r}, which no entry defines"
        for s in catalog.services.values()
        for d in s.depends_on
        if d not in catalog.services
    ]


def _read_file(file: Path, problems: list[str]) -> Iterator[Service]:
    try:
        docs = list(yaml.safe_load_all(file.read_text(encoding="utf-8")))
    except (OSError, UnicodeDecodeError) as exc:
        problems.append(f"{file}: cannot read: {exc}")
        return
    except yaml.YAMLError as exc:
        problems.append(f"{file}: invalid YAML: {' '.join(str(exc).split())}")
        return
    for n, doc in enumerate(docs, start=1):
        where = f"{file}: document {n}" if len(docs) > 1 else str(file)
        if doc is None:
            continue
        if not isinstance(doc, dict):
            problems.append(f"{where}: expected a mapping (a Backstage entity or `services:`)")
        elif "services" in doc and "kind" not in doc:
            yield from _plain(file, doc, problems)
        elif "kind" in doc:
            service = _backstage(file, where, doc, problems)
            if service is not None:
                yield service
        else:
            problems.append(f"{where}: neither a Backstage entity (`kind:`) nor the plain form (`services:`)")


def _plain(file: Path, doc: dict[str, Any], problems: list[str]) -> Iterator[Service]:
    extra = sorted(set(doc) - {"services"})
    if extra:
        problems.append(
            f"{file}: unknown top-level key(s) {', '.join(map(str, extra))} (expected `services:`)"
        )
    entries = doc.get("services")
    if not isinstance(entries, dict):
        problems.append(f"{file}: services: expected a mapping of service name to its entry")
        return
    for name, entry in entries.items():
        if not isinstance(name, str) or not _NAME.match(name):
            problems.append(f"{file}: services.{name}: not a valid service name")
            continue
        try:
            spec = _Plain.model_validate(entry or {})
        except ValidationError as exc:
            err = exc.errors()[0]
            problems.append(f"{file}: services.{name}.{format_loc(err['loc'], empty='entry')}: {err['msg']}")
            continue
        deps = [_ref_name(d) for d in spec.depends_on]
        bad = [d for d, r in zip(spec.depends_on, deps, strict=True) if r is None]
        if bad:
            problems.append(f"{file}: services.{name}.depends_on: not a service reference: {bad[0]!r}")
            continue
        yield Service(
            name=name,
            owner=spec.owner,
            depends_on=tuple(d for d in deps if d),
            tier=spec.tier,
            lifecycle=spec.lifecycle,
            system=spec.system,
            owner_group=spec.slack_usergroup,
            source=str(file),
        )


def _backstage(file: Path, where: str, doc: dict[str, Any], problems: list[str]) -> Service | None:
    kind = str(doc.get("kind", "")).lower()
    if kind not in SERVICE_KINDS:
        return None  # System, Group, API, Location, …: not a service
    meta = doc.get("metadata")
    name = meta.get("name") if isinstance(meta, dict) else None
    if not isinstance(name, str) or not _NAME.match(name):
        problems.append(f"{where}: metadata.name: missing or not a valid entity name")
        return None
    where = f"{file}: {doc.get('kind')} {name}"
    spec = doc.get("spec") or {}
    if not isinstance(spec, dict):
        problems.append(f"{where}: spec: expected a mapping")
        return None
    annotations = (meta or {}).get("annotations") or {}
    if not isinstance(annotations, dict):
        problems.append(f"{where}: metadata.annotations: expected a mapping")
        return None
    raw_deps = spec.get("dependsOn") or []
    if not isinstance(raw_deps, list) or not all(isinstance(d, str) for d in raw_deps):
        problems.append(f"{where}: spec.dependsOn: expected a list of entity references")
        return None
    deps = []
    for ref in raw_deps:
        dep = _ref_name(ref)
        if dep is None:
            problems.append(f"{where}: spec.dependsOn: {ref!r} is not a component or resource reference")
            return None
        deps.append(dep)
    tier: int | None = None
    raw_tier = annotations.get(TIER_ANNOTATION)
    if raw_tier is not None:
        if not re.fullmatch(r"[1-9]", str(raw_tier).strip()):
            problems.append(
                f"{where}: metadata.annotations.{TIER_ANNOTATION}: expected 1-9, got {raw_tier!r}"
            )
            return None
        tier = int(str(raw_tier).strip())
    group = annotations.get(GROUP_ANNOTATION)
    if group is not None and not _GROUP_ID.match(str(group)):
        problems.append(
            f"{where}: metadata.annotations.{GROUP_ANNOTATION}: {group!r} is not a Slack user group id (S…)"
        )
        return None
    owner, lifecycle, system = spec.get("owner"), spec.get("lifecycle"), spec.get("system")
    for field_name, value in (("owner", owner), ("lifecycle", lifecycle), ("system", system)):
        if value is not None and not isinstance(value, str):
            problems.append(f"{where}: spec.{field_name}: expected a string")
            return None
    return Service(
        name=name,
        owner=owner,
        depends_on=tuple(deps),
        tier=tier,
        lifecycle=lifecycle,
        system=system,
        owner_group=str(group) if group else None,
        source=str(file),
    )


def _ref_name(ref: str) -> str | None:
    """``component:default/x`` / ``component:x`` / ``resource:x`` / ``x`` → ``x``; other kinds → None."""
    text = ref.strip()
    kind, sep, rest = text.partition(":")
    if not sep:
        kind, rest = "component", text
    if kind.lower() not in SERVICE_KINDS:
        return None
    name = rest.rsplit("/", 1)[-1]
    return name if _NAME.match(name) else None


class CatalogSource:
    """The current catalog, re-read when a file changed (checked at most every ``check_seconds`` on use).

    The first load raises (a bad SERVICE_CATALOG stops start-up with the file and entry named); a later
    broken edit is logged once and the last good catalog stays in use."""

    def __init__(
        self,
        path: Path | None,
        *,
        owner_groups: Mapping[str, str] | None = None,
        check_seconds: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._groups = dict(owner_groups or {})
        self._check = check_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._signature = self._stat()
        self._catalog = load_catalog(path, owner_groups=self._groups)
        self._checked = clock()

    def _stat(self) -> tuple[tuple[str, int, int], ...]:
        if self.path is None or not self.path.exists():
            return ()
        out = []
        for f in catalog_files(self.path):
            try:
                st = f.stat()
            except OSError:
                continue
            out.append((str(f), st.st_mtime_ns, st.st_size))
        return tuple(out)

    def current(self) -> Catalog:
        now = self._clock()
        with self._lock:
            if self.path is None or now - self._checked < self._check:
                return self._catalog
            self._checked = now
            signature = self._stat()
            if signature == self._signature:
                return self._catalog
            self._signature = signature
            try:
                self._catalog = load_catalog(self.path, owner_groups=self._groups)
                log.info("service catalog reloaded: %d services", len(self._catalog.services))
            except CatalogError as exc:
                log.error("service catalog not reloaded, keeping the previous one: %s", exc)
            return self._catalog
