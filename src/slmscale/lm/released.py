"""The authors' released checkpoints by name: `gslm-scaling-<size>-<tokens>` names the size preset
and the tokens seen (gslm-scaling-85m-43p5b: 85m, 43.5B tokens).

A name in the released table (scaling/reference/slm_scaling/results.csv, from their RESULTS.md)
gives the exact tokens seen (43,545,280,000); another name of the same form gives them as rounded
in the name (43.5e9), and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache

from slmscale.files import read_csv_rows
from slmscale.scaling.table import REFERENCE

RELEASED_TABLE = REFERENCE / "slm_scaling" / "results.csv"
NAME = re.compile(r"^gslm-scaling-(?P<size>\d+m)-(?P<whole>\d+)(?:p(?P<fraction>\d+))?b$")


@dataclass(frozen=True)
class ReleasedRun:
    name: str
    size: str
    """The size preset the name gives (`slmscale sizes`)."""
    tokens: int
    """Tokens seen in training (D)."""
    exact: bool
    """True when `tokens` comes from the released table, False when rounded as the name writes it."""


@lru_cache(maxsize=1)
def _released_tokens() -> dict[str, int]:
    _, rows = read_csv_rows(RELEASED_TABLE)
    return {row["run_id"]: int(row["tokens"]) for row in rows}


def released_run(name: str) -> ReleasedRun | None:
    """The size and tokens a released checkpoint's name gives, or None for a name of another form."""
    match = NAME.match(name)
    if match is None:
        return None
    size = match["size"]
    if name in _released_tokens():
        return ReleasedRun(name, size, _released_tokens()[name], exact=True)
    tokens = Decimal(f"{match['whole']}.{match['fraction'] or 0}") * 10 ** 9
    return ReleasedRun(name, size, int(tokens), exact=False)
