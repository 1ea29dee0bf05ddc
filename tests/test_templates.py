"""The content template miner (bot/triage/templates.py): what triage uses to group free-text alerts."""

from __future__ import annotations

import pytest

from bot.triage import templates
from bot.triage.templates import WILDCARD as W
from tests.conftest import SHARED_DATA


def merged(a: str, b: str) -> str | None:
    out = templates.merge(templates.mask(a), templates.mask(b))
    return None if out is None else templates.render(out)


def test_variable_parts_of_an_alert_join_one_template() -> None:
    assert merged("disk 91% on db-7", "disk 93% on db-3") == f"disk {W}% on {W}"
    assert (
        merged(
            "Connection pool exhausted on inventory-db-3 (50/50 in use)",
            "Connection pool exhausted on inventory-db-1 (48/50 in use)",
        )
        is not None
    )


def test_different_events_stay_apart() -> None:
    assert merged("disk 91% on db-7", "memory 91% on db-7") is None  # one of three constants differs
    assert merged("VM Started on vm-1", "VM Paused on vm-1") is None
    assert merged("disk 91% on db-7", "disk 91% on db-7 now") is None  # different length


def test_masking_keeps_the_shape_and_hides_ids() -> None:
    assert templates.mask("pid=4242 user=alice") == (
        f"pid={W}",
        f"user={W}",
    )  # a key's value varies, word or not
    assert templates.mask("GET /v2/54fadb412c/servers/detail") == (
        "GET",
        W,
    )  # a path with ids is one variable
    assert templates.mask("[instance: b9000564-fe1a] took 19.05s") == ("[instance:", f"{W}]", "took", W)
    assert templates.mask("deadbeefcafe 0x7f3a9c10 10.0.0.7:5432") == (W, W, f"{W}:{W}")


def test_masking_of_flags_signed_numbers_and_dates() -> None:
    assert templates.mask("shouldBlockLocation ret:false") == ("shouldBlockLocation", f"ret:{W}")
    assert templates.mask("ws=null, force=TRUE,") == (f"ws={W},", f"force={W},")
    assert templates.mask("cancelNotification,index:-3") == (f"cancelNotification,index:{W}",)
    assert templates.mask("connection at Sun Jul 10 03:55:21 2005") == (
        "connection",
        "at",
        W,
        W,
        W,
        f"{W}:{W}:{W}",
        W,
    )
    assert templates.mask("blk_-1608999687919862906 10.250.19.102:54106") == (W, f"{W}:{W}")
    assert templates.mask("no such file") == ("no", "such", "file")  # words stay words
    assert templates.mask("=a=b x=") == ("=a=b", "x=")  # not a key=value pair: left alone


def test_key_values_and_padded_dumps() -> None:
    assert templates.mask('tag="View", name=com.android.phone,') == (f"tag={W},", f"name={W},")
    assert merged("session opened user=root by sshd", "session opened user=news by sshd") is not None
    assert templates.mask("icache prefetch depth....................0") == (
        "icache",
        "prefetch",
        f"depth....................{W}",
    )
    assert (
        merged("prefetch depth.....0", "prefetch threshold....0") is None
    )  # the padded name is kept, only the value varies


def test_a_changed_word_weighs_more_than_a_changed_id() -> None:
    # 4 of 5 constants agree in both pairs; the changed word is a different event, the changed id is not
    assert (
        merged("[instance: 42] VM Started (Lifecycle Event)", "[instance: 43] VM Paused (Lifecycle Event)")
        is None
    )
    assert (
        merged(
            "Location icon should now be in state 'Active'", "Location icon should now be in state 'Inactive'"
        )
        is None
    )
    assert merged("sync of volume vol-a failed", "sync of volume vol_b failed") is not None
    a, b = templates.mask("VM Started on vm-1 now ok"), templates.mask("VM Paused on vm-1 now ok")
    assert templates.merge(a, b) is None
    assert templates.merge(a, b, word_weight=1.0) == ("VM", W, "on", W, "now", "ok")  # 4/5 without the weight


def test_merge_is_symmetric_and_deterministic() -> None:
    a, b = (
        templates.mask("job 17 failed on host-a after 3 retries"),
        templates.mask("job 18 failed on host-b after 5 retries"),
    )
    assert templates.merge(a, b) == templates.merge(b, a) == templates.merge(a, b)
    m = templates.merge(a, b)
    assert m is not None and templates.merge(m, a) == m  # a merged template absorbs its members


def test_threshold_is_a_parameter() -> None:
    a, b = templates.mask("sync of volume 7a failed"), templates.mask("sync of volume 8b-x failed")
    assert templates.merge(a, b) is not None  # 4 of 4 constants agree
    a, b = templates.mask("sync of volume a:1 failed"), templates.mask("sync of volume b:1 failed")
    assert templates.merge(a, b) is not None  # 4 of 5 constants agree: 0.8 ("a:1" is not a plain word)
    assert templates.merge(a, b, threshold=0.9) is None


@pytest.mark.slow
def test_grouping_accuracy_on_loghub_beats_drain3_default() -> None:
    folder = SHARED_DATA / "loghub_2k"
    if not folder.is_dir():
        pytest.skip(f"loghub-2k ground truth not found at {folder} (../shared/data is not part of the repo)")
    from benchmarks.loghub_grouping import drain3_default, grouping_accuracy, load, ours

    for system in ("HDFS", "OpenStack"):
        messages, truth = load(folder, system)
        got, base = (
            grouping_accuracy(truth, ours(messages)),
            grouping_accuracy(truth, drain3_default(messages)),
        )
        assert got >= base and got > 0.85, (system, got, base)


def test_a_token_of_wildcards_and_punctuation_is_a_variable_in_a_merge() -> None:
    # "synchronized to 10.100.20.250, stratum 3" and "... to LOCAL(0), stratum 10": one event (loghub Thunderbird)
    assert (
        merged("synchronized to 10.100.20.250, stratum 3", "synchronized to LOCAL(0), stratum 10") is not None
    )
    assert merged("synchronized to 10.100.20.250, stratum 3", "synchronized to #3#, stratum 1") is not None
    assert merged("disk 91% on db-7", "disk full on db-7") is not None  # a number or a word in one slot
    assert merged("disk 91% on db-7", "memory 91% on db-7") is None  # a different word where both are words
    assert merged("ret:false index:-3", "pid:12 index:-3") is None  # key names are constants, not punctuation
