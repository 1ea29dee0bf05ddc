"""Settings as environment text: one syntax for lists and maps (JSON, or comma separated), a value written
back as an operator would write it, a valid example per setting, and one line per bad value. Pure functions
over pydantic field declarations; ``bot.kernel.config`` applies them to ``Settings``."""

from __future__ import annotations

import json
import types
from collections.abc import Mapping
from typing import Any, Union, get_args, get_origin

from pydantic import SecretStr, ValidationError
from pydantic.fields import FieldInfo

# ---- one syntax for lists and maps ------------------------------------------------------------------


def _unwrap(annotation: Any) -> Any:
    """``X | None`` -> ``X``."""
    if get_origin(annotation) in (Union, types.UnionType):
        args = [a for a in get_args(annotation) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return annotation


def _items(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at character {exc.pos + 1})") from None


def parse_env_text(annotation: Any, value: str) -> Any:
    """A list or map setting from its text: JSON, or comma separated (``a,b``; ``k=v,k=v``). Other types
    are returned unchanged for pydantic to convert. ValueError naming the bad part otherwise."""
    kind = get_origin(_unwrap(annotation))
    text = value.strip()
    if kind in (list, tuple, set):
        if text.startswith("["):
            return _json(text)
        return _items(text)
    if kind is dict:
        if text.startswith("{"):
            return _json(text)
        listed = get_origin(get_args(_unwrap(annotation))[1]) is list
        out: dict[str, Any] = {}
        for part in _items(text):
            key, sep, item = (s.strip() for s in part.partition("="))
            if not sep or not key or not item:
                raise ValueError(f"{part!r} is not key=value")
            if listed:
                out.setdefault(key, []).append(item)
            elif key in out:
                raise ValueError(f"{key!r} is given twice")
            else:
                out[key] = item
        return out
    return value


# ---- errors an operator can act on --------------------------------------------------------------------


def env_name(field: str) -> str:
    return field.upper()


def env_text(value: Any) -> str:
    """A value as it is written in the environment (the syntax ``parse_env_text`` reads)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, SecretStr):
        return ""
    if isinstance(value, list | tuple):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return ",".join(
            f"{k}={i}" for k, v in value.items() for i in (v if isinstance(v, list | tuple) else [v])
        )
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def example(info: FieldInfo) -> str:
    """A valid value of a setting: its declared example, else its default, else one for its type."""
    if info.examples:
        return str(info.examples[0])
    default = info.get_default(call_default_factory=True)
    if default not in (None, "", [], {}):
        return env_text(default)
    kind = _unwrap(info.annotation)
    return {int: "30", float: "0.5", bool: "true"}.get(kind, "...")


_PLAIN = {
    "int_parsing": "not a whole number",
    "int_from_float": "not a whole number",
    "float_parsing": "not a number",
    "bool_parsing": "not true or false",
    "json_invalid": "not valid JSON",
    "list_type": "not a list",
    "dict_type": "not a map",
    "string_type": "not text",
}


def error_lines(exc: ValidationError, fields: Mapping[str, FieldInfo]) -> list[str]:
    """One line per bad variable of ``fields`` (a settings model's): its name, the value (never a secret's),
    what is wrong, a valid example."""
    out: dict[str, str] = {}
    for err in exc.errors():
        field = str(err["loc"][0]) if err["loc"] else ""
        info = fields.get(field)
        if info is None or env_name(field) in out:
            continue
        ctx = err.get("ctx") or {}
        kind = err["type"]
        if kind in _PLAIN:
            what = _PLAIN[kind]
        elif kind in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
            sign = {
                "greater_than": ">",
                "greater_than_equal": ">=",
                "less_than": "<",
                "less_than_equal": "<=",
            }
            what = f"must be {sign[kind]} {env_text(next(iter(ctx.values())))}"
        else:
            what = str(err["msg"]).removeprefix("Value error, ")
        secret = _unwrap(info.annotation) is SecretStr
        shown = "" if secret or not isinstance(err.get("input"), str | int | float) else f"={err['input']!r}"
        name = env_name(field)
        out[name] = f"{name}{shown}: {what}; e.g. {name}={example(info)}"
    return list(out.values()) or [" ".join(str(exc).split())[:300]]
