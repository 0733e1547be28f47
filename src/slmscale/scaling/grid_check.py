"""The smallest grid of runs a Chinchilla-form law (E + A/N^α + B/D^β) can be fitted to, one rule
shared by `slmscale fit` and the report (for the Chinchilla law and the base law of the
data-constrained fit).

With too few points a five-parameter law interpolates them: the optimiser converges, R² is 1,
bootstrap intervals have zero width and the allocation looks precise, though nothing was
measured. So a law needs a few points beyond its free parameters, and each term it fits needs
the runs to vary along that term's axis: the N term (A, α) several model sizes, the D term
(B, β) several token budgets; a term with one size (budget) trades against E exactly.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from slmscale.scaling.chinchilla import COORDS, NAMES, SPARE_POINTS
from slmscale.scaling.chinchilla import free_parameters as chinchilla_free_parameters

N_TERM, D_TERM = ("A", "alpha"), ("B", "beta")
MIN_SIZES, MIN_BUDGETS = 3, 2
"""Distinct model sizes a free N term needs, distinct token budgets a free D term needs (with E free
beside them; a 2-size grid fits A/N^α + E exactly along N)."""


@dataclass
class GridCheck:
    """What the runs can support: `problems` refuse the law, `warnings` qualify it."""
    runs: int
    sizes: int
    budgets: int
    free: list[str]
    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        """One line: the problems (or warnings) joined."""
        return "; ".join(self.problems or self.warnings)


def free_parameters(fixed: dict | None = None, tie_alpha_beta: bool = False) -> list[str]:
    """The law's parameters left to the data (E, A, B, α, β less the fixed ones, β not separately
    when tied to α): the fit's own free coordinates, by parameter name."""
    if set(NAMES) <= set(fixed or {}):  # a given base law (data-constrained fit): nothing left here
        return []
    free_coords = chinchilla_free_parameters(fixed, tie_alpha_beta)[2]
    return [NAMES[COORDS.index(coord)] for coord in free_coords]


def _plural(count: int, word: str) -> str:
    return f"{count} {word}" + ("" if count == 1 else "s")


def check_grid(params, tokens, fixed: dict | None = None, tie_alpha_beta: bool = False) -> GridCheck:
    """Check the runs (their sizes N and budgets D) against the law's free parameters."""
    params, tokens = np.asarray(params, float), np.asarray(tokens, float)
    free = free_parameters(fixed, tie_alpha_beta)
    check = GridCheck(runs=len(params), sizes=len(np.unique(params)), budgets=len(np.unique(tokens)), free=free)
    need = len(free) + SPARE_POINTS
    if check.runs < need:
        check.problems.append(f"{_plural(check.runs, 'run')} for {len(free)} free parameters (need ≥{need})")
    for term, count, minimum, axis in ((N_TERM, check.sizes, MIN_SIZES, "model size"),
                                       (D_TERM, check.budgets, MIN_BUDGETS, "token budget")):
        names = " and ".join(n.replace("alpha", "α").replace("beta", "β") for n in term)
        if set(term) & set(free):
            if count < minimum:
                check.problems.append(f"{_plural(count, axis)} (a fitted {names} needs ≥{minimum} {axis}s)")
        elif count == 1:
            check.warnings.append(f"one {axis} only: {names} are the fixed values, the runs do not test them")
    return check

