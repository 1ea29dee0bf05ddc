"""The catalog as data: one ``Service`` per component, and the dependency graph (networkx) built once per load.

Edges point from a service to what it depends on (``checkout -> payments -> postgres-main``): a fault travels
against them, from a dependency to its callers. "Upstream" in messages means towards the dependencies, as in
"probable origin: #12 postgres-main, 2 hops upstream".
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import networkx as nx

from bot.kernel.errors import ConfigError


class CatalogError(ConfigError, ValueError):
    """A catalog file that cannot be used; the message names the file and the entry."""


@dataclass(frozen=True)
class Service:
    name: str
    owner: str | None = None  # Backstage owner ref (group:payments-team) or a plain team name
    depends_on: tuple[str, ...] = ()  # service names (refs already reduced to names)
    tier: int | None = None  # 1 = most critical
    lifecycle: str | None = None  # production | experimental | deprecated | …
    system: str | None = None
    owner_group: str | None = None  # the owner's Slack user group id (S…), from the entry or the mapping
    source: str = ""  # the file it came from


@dataclass
class Catalog:
    services: dict[str, Service] = field(default_factory=dict)
    graph: nx.DiGraph = field(default_factory=nx.DiGraph)
    files: tuple[str, ...] = ()

    @classmethod
    def build(cls, services: Iterable[Service], files: Iterable[str] = ()) -> Catalog:
        by_name = {s.name: s for s in services}
        graph = nx.DiGraph()
        graph.add_nodes_from(by_name)
        for s in by_name.values():
            graph.add_edges_from((s.name, d) for d in s.depends_on if d != s.name)
        return cls(by_name, graph, tuple(files))

    def get(self, name: str | None) -> Service | None:
        return self.services.get(name) if name else None

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name in self.graph

    def with_owner_groups(self, mapping: Mapping[str, str]) -> Catalog:
        """Owner → Slack user group from the SERVICE_OWNER_GROUPS setting, where an entry names none."""
        if not mapping:
            return self
        out = []
        for s in self.services.values():
            group = s.owner_group or mapping.get(s.owner or "") or mapping.get(_short(s.owner or ""))
            out.append(Service(**{**s.__dict__, "owner_group": group}))
        return Catalog.build(out, self.files)


def _short(ref: str) -> str:
    """``group:default/payments-team`` → ``payments-team``."""
    return ref.split(":", 1)[-1].rsplit("/", 1)[-1]
