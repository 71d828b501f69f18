"""
benchmarks/epoch_profile.py: where one epoch of the default network goes, part by part.

    python benchmarks/epoch_profile.py                 # 784-128-10, ~1 minute, MNIST cached
    python benchmarks/epoch_profile.py --hidden 256 128

It trains epochs in this one process, in turn: one with nn.train() as it is, timed as
train() times it (time.perf_counter around the epoch's steps), then the same epoch taken
apart, every part of every step timed the same way: a lap of time.perf_counter ends each
part, so each moment of the profiled epoch goes to exactly one part. The profiled epoch
calls the same functions as train_step (forward_prop and backward_prop are taken apart
into their matrix products and element-wise operations, in their order) and must end
with the same weights, bit for bit, as train() from the same seed; it checks that. It then
prints each part's median over the rounds, as a share of train()'s median epoch, and how
far the parts' sum is from that epoch.
"""

import argparse
import math
import os
import statistics
import sys
import time
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import nn_from_scratch as nn  # noqa: E402


class Laps:
    """lap(part) adds the time since the previous lap to part."""

    def __init__(self):
        self.seconds = defaultdict(float)
        self.last = time.perf_counter()

    def lap(self, part):
        now = time.perf_counter()
        self.seconds[part] += now - self.last
        self.last = now


def profiled_epoch(X_train, y_train, params, state, rng, lr, epochs):
    """One epoch of train()'s defaults (ReLU, cross-entropy, momentum, shifts, no dropout),
    epoch 1 of `epochs`, every part timed. Returns {part: seconds}."""
    n, B, L = len(X_train), nn.BATCH_SIZE, nn.depth(params)
    steps = math.ceil(n / B)
    t = Laps()
    order = rng.permutation(n)
    t.lap("the shuffle, once an epoch")
    loss_sum, correct, seen, samples = 0.0, 0, 0, []
    for b in range(steps):
        idx = order[b * B:(b + 1) * B]
        X = X_train[idx]
        t.lap("gather the batch: X_train[idx]")
        X = nn.shift_images(X, rng)
        t.lap("shift: shift_images")
        X = nn.scale_pixels(X)
        t.lap("scale to floats: scale_pixels")
        Y = nn.one_hot(y_train[idx])
        t.lap("one-hot: one_hot")
        rate = nn.learning_rate(lr, b, epochs * steps)
        t.lap("bookkeeping")
        # forward_prop
        A, cache = [X], []
        for l in range(1, L + 1):
            Z = A[l - 1] @ params[f"W{l}"]
            t.lap(f"forward: {'X' if l == 1 else f'A{l - 1}'} @ W{l}")
            Z = Z + params[f"b{l}"]
            t.lap("forward: + b (each layer)")
            A.append(nn.ReLU(Z) if l < L else nn.softmax(Z))
            t.lap("ReLU (forward)" if l < L else "softmax")
            cache += [Z, A[l]]
        value = nn.cross_entropy(cache[-1], Y)
        t.lap("the loss: cross_entropy")
        # backward_prop
        grads = {}
        dZ = (A[L] - Y) / len(X)
        t.lap("backward: dZ = (AL - Y) / n")
        for l in range(L, 0, -1):
            grads[f"W{l}"] = A[l - 1].T @ dZ
            t.lap(f"backward: {'X' if l == 1 else f'A{l - 1}'}^T @ dZ{l}")
            grads[f"b{l}"] = dZ.sum(axis=0)
            t.lap("backward: db = dZ.sum (each layer)")
            if l > 1:
                dA = dZ @ params[f"W{l}"].T
                t.lap(f"backward: dZ{l} @ W{l}^T")
                dZ = dA * nn.ReLU_deriv(cache[2 * l - 4])
                t.lap("ReLU slope (backward): dA * ReLU_deriv(Z)")
        grads = {key: grads[key] for key in nn.arrays(params)}
        t.lap("bookkeeping")
        nn.update_params(params, grads, state, rate)
        t.lap("update: update_params")
        if not np.isfinite(value):
            raise nn.TrainingDiverged(value)
        loss_sum += value * len(idx)
        correct += np.count_nonzero(cache[-1].argmax(axis=1) == y_train[idx])
        seen += len(idx)
        t.lap("bookkeeping")
        if b % 10 == 0:
            samples.append(nn.layer_sample(cache, grads, "relu"))
            t.lap("layer-speed sampling (every 10th step)")
        if b % 100 == 0:
            nn.flush_denormals(params, state)
            t.lap("denormal flush (every 100th step)")
        t.lap("bookkeeping")
    nn.layer_summary(samples, "relu")
    t.lap("bookkeeping")
    return t.seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--hidden", type=int, nargs="+", default=[nn.HIDDEN], metavar="W")
    p.add_argument("--rounds", type=int, default=9, help="epochs of each (default: 9)")
    p.add_argument("--subset", type=int, default=None, help="train on the first N images only")
    args = p.parse_args()
    nn.keep_freed_memory()
    X, y = nn.load_mnist()
    X_train, y_train, _, _ = nn.hold_out(X[:60000], y[:60000], nn.VAL_SIZE,
                                         np.random.default_rng(nn.SEED))
    X_train, y_train = X_train[:args.subset], y_train[:args.subset]
    sizes = nn.layer_sizes(784, args.hidden, 10)
    hidden = args.hidden[0] if len(args.hidden) == 1 else args.hidden
    lr = nn.default_lr(nn.OPTIMIZER, depth=len(sizes) - 2)
    epochs, parts = [], defaultdict(list)
    for r in range(args.rounds):
        reference, history = nn.train(X_train, y_train, hidden=hidden, epochs=1, augment=True,
                                      seed=r, log=None)
        epochs.append(history[0]["seconds"])
        rng = np.random.default_rng(r)  # what train() draws from, in the same order
        params = nn.init_params(sizes, rng)
        state = nn.init_optimizer(params, nn.OPTIMIZER)
        seconds = profiled_epoch(X_train, y_train, params, state, rng, lr, epochs=1)
        if any(not np.array_equal(params[k], reference[k]) for k in params):
            sys.exit("the profiled epoch did not end with train()'s weights: it no longer "
                     "does what train_step does; update it")
        for part, s in seconds.items():
            parts[part].append(s)
    epoch = statistics.median(epochs)
    median = {part: statistics.median(s) for part, s in parts.items()}
    total = sum(median.values())
    print(f"network {'-'.join(map(str, sizes))}, batch {nn.BATCH_SIZE}, {args.rounds} rounds: "
          f"train()'s median epoch {epoch:.4f} s ({min(epochs):.4f}-{max(epochs):.4f})")
    width = max(map(len, median))
    for part, s in sorted(median.items(), key=lambda item: -item[1]):
        print(f"  {part:<{width}}  {1000 * s:7.2f} ms  {100 * s / epoch:5.1f}%")
    products = sum(s for part, s in median.items() if "@" in part)
    print(f"  {'the matrix products, together':<{width}}  {1000 * products:7.2f} ms  "
          f"{100 * products / epoch:5.1f}%")
    print(f"the parts add up to {1000 * total:.2f} ms, {total / epoch:.3f} x train()'s epoch")
    return 0


if __name__ == "__main__":
    sys.exit(main())
