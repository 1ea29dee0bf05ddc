"""``incident-bot settings example``: ``.env.example`` generated from ``Settings`` (each Field's description,
default and example), so the file lists every setting; tests/test_settings_example.py fails when they differ.
``make env-example`` rewrites it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pydantic.fields import FieldInfo

from bot.kernel.config import Settings
from bot.kernel.envtext import env_name, env_text, example

# Written uncommented with a placeholder: what an operator must fill in (doctor fails while they are placeholders).
FILL_IN = ("slack_bot_token", "slack_signing_secret", "alert_webhook_token", "incident_channel")

HEADER = """\
# incident-bot settings: copy to .env (or set them in the environment); `incident-bot doctor` checks them.
# Generated from bot/kernel/config.py by `incident-bot settings example` (`make env-example`); a test fails
# when this file and the Settings differ, so change the Settings, not this file.
# Every setting is listed. The first block must be filled in (doctor and serve refuse the placeholders);
# the rest is commented out at its default. Lists and maps: comma separated (`a,b`, `key=value,key=value`)
# or JSON (`["a", "b"]`, `{"key": "value"}`).
"""


def _entry(name: str, info: FieldInfo, *, fill_in: bool) -> list[str]:
    default = env_text(info.get_default(call_default_factory=True))
    text = info.description or ""
    ex = example(info)
    if not fill_in and not default and ex != "...":
        text += f" Example: {ex}"
    value = ex if fill_in else default
    return [f"# {text}".rstrip(), f"{'' if fill_in else '# '}{env_name(name)}={value}"]


def env_example() -> str:
    fields = Settings.model_fields
    lines = [HEADER, "# --- required ---"]
    for name in FILL_IN:
        lines += _entry(name, fields[name], fill_in=True)
    lines += ["", "# --- optional (defaults shown) ---"]
    for name, info in fields.items():
        if name not in FILL_IN:
            lines += _entry(name, info, fill_in=False)
    return "\n".join(lines) + "\n"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = subparsers.add_parser("settings", help="settings: print .env.example generated from the Settings")
    sub = p.add_subparsers(dest="settings_command", required=True)
    ex = sub.add_parser("example", help="print .env.example (every setting, its default and description)")
    ex.add_argument("--write", type=Path, default=None, help="write it to this file instead of printing it")
    ex.set_defaults(func=cmd_example)


def cmd_example(args: argparse.Namespace) -> int:
    text = env_example()
    if args.write is not None:
        args.write.write_text(text, encoding="utf-8")
        print(f"wrote {args.write}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0
