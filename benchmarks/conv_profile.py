"""
benchmarks/conv_profile.py: where a step of the conv network's time goes. Times each piece of
conv_forward and conv_backward (--conv 8 16, batch 128, float32) on its own, medians of 50
runs, in milliseconds; the dense layers and the update are the MLP's (docs/speed.md).

    python benchmarks/conv_profile.py
"""

import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import nn_from_scratch as nn  # noqa: E402


def ms(f, repeats=50):
    f()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        f()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(B=128):
    nn.keep_freed_memory()
    rng = np.random.default_rng(0)
    params = nn.init_params([16 * 7 * 7, 128, 10], rng, conv=(8, 16))
    K1, k1, K2, k2 = (params[key] for key in ("K1", "k1", "K2", "k2"))
    A0 = rng.random((1, B, 28, 28), dtype=np.float32)
    Z1, cols1 = nn.convolve(A0, K1, k1)
    P1 = nn.max_pool(Z1)
    A1 = nn.ReLU(P1)
    Z2, cols2 = nn.convolve(A1, K2, k2)
    P2 = nn.max_pool(Z2)
    dP2 = rng.standard_normal(P2.shape, dtype=np.float32) * (P2 > 0)
    dZ2 = nn.unpool(dP2, Z2, P2).reshape(16, -1)
    dA1 = nn.unconvolve(K2.reshape(16, -1).T @ dZ2, Z2.shape)
    dP1 = dA1 * nn.ReLU_deriv(P1)
    dZ1 = nn.unpool(dP1, Z1, P1).reshape(8, -1)
    pieces = [
        ("layer 1 convolve (im2col + product)", lambda: nn.convolve(A0, K1, k1)),
        ("layer 1 max-pool", lambda: nn.max_pool(Z1)),
        ("layer 2 convolve (im2col + product)", lambda: nn.convolve(A1, K2, k2)),
        ("layer 2 max-pool", lambda: nn.max_pool(Z2)),
        ("layer 2 unpool", lambda: nn.unpool(dP2, Z2, P2)),
        ("layer 2 dK (product)", lambda: cols2.reshape(-1, dZ2.shape[1]) @ dZ2.T),
        ("layer 2 dA1: product", lambda: K2.reshape(16, -1).T @ dZ2),
        ("layer 2 dA1: nine slice-adds", lambda: nn.unconvolve(K2.reshape(16, -1).T @ dZ2,
                                                               Z2.shape)),
        ("layer 1 through g'", lambda: dA1 * nn.ReLU_deriv(P1)),
        ("layer 1 unpool", lambda: nn.unpool(dP1, Z1, P1)),
        ("layer 1 dK (product)", lambda: cols1.reshape(-1, dZ1.shape[1]) @ dZ1.T),
        ("biases dk1 + dk2", lambda: (dZ1.sum(axis=1), dZ2.sum(axis=1)))]
    total = 0
    for name, f in pieces:
        t = ms(f)
        total += t
        print(f"{name:<38} {t:6.2f} ms")
    print(f"{'(the nine slice-adds include the product above them)':<38}")
    print(f"{'sum':<38} {total:6.2f} ms")


if __name__ == "__main__":
    main()
