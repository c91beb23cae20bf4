#!/usr/bin/env python3
"""Hindsight linear reference for the forecast targets (bench/RESULTS.md, docs/FORECAST.md).

For each `timestamp,value` series and horizon h, fits ONE fixed linear predictor of the
change y[t+h] - y[t] from the recent changes (y[t-i] - y[t-i-1], i = 0..5) and the change
the series made one day earlier over the same span (y[t+h-D] - y[t-D]), by least absolute
deviations (IRLS) on the very points it is then scored on, after the same two-day warm-up
as `augur-eval score`. It sees the whole series at once, so no online forecaster restricted
to these features can expect to beat it; the ratio printed is its MAE over the better of
persistence and the one-day seasonal naive, i.e. augur-eval's relMAE.

A series where this reference stays near 1.0 is close to a random walk at that step: no
linear use of its recent or seasonal history beats persistence by much, and a relMAE
target of 0.80 cannot be met there by a linear model of its past. Not a strict bound for
non-linear models (the ensemble beats it on spiky VM series), a sanity reference.

Usage: hindsight_bound.py [--step 300] [--horizons 1,5,15] FILE.csv ...
Standard library only (python3).
"""
import argparse
import csv
import math
import sys


def grid(path, step):
    buckets = {}
    with open(path, newline="") as f:
        rows = csv.reader(f)
        next(rows, None)
        for row in rows:
            try:
                ts, v = float(row[0]), float(row[1])
            except (ValueError, IndexError):
                continue
            if not (math.isfinite(ts) and math.isfinite(v)):
                continue
            s = buckets.setdefault(int(ts // step), [0.0, 0])
            s[0] += v
            s[1] += 1
    return {k: s / n for k, (s, n) in buckets.items()}


def solve(a, b):
    """Gaussian elimination with partial pivoting; singular directions get weight 0."""
    n = len(a)
    m = [a[i][:] + [b[i]] for i in range(n)]
    for c in range(n):
        p = max(range(c, n), key=lambda r: abs(m[r][c]))
        m[c], m[p] = m[p], m[c]
        if abs(m[c][c]) < 1e-12:
            continue
        for r in range(n):
            if r != c and m[r][c] != 0.0:
                f = m[r][c] / m[c][c]
                for k in range(c, n + 1):
                    m[r][k] -= f * m[c][k]
    return [m[i][n] / m[i][i] if abs(m[i][i]) >= 1e-12 else 0.0 for i in range(n)]


def lad(xs, ys, iters=30):
    """Least absolute deviations by iteratively reweighted least squares."""
    n = len(xs[0])
    w = [1.0] * len(xs)
    beta = [0.0] * n
    for _ in range(iters):
        a = [[0.0] * n for _ in range(n)]
        b = [0.0] * n
        for x, y, wi in zip(xs, ys, w):
            for i in range(n):
                wxi = wi * x[i]
                b[i] += wxi * y
                row = a[i]
                for j in range(i, n):
                    row[j] += wxi * x[j]
        for i in range(n):
            a[i][i] += 1e-9
            for j in range(i):
                a[i][j] = a[j][i]
        beta = solve(a, b)
        w = [1.0 / max(abs(y - sum(bi * xi for bi, xi in zip(beta, x))), 1e-6)
             for x, y in zip(xs, ys)]
    return beta


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--step", type=float, default=300)
    ap.add_argument("--horizons", default="1,5,15")
    ap.add_argument("--warmup-days", type=float, default=2)
    ap.add_argument("files", nargs="+")
    args = ap.parse_args()
    hs = [int(h) for h in args.horizons.split(",")]
    day = int(round(86400 / args.step))
    lags = 6
    print("%-40s %s" % ("series", "  ".join("h%-5d" % h for h in hs)))
    for path in args.files:
        g = grid(path, args.step)
        if not g:
            print("%s: no rows" % path, file=sys.stderr)
            continue
        first = min(g)
        start = first + int(args.warmup_days * day)
        out = []
        for h in hs:
            xs, ys, pers, snaive = [], [], [], []
            for k in sorted(g):
                need = [k + h] + [k - i for i in range(lags + 1)] + [k + h - day, k - day]
                if k < start or any(j not in g for j in need):
                    continue
                x = [1.0] + [g[k - i] - g[k - i - 1] for i in range(lags)]
                x.append(g[k + h - day] - g[k - day])
                xs.append(x)
                ys.append(g[k + h] - g[k])
                pers.append(abs(g[k + h] - g[k]))
                snaive.append(abs(g[k + h] - g[k + h - day]))
            if len(xs) < 50:
                out.append("  -   ")
                continue
            beta = lad(xs, ys)
            mae = sum(abs(y - sum(b * xi for b, xi in zip(beta, x)))
                      for x, y in zip(xs, ys)) / len(xs)
            base = min(sum(pers), sum(snaive)) / len(xs)
            out.append("%.3f " % (mae / base) if base > 0 else "  -   ")
        print("%-40s %s" % (path.rsplit("/", 1)[-1][:40], "  ".join(out)))


if __name__ == "__main__":
    main()
