"""``incident-bot catalog show|check``: the service catalog as the bot reads it (SERVICE_CATALOG)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import networkx as nx

from bot.kernel.config import Settings


def register(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser], settings: Callable[[], Settings]
) -> None:
    cat = subparsers.add_parser("catalog", help="the service catalog: show it, or check it").add_subparsers(
        dest="catalog_command", required=True
    )
    for name, help_text in (
        ("show", "every service: tier, lifecycle, owner, owner group, dependencies"),
        ("check", "validate the catalog; exit 1 naming each file and entry with a problem"),
    ):
        p = cat.add_parser(name, help=help_text)
        p.add_argument(
            "path", nargs="?", type=Path, default=None, help="a file or folder (default: SERVICE_CATALOG)"
        )
        if name == "show":
            p.add_argument("--json", action="store_true", help="one JSON object: services and their fields")
        p.set_defaults(func=lambda args, n=name: cmd_catalog(args, settings, n))


def cmd_catalog(args: argparse.Namespace, settings: Callable[[], Settings], command: str) -> int:
    from bot.catalog.loader import dangling, load_catalog
    from bot.catalog.model import CatalogError

    s = settings()
    path = args.path or s.service_catalog
    if path is None:
        print("error: no catalog: set SERVICE_CATALOG or pass a path", file=sys.stderr)
        return 2
    try:
        catalog = load_catalog(path, owner_groups=s.service_owner_groups)
    except CatalogError as exc:
        print(f"catalog {path}: invalid\n{exc}", file=sys.stderr)
        return 1
    warnings = dangling(catalog)
    warnings += [f"dependency cycle: {' -> '.join([*c, c[0]])}" for c in nx.simple_cycles(catalog.graph)][:10]
    if command == "check":
        print(
            f"catalog {path}: ok: {len(catalog.services)} services, {catalog.graph.number_of_edges()} "
            f"dependencies, {len(catalog.files)} file(s)"
        )
        for w in warnings:
            print(f"warning: {w}")
        return 0
    if getattr(args, "json", False):
        out = {
            name: {
                "owner": sv.owner,
                "owner_group": sv.owner_group,
                "tier": sv.tier,
                "lifecycle": sv.lifecycle,
                "system": sv.system,
                "depends_on": list(sv.depends_on),
                "file": sv.source,
            }
            for name, sv in sorted(catalog.services.items())
        }
        print(json.dumps({"services": out, "warnings": warnings}, indent=2))
        return 0
    print(f"{'service':28} {'tier':4} {'lifecycle':12} {'owner':24} {'group':12} depends on")
    for name, sv in sorted(catalog.services.items()):
        print(
            f"{name:28} {sv.tier or '-'!s:4} {sv.lifecycle or '-':12} {sv.owner or '-':24} "
            f"{sv.owner_group or '-':12} {', '.join(sv.depends_on) or '-'}"
        )
    for w in warnings:
        print(f"warning: {w}")
    return 0
