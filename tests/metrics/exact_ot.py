#!/usr/bin/python3
"""exact_ot.py: an independent exact W1/W2 between two point files, for tests/cli_eval.sh.

Written apart from cm's solvers on purpose: another language (Python with numpy only), another
algorithm (the dense O(N^3) Hungarian method with potentials on the full double-precision cost
matrix: no candidate lists, no float matrix, no network simplex), and its own optimality proof:
the returned potentials are checked dual feasible on all N^2 pairs and their value equals the
assignment's cost. Uniform weights with n != m points become an assignment problem of size
N = lcm(n, m) (each point repeated N/n or N/m times): the transport polytope of integer
supplies has integral vertices, so that assignment's optimum is the transport optimum.
Reads .npy (numpy) and headerless or headed .csv (numbers only); exits 2 on a failed check.

Usage: /usr/bin/python3 tests/metrics/exact_ot.py A B [p]    prints W_p (p = 1 or 2) with 17 digits
"""
import math
import sys

import numpy as np


def read_points(path):
    if path.endswith(".npy"):
        x = np.load(path).astype(np.float64)
    else:
        with open(path) as f:
            lines = [l.strip() for l in f if l.strip()]
        try:
            [float(v) for v in lines[0].split(",")]
        except ValueError:
            lines = lines[1:]  # a header line
        x = np.array([[float(v) for v in l.split(",")] for l in lines], dtype=np.float64)
    return x.reshape(len(x), -1)


def hungarian(cost):
    """Minimum-cost perfect matching of a square matrix by shortest augmenting paths
    (Kuhn-Munkres with potentials, one Dijkstra per row). Returns (match, u, v) where
    row i is matched to column match[i] and u_i + v_j <= cost[i, j] for all i, j."""
    n = cost.shape[0]
    inf = math.inf
    u = np.zeros(n + 1)
    v = np.zeros(n + 1)
    row_of = np.zeros(n + 1, dtype=np.int64)  # row_of[j]: 1-based row matched to column j (0: free)
    way = np.zeros(n + 1, dtype=np.int64)
    padded = np.zeros((n + 1, n + 1))
    padded[1:, 1:] = cost
    for i in range(1, n + 1):
        row_of[0] = i
        j0 = 0
        minv = np.full(n + 1, inf)
        used = np.zeros(n + 1, dtype=bool)
        while True:
            used[j0] = True
            i0 = row_of[j0]
            free = ~used
            free[0] = False
            reduced = padded[i0] - u[i0] - v
            better = free & (reduced < minv)
            minv[better] = reduced[better]
            way[better] = j0
            candidates = np.where(free, minv, inf)
            j1 = int(np.argmin(candidates))
            delta = candidates[j1]
            u[row_of[used]] += delta
            v[used] -= delta
            minv[free] -= delta
            j0 = j1
            if row_of[j0] == 0:
                break
        while j0:
            j1 = way[j0]
            row_of[j0] = row_of[j1]
            j0 = j1
    match = np.zeros(n, dtype=np.int64)
    for j in range(1, n + 1):
        match[row_of[j] - 1] = j - 1
    return match, u[1:], v[1:]


def exact_wp(x, y, p):
    n, m = len(x), len(y)
    size = n * m // math.gcd(n, m)
    xs = np.repeat(x, size // n, axis=0)
    ys = np.repeat(y, size // m, axis=0)
    diff = xs[:, None, :] - ys[None, :, :]
    cost = np.sqrt((diff * diff).sum(axis=2)) ** p
    match, u, v = hungarian(cost)
    primal = cost[np.arange(size), match].sum()
    dual = u.sum() + v.sum()
    scale = cost.max() if cost.size else 1.0
    violation = (cost - u[:, None] - v[None, :]).min()
    if violation < -1e-9 * scale or abs(primal - dual) > 1e-9 * scale * size:
        print(f"exact_ot.py: optimality check failed: min reduced cost {violation}, "
              f"primal {primal}, dual {dual}", file=sys.stderr)
        sys.exit(2)
    return (primal / size) ** (1.0 / p)


def main():
    if len(sys.argv) not in (3, 4):
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    p = int(sys.argv[3]) if len(sys.argv) == 4 else 1
    x, y = read_points(sys.argv[1]), read_points(sys.argv[2])
    if x.shape[1] != y.shape[1]:
        print("exact_ot.py: dimensions differ", file=sys.stderr)
        sys.exit(2)
    print(f"{exact_wp(x, y, p):.17g}")


if __name__ == "__main__":
    main()
