"""
benchmarks/facts.py: measure the facts behind the speed choices of nn_from_scratch.py.

    python benchmarks/facts.py          # ~2 minutes

Each line compares two ways of training the default network for a few epochs on MNIST,
in this one process, alternating them so that a busier machine affects both alike, and
prints the median epoch time of each and their ratio:

  subnormals   flushing tiny weights and optimiser state to 0 every 100 steps, or not
               (with and without weight decay, and Adam at a large learning rate)
  one-hot      the one-hot labels in float32, or in float64 (which upcasts the backward pass)
  input        the images as uint8, or as fetch_openml gives them (float64, column order,
               divided by 255), which train() copies once into row order and float32
  batch size   64, 128, 256 and 512 examples per step, against the matmul floor of each
  threads      1 or 2 BLAS threads (threadpoolctl, installed with scikit-learn), for the
               epoch and for each of its matrix products alone
  layer speeds what sampling each layer's ||dloss/db_l|| every 10th step costs: the time of
               one sample (timeit), times the samples an epoch, over the epoch's time
  stuck units  the same for counting each hidden layer's dead units (ReLU) or saturated
               outputs (sigmoid), sampled with the layer speeds, and the epoch's summary
  update       the last two passes of update_params on W1 (784, 128), step = lr * v and
               P - step, just after X @ W1, with 1 and 2 BLAS threads: into W1 in place,
               into a new array, or over step (as update_params does)
"""

import os
import statistics
import sys
import time
import timeit

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import nn_from_scratch as nn  # noqa: E402
from compare import matmul_floor  # noqa: E402


def epoch_times(X, y, epochs=4, **settings):
    """Median seconds per epoch, the first (warm-up) epoch left out."""
    _, history = nn.train(X, y, epochs=epochs, log=None, **settings)
    return statistics.median(r["seconds"] for r in history[1:])


def alternate(runs, repeats=3):
    """{name: median epoch seconds}, running each variant `repeats` times, interleaved."""
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            times[name].append(run())
    return {name: statistics.median(t) for name, t in times.items()}


def main():
    nn.keep_freed_memory()
    X, y = nn.load_mnist()
    X, y = X[:55000], y[:55000]

    # Weight decay keeps every weight's gradient non-zero (it adds weight_decay * W), so the
    # momentum of always-blank pixels only decays towards 0 without it: --weight-decay 0.
    # Adam at a large learning rate switches hidden units off for good, and their weights
    # then shrink towards 0, late in the run (epochs 7-12 of 12).
    real_flush = nn.flush_denormals
    def without_flush(epochs, **settings):
        nn.flush_denormals = lambda params, state: None
        try:
            return epoch_times(X, y, epochs=epochs, **settings)
        finally:
            nn.flush_denormals = real_flush
    for name, epochs, settings in [("weight decay 0", 8, {"weight_decay": 0.0}),
                                   (f"weight decay {nn.WEIGHT_DECAY:g}", 8, {}),
                                   ("adam, lr 0.2", 12, {"optimizer": "adam", "lr": 0.2})]:
        t = alternate({"flushed": lambda: epoch_times(X, y, epochs=epochs, **settings),
                       "not flushed": lambda: without_flush(epochs, **settings)}, repeats=2)
        print(f"subnormals, {name}: flushed {t['flushed']:.3f} s, not flushed "
              f"{t['not flushed']:.3f} s per epoch: {t['not flushed'] / t['flushed']:.2f}x "
              "slower without")

    real_one_hot = nn.one_hot
    def float64_labels():
        nn.one_hot = lambda y, k=10, dtype=None: real_one_hot(y, k, np.float64)
        try:
            return epoch_times(X, y)
        finally:
            nn.one_hot = real_one_hot
    t = alternate({"float32": lambda: epoch_times(X, y), "float64": float64_labels})
    print(f"one-hot: float32 {t['float32']:.3f} s, float64 {t['float64']:.3f} s per epoch: "
          f"{t['float64'] / t['float32']:.2f}x slower in float64")

    scaled = np.asfortranarray(X / 255.0)  # fetch_openml's X / 255: float64, column order
    t = alternate({"uint8": lambda: epoch_times(X, y), "float64": lambda: epoch_times(scaled, y)})
    print(f"input: uint8 {t['uint8']:.3f} s, fetch_openml's float64 / 255 {t['float64']:.3f} s "
          f"per epoch: {t['float64'] / t['uint8']:.2f}x")
    del scaled

    sizes = (64, 128, 256, 512)
    t = alternate({b: (lambda b=b: epoch_times(X, y, batch_size=b)) for b in sizes}, repeats=2)
    for b in sizes:
        floor = matmul_floor(b)
        print(f"batch {b:3d}: {t[b]:.3f} s per epoch, matmul floor {floor:.3f} s, "
              f"{t[b] / floor:.2f}x the floor, {1e3 * (t[b] - floor) / (55000 / b):.2f} ms "
              "of other work per step")

    from threadpoolctl import threadpool_limits
    def threads(n):
        with threadpool_limits(limits=n, user_api="blas"):
            return epoch_times(X, y)
    t = alternate({1: lambda: threads(1), 2: lambda: threads(2)})
    print(f"threads: 1 BLAS thread {t[1]:.3f} s, 2 threads {t[2]:.3f} s per epoch: "
          f"{t[1] / t[2]:.2f}x faster with 2")
    rng = np.random.default_rng(0)
    X1, A1 = (rng.random((nn.BATCH_SIZE, m), dtype=np.float32) for m in (784, nn.HIDDEN))
    W1, W2 = (rng.random(shape, dtype=np.float32) for shape in ((784, nn.HIDDEN), (nn.HIDDEN, 10)))
    dZ2 = rng.random((nn.BATCH_SIZE, 10), dtype=np.float32)
    products = {"X @ W1": lambda: X1 @ W1, "A1 @ W2": lambda: A1 @ W2,
                "A1^T @ dZ2": lambda: A1.T @ dZ2, "dZ2 @ W2^T": lambda: dZ2 @ W2.T,
                "X^T @ dZ1": lambda: X1.T @ A1}
    steps = -(-len(y) // nn.BATCH_SIZE)
    for name, product in products.items():
        each = {}
        for n in (1, 2):
            with threadpool_limits(limits=n, user_api="blas"):
                each[n] = min(timeit.repeat(product, number=steps, repeat=5))
        print(f"threads per product, {name} alone: 1 thread {1e3 * each[1]:.1f} ms, 2 threads "
              f"{1e3 * each[2]:.1f} ms an epoch")

    for hidden in (nn.HIDDEN, (128, 128, 128, 128)):
        _, history = nn.train(X, y, hidden=hidden, epochs=2, log=None)
        L = len(history[0]["db_norm"])
        params = nn.init_params(nn.layer_sizes(784, hidden, 10), np.random.default_rng(0))
        grads = {key: P.astype(np.float32) for key, P in params.items()}
        sample = min(timeit.repeat(lambda: [np.linalg.norm(grads[f"b{l}"])
                                            for l in range(1, L + 1)], number=1000, repeat=5))
        steps = -(-len(y) // nn.BATCH_SIZE)
        cost = -(-steps // 10) * sample / 1000 / history[1]["seconds"]
        print(f"layer speeds, {'-'.join(map(str, nn.layer_sizes(784, hidden, 10)))}: "
              f"{1e6 * sample / 1000:.1f} us a sample, {-(-steps // 10)} samples an epoch of "
              f"{history[1]['seconds']:.3f} s: {100 * cost:.3f}% of it")
        for activation in ("relu", "sigmoid"):
            rng = np.random.default_rng(0)
            Zs = [rng.standard_normal((nn.BATCH_SIZE, len(params[f"b{l}"]))).astype(np.float32)
                  for l in range(1, L)]                                # the hidden layers'
            sample = min(timeit.repeat(lambda: nn.stuck_units(Zs, activation), number=1000,
                                       repeat=5)) / 1000
            samples = [nn.stuck_units(Zs, activation) for _ in range(-(-steps // 10))]
            summary = min(timeit.repeat(lambda: nn.stuck_shares(samples, activation),
                                        number=100, repeat=5)) / 100
            cost = (len(samples) * sample + summary) / history[1]["seconds"]
            sizes = "-".join(map(str, nn.layer_sizes(784, hidden, 10)))
            print(f"stuck units ({activation}), {sizes}: "
                  f"{1e6 * sample:.1f} us a sample, {1e6 * summary:.0f} us the summary: "
                  f"{100 * cost:.3f}% of the epoch")

    rng = np.random.default_rng(0)
    batch = rng.random((nn.BATCH_SIZE, 784), dtype=np.float32)
    v = rng.standard_normal((784, nn.HIDDEN)).astype(np.float32)  # a velocity, W1's shape
    writes = {"W1 -= step": lambda W, step: W.__isub__(step),
              "W1 - step, a new array": lambda W, step: W - step,
              "W1 - step over step (update_params)": lambda W, step: np.subtract(W, step, out=step)}
    def last_passes(n, write, repeats=300):
        """Median seconds of the update's step = lr * v and P - step, just after X @ W1."""
        W, times = v.copy(), []
        with threadpool_limits(limits=n, user_api="blas"):
            for _ in range(repeats):
                batch @ W
                start = time.perf_counter()
                W = write(W, np.float32(1e-6) * v)
                times.append(time.perf_counter() - start)
        return statistics.median(times)
    for n in (1, 2):
        print(f"update, {n} BLAS thread{'s' if n > 1 else ''}: " + ", ".join(
            f"{name} {1e6 * last_passes(n, write):.0f} us" for name, write in writes.items()))

if __name__ == "__main__":
    main()
