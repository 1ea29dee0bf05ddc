"""How a place in validated data reads in an error message: ``alerts[1].labels``, ``defaults.approvers``.

The one formatter of pydantic error locations, used by the webhook parsers (``handlers/parsers/errors.py``),
runbook actions (``bot/remediation/actions.py``) and ``policy.yml`` (``bot/remediation/policy.py``), so a
field is named the same way wherever it is reported.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence


def format_loc(loc: Iterable[int | str], prefix: Sequence[int | str] = (), *, empty: str = "body") -> str:
    """``("alerts", 1, "labels")`` -> ``alerts[1].labels``; the empty path is ``empty`` (a webhook's body)."""
    out = ""
    for part in (*prefix, *loc):
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or empty
