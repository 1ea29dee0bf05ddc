""".env.example is generated from Settings (`incident-bot settings example`, `make env-example`): these tests
fail when the file, the Settings or the README's settings table drift apart."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from bot.kernel.config import Settings
from bot.kernel.envtext import env_name
from incident_bot.cli.main import main
from incident_bot.cli.settings import env_example

ROOT = Path(__file__).resolve().parent.parent


def test_env_example_is_generated_from_settings() -> None:
    assert (ROOT / ".env.example").read_text(encoding="utf-8") == env_example(), (
        ".env.example differs from the Settings: run `make env-example` (incident-bot settings example --write .env.example)"
    )


def test_every_setting_has_a_description_and_a_line() -> None:
    text = env_example()
    for name, info in Settings.model_fields.items():
        assert info.description, f"{name}: give the Field a description (it becomes the .env.example comment)"
        assert re.search(rf"^(# )?{env_name(name)}=", text, re.M), name


def test_every_setting_is_in_the_readme_table() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    missing = [env_name(n) for n in Settings.model_fields if f"| `{env_name(n)}` |" not in readme]
    assert missing == [], f"add a row to README's Settings table for {missing}"


def test_the_example_reads_back_as_the_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Copying .env.example to .env gives the documented defaults plus the four placeholders doctor refuses."""
    for name in Settings.model_fields:
        monkeypatch.delenv(env_name(name), raising=False)
    env = tmp_path / ".env"
    env.write_text(env_example(), encoding="utf-8")
    s = Settings(_env_file=env)
    default = Settings(_env_file=None)
    for name in Settings.model_fields:
        if name not in {"slack_bot_token", "slack_signing_secret", "alert_webhook_token", "incident_channel"}:
            assert getattr(s, name) == getattr(default, name), name
    assert s.slack_bot_token is not None and s.slack_bot_token.get_secret_value() == "xoxb-..."


def test_cli_prints_and_writes_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["settings", "example"]) == 0
    assert capsys.readouterr().out == env_example()
    assert main(["settings", "example", "--write", str(tmp_path / "x.env")]) == 0
    assert (tmp_path / "x.env").read_text(encoding="utf-8") == env_example()
