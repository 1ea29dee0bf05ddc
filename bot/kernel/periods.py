"""The one parser of periods (``30m``, ``12h``, ``14d``, ``2w``): ``incident-bot kpi --since``, ``incident-bot
noise --since``, ``incident-bot audit export --since`` and ``/incident kpi`` all read a period here, so a period
one of them takes, every one takes."""

from __future__ import annotations

import re
from datetime import timedelta

UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}
MAX = timedelta(days=3660)  # ten years: more is a typo, and larger numbers overflow datetime arithmetic
_PERIOD = re.compile(r"^(\d{1,7})([mhdw])$")
EXAMPLES = "30m, 12h, 7d, 14d, 2w"


def parse_period(text: str) -> timedelta:
    """``12h`` -> timedelta(hours=12); ValueError naming the input and the accepted forms otherwise."""
    m = _PERIOD.match(text.strip().lower())
    if m:
        period = timedelta(**{UNITS[m.group(2)]: int(m.group(1))})
        if timedelta(0) < period <= MAX:
            return period
    raise ValueError(
        f"period {text!r}: expected a number and m, h, d or w (at most 10 years), e.g. {EXAMPLES}"
    )
