"""The content template miner (bot/templates.py): what triage uses to group free-text alerts."""

from __future__ import annotations

import pytest

from bot import templates
from bot.templates import WILDCARD as W
from tests.conftest import SHARED_DATA


def merged(a: str, b: str) -> str | None:
    out = templates.merge(templates.mask(a), templates.mask(b))
    return None if out is None else templates.render(out)


def test_variable_parts_of_an_alert_join_one_template() -> None:
    assert merged("disk 91% on db-7", "disk 93% on db-3") == f"disk {W}% on {W}"
    assert merged("Connection pool exhausted on inventory-db-3 (50/50 in use)",
                  "Connection pool exhausted on inventory-db-1 (48/50 in use)") is not None


def test_different_events_stay_apart() -> None:
    assert merged("disk 91% on db-7", "memory 91% on db-7") is None  # one of three constants differs
    assert merged("VM Started on vm-1", "VM Paused on vm-1") is None
    assert merged("disk 91% on db-7", "disk 91% on db-7 now") is None  # different length


def test_masking_keeps_the_shape_and_hides_ids() -> None:
    assert templates.mask("pid=4242 user=alice") == (f"pid={W}", "user=alice")
    assert templates.mask("GET /v2/54fadb412c/servers/detail") == ("GET", W)  # a path with ids is one variable
    assert templates.mask("[instance: b9000564-fe1a] took 19.05s") == ("[instance:", f"{W}]", "took", W)
    assert templates.mask("deadbeefcafe 0x7f3a9c10 10.0.0.7:5432") == (W, W, f"{W}:{W}")


def test_merge_is_symmetric_and_deterministic() -> None:
    a, b = templates.mask("job 17 failed on host-a after 3 retries"), templates.mask("job 18 failed on host-b after 5 retries")
    assert templates.merge(a, b) == templates.merge(b, a) == templates.merge(a, b)
    m = templates.merge(a, b)
    assert m is not None and templates.merge(m, a) == m  # a merged template absorbs its members


def test_threshold_is_a_parameter() -> None:
    a, b = templates.mask("sync of volume alpha failed"), templates.mask("sync of volume beta failed")
    assert templates.merge(a, b) is not None  # 4 of 5 constants agree: 0.8
    assert templates.merge(a, b, threshold=0.9) is None


@pytest.mark.slow
def test_grouping_accuracy_on_loghub_beats_drain3_default() -> None:
    folder = SHARED_DATA / "loghub_2k"
    if not folder.is_dir():
        pytest.skip(f"loghub-2k ground truth not found at {folder} (../shared/data is not part of the repo)")
    from benchmarks.loghub_grouping import drain3_default, grouping_accuracy, load, ours

    for system in ("HDFS", "OpenStack"):
        messages, truth = load(folder, system)
        got, base = grouping_accuracy(truth, ours(messages)), grouping_accuracy(truth, drain3_default(messages))
        assert got >= base and got > 0.85, (system, got, base)
