"""Which fitted constants the runs determine, and why the others are not determined.

A least-squares optimum always has a value for every constant, but on a small grid some of them are
not pinned down by the data: the optimiser runs into a boundary (E → 0, a constant at the edge of
its search range) or the bootstrap spreads it over decades. Such a value is not a result, so the
report prints "not identified" and the reason instead (the tiny study once printed E = 3.7e-225
with an interval reaching 0.87). The rule, fixed in advance: a constant is identified when its 95%
bootstrap interval is finite, positive and spans at most a factor of MAX_FACTOR, and (for E) when
the fit has not pushed it to zero.
"""

from __future__ import annotations

import math
from typing import Any

MAX_FACTOR = 10.0
"""An interval wider than this factor (high/low) does not determine the constant's order of magnitude."""
E_FLOOR = 1e-3
"""E below this share of the smallest loss is the optimiser's boundary, not an irreducible loss."""


def _reason(value: float, ci: dict[str, Any] | None) -> str | None:
    """Why a constant with this estimate and bootstrap entry is not identified; None when it is."""
    if not (isinstance(value, (int, float)) and math.isfinite(value)):
        return f"the fit gives {value}"
    interval = (ci or {}).get("ci95")
    if not interval:
        return "no 95% interval was measured (no bootstrap, or too few replicates converged)"
    low, high = interval
    if not (math.isfinite(low) and math.isfinite(high)) or low <= 0:
        return f"its 95% interval [{low:.3g}, {high:.3g}] is not bounded away from 0 and infinity"
    if high / low > MAX_FACTOR:
        return f"its 95% interval [{low:.3g}, {high:.3g}] spans a factor of {high / low:.3g} (more than {MAX_FACTOR:g})"
    return None


def identify(values: dict[str, float], ci: dict[str, Any] | None, names: tuple[str, ...],
             fixed: dict[str, float] | None = None, extra: dict[str, str] | None = None) -> dict[str, dict[str, Any]]:
    """{name: {"identified": bool, "why": reason or None}} for each of `names`: fixed constants are
    given, `extra` carries reasons found elsewhere (e.g. E → 0, a search bound), the rest follow the
    interval rule of the module docstring."""
    out = {}
    for name in names:
        if name in (fixed or {}):
            out[name] = {"identified": True, "why": "fixed, not fitted"}
            continue
        why = (extra or {}).get(name) or _reason(values.get(name, math.nan), (ci or {}).get(name))
        out[name] = {"identified": why is None, "why": why}
    return out


def _structural(n_sizes: int, n_budgets: int, fixed: dict[str, float]) -> dict[str, str]:
    """Constants no grid of this shape can determine, whatever the bootstrap shows: E + A/N^α +
    B/D^β on a grid is additive in N and D, and E absorbs each term's level, so k distinct budgets
    leave k − 1 differences of B/D^β: two budgets fix one, not B and β (likewise sizes for A, α).
    A bootstrap started at the optimum stays on such a ridge and can print a narrow interval."""
    out = {}
    for count, what, names in ((n_sizes, "model sizes", ("A", "alpha")), (n_budgets, "token budgets", ("B", "beta"))):
        if count < 3 and "E" not in fixed and not all(n in fixed for n in names):
            for name in names:
                if name not in fixed:
                    out[name] = (f"{count} {what} fix {max(count - 1, 0)} difference(s) of its term, not "
                                 f"{' and '.join(SYMBOLS[n] for n in names)} separately")
    return out


SYMBOLS = {"A": "A", "B": "B", "alpha": "α", "beta": "β"}


def chinchilla_identification(fit: dict[str, Any], min_loss: float, max_params: float, max_tokens: float,
                              n_sizes: int, n_budgets: int) -> dict[str, dict[str, Any]]:
    """Identification of E, A, B, α, β and of the allocation a, b, G of a Chinchilla fit (fit.json
    layout: params, compute_optimal, fixed, and ci from the bootstrap when it ran), on runs over
    `n_sizes` distinct model sizes and `n_budgets` distinct token budgets."""
    params, allocation, fixed = fit["params"], fit.get("compute_optimal", {}), fit.get("fixed") or {}
    extra = _structural(n_sizes, n_budgets, fixed)
    if "E" not in fixed and params["E"] < E_FLOOR * min_loss:
        extra["E"] = (f"E → 0 ({params['E']:.3g}): no irreducible loss is visible up to N = {max_params:.3g} "
                      f"parameters and D = {max_tokens:.3g} tokens")
    ci = fit.get("ci") if isinstance(fit.get("ci"), dict) else None
    law = identify(params, ci, ("E", "A", "B", "alpha", "beta"), fixed, extra)
    # a, b and G are judged by their own intervals (correlated constants can leave the allocation
    # determined while A and α are not), unless an exponent is beyond what the grid can determine.
    blind = [SYMBOLS[n] for n in ("alpha", "beta") if n in extra]
    carried = {n: f"it depends on {' and '.join(blind)}, which the grid cannot determine" for n in ("a", "b", "G")}
    return {**law, **identify(allocation, ci, ("a", "b", "G"), None, carried if blind else None)}
