"""Escaping of untrusted text for Slack mrkdwn, and the opaque button values."""

from __future__ import annotations

import re

import pytest

from handlers.blocks import ids, mrkdwn
from handlers.blocks.ids import ActionId, FeedbackKind


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("<!channel> db down", "&lt;!channel&gt; db down"),
        ("<!here>", "&lt;!here&gt;"),
        ("ping <@U123>", "ping &lt;@U123&gt;"),
        ("<https://evil.example|click>", "&lt;https://evil.example|click&gt;"),
        ("a & b", "a &amp; b"),
        ("&lt; already", "&amp;lt; already"),
        (None, ""),
    ],
)
def test_escape_neutralises_slack_markup(raw: str | None, expected: str) -> None:
    out = mrkdwn.escape(raw)
    assert out == expected
    assert "<" not in out and ">" not in out


@pytest.mark.parametrize("word", ["@channel", "@here", "@everyone", "@Channel"])
def test_bare_broadcasts_are_defused(word: str) -> None:
    out = mrkdwn.escape(f"hey {word}!")
    assert word not in out
    assert out.replace(mrkdwn.ZWJ, "") == f"hey {word}!"


def test_email_like_text_is_left_alone() -> None:
    assert mrkdwn.escape("ops@channelpartner.com") == "ops@channelpartner.com"


def test_escape_drops_control_characters() -> None:
    assert mrkdwn.escape("a\x00b\x1bc\nd") == "abc\nd"


@pytest.mark.parametrize("max_len", range(1, 30))
def test_truncation_never_splits_an_entity(max_len: int) -> None:
    out = mrkdwn.escape("a&b<c>d&&&e<<<f" * 3, max_len=max_len)
    assert len(out) <= max_len
    assert out.endswith("…")
    body = out[:-1]
    # every '&' starts a complete entity
    assert re.fullmatch(r"(?:[^&]|&amp;|&lt;|&gt;)*", body), body


def test_no_truncation_when_it_fits() -> None:
    assert mrkdwn.escape("a&b", max_len=7) == "a&amp;b"
    assert mrkdwn.escape("a&b", max_len=6) == "a…"


def test_truncate_of_safe_text_keeps_entities_whole() -> None:
    for n in range(2, 12):
        out = mrkdwn.truncate("xx&amp;yy&lt;zz", n)
        assert len(out) <= n
        assert re.fullmatch(r"(?:[^&]|&amp;|&lt;|&gt;)*…?", out), out


def test_code_strips_backticks_and_escapes() -> None:
    assert mrkdwn.code("a`b<c>") == "`a'b&lt;c&gt;`"
    assert mrkdwn.code("") == ""
    assert len(mrkdwn.code("x" * 100, max_len=20)) <= 20


def test_link_allows_http_and_escapes_label() -> None:
    assert mrkdwn.link("https://tickets.example.com/T-1?a=1&b=2", "T-1 <!channel>") == (
        "<https://tickets.example.com/T-1?a=1&amp;b=2|T-1 &lt;!channel&gt;>"
    )


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "JAVASCRIPT://x.example/%0aalert(1)",
        "data:text/html,hi",
        "ftp://files.example.com/x",
        "https://x.example|forged",
        "https://x.example/>oops",
        "https://x.example/<!channel>",
        "https://x.example/a b",
        "/relative/path",
        "https://",
        "",
        None,
    ],
)
def test_link_refuses_unsafe_urls(url: str | None) -> None:
    out = mrkdwn.link(url, "label")
    assert out == "label"
    assert "<" not in out


def test_link_without_label_uses_host() -> None:
    assert mrkdwn.link("https://x.example/path", "") == "<https://x.example/path|x.example>"


def test_quote_block_is_escaped_quoted_and_bounded() -> None:
    text = "line one <!channel>\n\n\n" + "\n".join(f"line {i} & more" for i in range(30))
    out = mrkdwn.quote_block(text, 200)
    assert len(out) <= 200
    lines = out.splitlines()
    assert all(line.startswith("> ") for line in lines)
    assert "&lt;!channel&gt;" in lines[0]
    assert "<!" not in out
    assert mrkdwn.quote_block("   ", 100) == ""


def test_mention_only_for_valid_user_ids() -> None:
    assert mrkdwn.mention("U0123ABC") == "<@U0123ABC>"
    assert mrkdwn.mention("W0123ABC") == "<@W0123ABC>"
    assert mrkdwn.mention("model-owner") == "model-owner"
    assert mrkdwn.mention("U1> <!channel") == "U1&gt; &lt;!channel"
    assert mrkdwn.mention(None) == "someone"


def test_plain_text_is_single_line_and_bounded() -> None:
    out = mrkdwn.plain("a\nb\t c @here " + "x" * 200, max_len=50)
    assert len(out) == 50 and "\n" not in out and "@here" not in out


# --- button values ---------------------------------------------------------------------------------


def test_action_pattern_matches_plain_and_numbered_ids() -> None:
    pattern = ids.action_pattern(ActionId.FEEDBACK_UP)
    assert pattern.match("feedback_up")
    assert pattern.match(ids.instance_id(ActionId.FEEDBACK_UP, 3))
    assert not pattern.match("feedback_up2")
    assert not pattern.match("feedback_down:1")
    assert ids.base_action("remediation_request:4") is ActionId.REQUEST
    with pytest.raises(ValueError, match="unknown action id"):
        ids.base_action("nope:1")


def test_values_round_trip() -> None:
    assert ids.parse_incident_value(ids.incident_value(7)) == 7
    assert ids.parse_request_value(ids.request_value(42)) == 42
    assert ids.parse_request_action_value(ids.request_action_value(7, "restart:pods")) == (7, "restart:pods")
    ref = ids.parse_feedback_value(ids.feedback_value(7, "document", "INC-1:a"))
    assert ref == (7, FeedbackKind.DOCUMENT, "INC-1:a")


@pytest.mark.parametrize(
    "value", ["", "0", "-1", "+3", "1.0", "abc", " 7", "7 ", "٣", "1" * 19, None, 7, "7\n"]
)
def test_parse_ids_reject_garbage(value: object) -> None:
    with pytest.raises(ValueError):
        ids.parse_incident_value(value)
    with pytest.raises(ValueError):
        ids.parse_request_value(value)


@pytest.mark.parametrize(
    "value", ["7", "7:", ":restart", "x:restart", "7: restart", "7:a\x00b", "7:" + "a" * 201]
)
def test_parse_request_action_rejects_garbage(value: str) -> None:
    with pytest.raises(ValueError):
        ids.parse_request_action_value(value)


@pytest.mark.parametrize(
    "value",
    ["7", "7:document", "7:ticket:INC-1", "x:document:INC-1", "7:document:", "7:runbook:\n", "a" * 2001],
)
def test_parse_feedback_rejects_garbage(value: str) -> None:
    with pytest.raises(ValueError):
        ids.parse_feedback_value(value)


def test_error_messages_are_clear() -> None:
    with pytest.raises(ValueError, match="expected a positive integer"):
        ids.parse_request_value("12; DROP TABLE")
    with pytest.raises(ValueError, match="'document' or 'runbook'"):
        ids.parse_feedback_value("7:ticket:INC-1")


def test_mentions_render_only_slack_ids() -> None:
    assert mrkdwn.mentions(["U0ANA", "S0ONCALL", "W0BOB"]) == "<@U0ANA> <!subteam^S0ONCALL> <@W0BOB>"
    # Names, broadcast words and injected markup never become a mention.
    assert mrkdwn.mentions(["ana", "!channel", "<!here>", "U0X>|x", "source:alertmanager", ""]) == ""
