"""Reference values for server/ab/stats.ts, computed with scipy.

    python3 scripts/reference/ab_stats.py > test/fixtures/ab/stats-reference.json

- Student-t quantiles (scipy.stats.t.ppf) and CDF values (scipy.stats.t.cdf);
- t-intervals of a mean and paired differences: scipy.stats.ttest_1samp / ttest_rel and their
  confidence_interval (the paired t-test);
- the detectable difference and the seeds needed, by the formula stats.ts names
  (delta(n) = (t_{1-alpha/2,n-1} + t_{power,n-1}) * sd / sqrt(n), the smallest n with
  delta(n) <= |difference|), with scipy's quantiles, and beside each the exact power of the
  paired t-test at that n from the noncentral t (scipy.stats.nct), to show how close the
  formula's "about 80%" is.
"""

import json
import math
import sys

import numpy as np
import scipy
from scipy import stats

CONFIDENCE = 0.95
POWER = 0.8


def quantiles():
    return [
        {"p": p, "df": df, "q": float(stats.t.ppf(p, df))}
        for df in [1, 2, 3, 4, 5, 7, 9, 10, 20, 30, 50, 100, 1000]
        for p in [0.8, 0.9, 0.975, 0.995]
    ]


def cdfs():
    return [{"t": t, "df": df, "cdf": float(stats.t.cdf(t, df))} for df in [1, 2, 4, 9, 30] for t in [-3.0, -0.5, 0.0, 1.0, 2.5, 6.0]]


def interval(values):
    values = np.asarray(values, dtype=float)
    result = stats.ttest_1samp(values, 0.0)
    low, high = result.confidence_interval(CONFIDENCE)
    return {
        "values": values.tolist(),
        "mean": float(values.mean()),
        "sd": float(values.std(ddof=1)),
        "low": float(low),
        "high": float(high),
    }


def paired(a, b):
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    result = stats.ttest_rel(b, a)
    low, high = result.confidence_interval(CONFIDENCE)
    d = b - a
    return {
        "a": a.tolist(),
        "b": b.tolist(),
        "mean": float(d.mean()),
        "sd": float(d.std(ddof=1)),
        "low": float(low),
        "high": float(high),
        "t": float(result.statistic),
        "p": float(result.pvalue),
    }


def detectable(sd, n, alpha=1 - CONFIDENCE, power=POWER):
    return (stats.t.ppf(1 - alpha / 2, n - 1) + stats.t.ppf(power, n - 1)) * sd / math.sqrt(n)


def exact_power(sd, difference, n, alpha=1 - CONFIDENCE):
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = abs(difference) / (sd / math.sqrt(n))
    # the lower tail is negligible where scipy's nct.cdf returns nan (large noncentrality, few df)
    lower = stats.nct.cdf(-crit, df, nc)
    return float(stats.nct.sf(crit, df, nc) + (0.0 if math.isnan(lower) else lower))


def seeds(sd, difference):
    n = 2
    while detectable(sd, n) > abs(difference):
        n += 1
    return {"sd": sd, "difference": difference, "n": n, "detectableAtN": float(detectable(sd, n)), "exactPowerAtN": exact_power(sd, difference, n)}


def main():
    rng = np.random.default_rng(21)
    intervals = [interval(v) for v in [[1.0, 2.0, 3.0, 4.0], [0.5, 0.7], rng.normal(2.3, 0.05, 5).round(6).tolist(), rng.normal(0, 1, 12).round(6).tolist()]]
    pairs = [
        paired([2.31, 2.35, 2.29], [2.28, 2.36, 2.25]),
        paired(rng.normal(2.3, 0.05, 5).round(6).tolist(), rng.normal(2.28, 0.05, 5).round(6).tolist()),
        paired([0.3125, 0.28125, 0.34375, 0.3125], [0.34375, 0.3125, 0.3125, 0.375]),
    ]
    detectables = [{"sd": sd, "n": n, "delta": float(detectable(sd, n))} for sd in [0.01, 0.05] for n in [2, 3, 5, 10, 30]]
    needed = [seeds(sd, d) for sd, d in [(0.02, 0.02), (0.02, 0.01), (0.05, 0.004), (0.01, 0.05), (0.03, 0.001)]]
    json.dump(
        {
            "generatedBy": "python3 scripts/reference/ab_stats.py",
            "scipy": scipy.__version__,
            "confidence": CONFIDENCE,
            "power": POWER,
            "quantiles": quantiles(),
            "cdfs": cdfs(),
            "intervals": intervals,
            "pairs": pairs,
            "detectable": detectables,
            "seeds": needed,
        },
        sys.stdout,
        indent=1,
    )
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
