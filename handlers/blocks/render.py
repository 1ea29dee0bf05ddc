"""Block Kit as readable terminal text, for the demo and for eyeballing tests."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

_DATE = re.compile(r"<!date\^\d+\^[^|>]*\|([^>]*)>")
_LINK = re.compile(r"<(https?://[^|>]+)\|([^>]*)>")
_USER = re.compile(r"<@([UW][A-Z0-9]+)>")
_SPECIAL = re.compile(r"<!(\w+)(?:\^[^>]*)?>")
_BOLD = re.compile(r"\*([^*\n]+)\*")
_ITALIC = re.compile(r"(?<!\w)_([^_\n]+)_(?!\w)")


def _text(obj: Any) -> str:
    """Slack text (object or str) as display text: markup resolved, entities decoded."""
    text = obj.get("text", "") if isinstance(obj, dict) else str(obj or "")
    text = _DATE.sub(r"\1", text)
    text = _LINK.sub(r"\2 (\1)", text)
    text = _USER.sub(r"@\1", text)
    text = _SPECIAL.sub(r"@\1", text)
    text = _BOLD.sub(r"\1", text)
    text = _ITALIC.sub(r"\1", text)
    text = text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
    return text.replace("\u200d", "")


def _indent(text: str, prefix: str) -> str:
    return "\n".join(prefix + line for line in text.splitlines() or [""])


def _block(block: dict[str, Any]) -> str | None:
    kind = block.get("type")
    if kind == "header":
        title = _text(block.get("text"))
        return f"{title}\n{'=' * min(len(title), 72)}"
    if kind == "section":
        parts = [_text(block["text"])] if block.get("text") else []
        parts += [
            "  • " + _text(f).replace("\n", ": ", 1).replace("\n", " ") for f in block.get("fields", [])
        ]
        if block.get("accessory", {}).get("type") == "button":
            parts.append(f"[ {_text(block['accessory'].get('text'))} ]")
        return "\n".join(parts)
    if kind == "context":
        return _indent(" · ".join(_text(e) for e in block.get("elements", []) if "text" in e), "  ")
    if kind == "actions":
        return "  ".join(f"[ {_text(e.get('text'))} ]" for e in block.get("elements", []) if "text" in e)
    if kind == "divider":
        return "-" * 40
    if kind == "input":
        return f"{_text(block.get('label'))}:\n  [ ______________________ ]"
    return None


def render_text(blocks: Sequence[dict[str, Any]] | dict[str, Any]) -> str:
    """Blocks (or a view dict with ``blocks``) as plain text: headers, sections, fields, context, ``[ Button ]``."""
    if isinstance(blocks, dict):
        title = _text(blocks.get("title")) if blocks.get("title") else ""
        body = render_text(blocks.get("blocks", []))
        return f"{title}\n{'=' * len(title)}\n{body}" if title else body
    rendered = (_block(b) for b in blocks)
    return "\n".join(r for r in rendered if r is not None)
