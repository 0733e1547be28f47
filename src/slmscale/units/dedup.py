"""Collapse runs of a repeated unit into one unit with its run length.

GSLM's dedup: "a a a b b c" becomes "a b c" with durations 3 2 1. The durations
are kept beside the units (`<split>.dur`) so a resynthesis stage can undo it.
"""

from __future__ import annotations

import numpy as np


def dedup(units: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(units with repeats collapsed, run length of each kept unit in frames)."""
    units = np.asarray(units)
    if units.size == 0:
        return units.copy(), np.zeros(0, dtype=np.int64)
    starts = np.flatnonzero(np.concatenate(([True], units[1:] != units[:-1])))
    lengths = np.diff(np.append(starts, units.size))
    return units[starts], lengths
