"""Which fitted constants a report may print as numbers (`scaling/identification.py`)."""

import math

from slmscale.scaling.identification import MAX_FACTOR, chinchilla_identification, identify


def _ci(low, high):
    return {"estimate": (low + high) / 2, "ci95": [low, high], "n": 200}


def test_the_interval_rule():
    values = {"A": 30.0, "B": 60.0, "alpha": 0.3, "beta": 0.3}
    ci = {"A": _ci(10.0, 99.0), "B": _ci(10.0, 101.0), "alpha": _ci(-0.1, 0.6), "beta": _ci(0.25, math.inf)}
    verdicts = identify(values, ci, ("A", "B", "alpha", "beta"))
    assert verdicts["A"] == {"identified": True, "why": None}
    assert not verdicts["B"]["identified"] and f"more than {MAX_FACTOR:g}" in verdicts["B"]["why"]
    assert not verdicts["alpha"]["identified"] and "not bounded away from 0" in verdicts["alpha"]["why"]
    assert not verdicts["beta"]["identified"]
    # No interval: nothing shows the constant is determined.
    assert "no 95% interval" in identify(values, None, ("A",))["A"]["why"]
    assert identify(values, None, ("A",), fixed={"A": 30.0})["A"] == {"identified": True, "why": "fixed, not fitted"}


def test_e_at_zero_is_not_identified_whatever_its_interval():
    fit = {"params": {"E": 3.666e-225, "A": 7.0, "B": 58.0, "alpha": 0.28, "beta": 0.31},
           "compute_optimal": {"a": 0.52, "b": 0.48, "G": 0.4}, "fixed": {},
           "ci": {"E": _ci(1e-300, 0.87), "A": _ci(5.0, 9.0), "B": _ci(41.0, 90.0), "alpha": _ci(0.2, 0.4),
                  "beta": _ci(0.27, 0.4), "a": _ci(0.29, 0.86), "b": _ci(0.14, 0.71), "G": _ci(0.2, 1.0)}}
    verdicts = chinchilla_identification(fit, min_loss=0.95, max_params=8.3e5, max_tokens=1e6, n_sizes=3, n_budgets=4)
    assert not verdicts["E"]["identified"] and verdicts["E"]["why"].startswith("E → 0")
    assert "8.3e+05 parameters" in verdicts["E"]["why"]
    assert all(verdicts[n]["identified"] for n in ("A", "B", "alpha", "beta", "a", "b", "G"))
    # A fitted E well above zero is judged by its interval like the rest.
    fit["params"]["E"], fit["ci"]["E"] = 0.5, _ci(0.4, 0.6)
    assert chinchilla_identification(fit, 0.95, 8.3e5, 1e6, 3, 4)["E"]["identified"]
    assert chinchilla_identification({**fit, "fixed": {"E": 0.0}}, 0.95, 8.3e5, 1e6, 3, 4)["E"]["why"] == "fixed, not fitted"


def test_two_budgets_cannot_determine_b_and_beta_whatever_the_bootstrap_says():
    # The demo's unigram variant: 4 sizes × 2 budgets; its bootstrap, started on the ridge, printed
    # B = 3.345e6 [3.337e6, 3.358e6].
    fit = {"params": {"E": 2.78, "A": 30.0, "B": 3.345e6, "alpha": 0.5, "beta": 1.25},
           "compute_optimal": {"a": 0.69, "b": 0.31, "G": 0.01}, "fixed": {},
           "ci": {name: _ci(0.99 * v, 1.01 * v) for name, v in
                  {"E": 2.78, "A": 30.0, "B": 3.345e6, "alpha": 0.5, "beta": 1.25, "a": 0.69, "b": 0.31,
                   "G": 0.01}.items()}}
    verdicts = chinchilla_identification(fit, 2.9, 4e5, 5e5, n_sizes=4, n_budgets=2)
    assert verdicts["E"]["identified"] and verdicts["A"]["identified"] and verdicts["alpha"]["identified"]
    for name in ("B", "beta"):
        assert not verdicts[name]["identified"] and "2 token budgets fix 1 difference" in verdicts[name]["why"]
    assert all(not verdicts[n]["identified"] and "β" in verdicts[n]["why"] for n in ("a", "b", "G"))
    # With E fixed, two budgets do determine the D-term.
    assert chinchilla_identification({**fit, "fixed": {"E": 2.78}}, 2.9, 4e5, 5e5, 4, 2)["B"]["identified"]
