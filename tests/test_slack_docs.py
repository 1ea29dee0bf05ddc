"""docs/slack-app.md against the code (issue 17): it lists every /incident subcommand the table has, with the
kpi period syntax the shared parser takes, and says where `model-owner` comes from."""

from __future__ import annotations

import re
from pathlib import Path

from bot.kernel.periods import parse_period
from handlers.slack.subcommands import SUBCOMMANDS

DOC = (Path(__file__).resolve().parent.parent / "docs" / "slack-app.md").read_text(encoding="utf-8")


def test_every_subcommand_is_documented() -> None:
    documented = set(re.findall(r"`/incident (\w+)", DOC))
    verbs = {verb for sub in SUBCOMMANDS for verb in sub.verbs} | {"help"}
    assert verbs <= documented, f"docs/slack-app.md does not list {sorted(verbs - documented)}"
    assert documented <= verbs, (
        f"docs/slack-app.md lists subcommands that do not exist: {sorted(documented - verbs)}"
    )


def test_kpi_periods_in_the_doc_are_accepted() -> None:
    row = next(line for line in DOC.splitlines() if line.startswith("| `/incident kpi"))
    periods = re.findall(r"`(\d+[a-z])`", row)
    assert {"12h", "14d", "2w"} <= set(periods)
    for p in periods:
        parse_period(p)  # raises if the doc promises a period the command refuses


def test_model_owner_comes_from_the_setting_never_the_alert() -> None:
    text = " ".join(DOC.split())
    assert (
        "`model-owner` means the members listed for the incident's model in the `MODEL_OWNERS` setting"
        in text
    )
    assert "**never** taken from the alert" in text
    assert "owner reported by the model alert" not in text
