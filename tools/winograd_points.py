#!/usr/bin/env python3
"""Derive F(4x4, 3x3) Winograd matrices for a set of transform points and
measure their float32 error against a float64 direct convolution.

    python tools/winograd_points.py

For each point set (plus the point at infinity) prints A^T, G and B^T (exact
fractions; B^T's rows scaled to coprime integers, the scale moved into G)
and, for C = 16, 64, 256 input channels, the max abs error of a float32
simulation (each stage rounded to float32) divided by max|y| and by
sqrt(9C). conv2d_winograd.cpp uses the best set found: 0, 1, -1, 2, -1/2.
"""
from fractions import Fraction as Fr
import math

import numpy as np


def inverse(M):
    n = len(M)
    A = [row[:] + [Fr(int(i == j)) for j in range(n)] for i, row in enumerate(M)]
    for c in range(n):
        p = next(r for r in range(c, n) if A[r][c] != 0)
        A[c], A[p] = A[p], A[c]
        A[c] = [v / A[c][c] for v in A[c]]
        for r in range(n):
            if r != c and A[r][c] != 0:
                f = A[r][c]
                A[r] = [a - f * b for a, b in zip(A[r], A[c])]
    return [row[n:] for row in A]


def matrices(points, m=4, r=3):
    """Toom-Cook by the transposition principle: y = A^T [(G g) * (B^T d)]."""
    a = m + r - 1
    P = [Fr(p) for p in points]

    def vandermonde(cols):  # rows: evaluation at each point, then at infinity (leading coefficient)
        return [[p ** j for j in range(cols)] for p in P] + [[Fr(0)] * (cols - 1) + [Fr(1)]]

    G, H, V = vandermonde(r), vandermonde(m), inverse(vandermonde(a))
    BT = [[V[j][i] for j in range(a)] for i in range(a)]
    AT = [[H[i][k] for i in range(a)] for k in range(m)]
    for i in range(a):  # integer rows in B^T, the factor moved into G
        den = 1
        for v in BT[i]:
            den = den * v.denominator // math.gcd(den, v.denominator)
        g = 0
        for v in BT[i]:
            g = math.gcd(g, int(v * den))
        f = Fr(den, g or 1)
        BT[i] = [v * f for v in BT[i]]
        G[i] = [v / f for v in G[i]]
    return AT, G, BT


def error(AT, G, BT, C, K=8, tiles=400, seed=1):
    AT, G, BT = (np.array([[float(v) for v in row] for row in M], np.float32) for M in (AT, G, BT))
    rng = np.random.default_rng(seed)
    d = rng.standard_normal((tiles, C, 6, 6)).astype(np.float32)
    w = rng.standard_normal((K, C, 3, 3)).astype(np.float32)
    U = np.einsum("ai,kcij,bj->abkc", G, w, G).astype(np.float32)
    V = np.einsum("ai,tcij,bj->abct", BT, d, BT).astype(np.float32)
    M = np.einsum("abkc,abct->abkt", U, V).astype(np.float32)
    Y = np.einsum("ia,abkt,jb->ktij", AT, M, AT).astype(np.float32)
    ref = np.zeros((K, tiles, 4, 4))
    for i in range(3):
        for j in range(3):
            ref += np.einsum("kc,tcab->ktab", w[:, :, i, j].astype(np.float64),
                             d[:, :, i:i + 4, j:j + 4].astype(np.float64))
    err = np.abs(Y - ref).max()
    return err / np.abs(ref).max(), err / np.sqrt(9 * C)


def main():
    for pts in ([0, 1, -1, 2, -2], [0, 1, -1, Fr(1, 2), Fr(-1, 2)], [0, 1, -1, 2, Fr(-1, 2)],
                [0, 1, -1, Fr(1, 2), -2]):
        AT, G, BT = matrices(pts)
        print("points", ", ".join(map(str, pts)), "+ inf")
        for name, M in (("A^T", AT), ("G", G), ("B^T", BT)):
            for row in M:
                print(f"  {name:4}", " ".join(f"{str(v):>6}" for v in row))
        for C in (16, 64, 256):
            rel, per = error(AT, G, BT, C)
            print(f"  C={C:<4} max|err|/max|y| {rel:.3g}   max|err|/sqrt(9C) {per:.3g}")


if __name__ == "__main__":
    main()
