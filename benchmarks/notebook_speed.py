"""
benchmarks/notebook_speed.py: does a notebook that imports nn_from_scratch train as fast as
the command line? Runs the README's notebook example, nn.train(X_train, y_train,
epochs=3), in fresh processes, in turn: train() as it is, which asks glibc to keep the
memory NumPy frees (keep_freed_memory), and train() with that request taken out, as it was
when only the command line made it. Prints every run's epoch times and the medians.

    python benchmarks/notebook_speed.py              # ~1 minute, MNIST cached
    python benchmarks/notebook_speed.py --pairs 8
"""

import argparse
import json
import os
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

NOTEBOOK = """if True:
    import json, sys
    import nn_from_scratch as nn
    if sys.argv[1] == "without":
        nn.keep_freed_memory = lambda: None   # glibc's defaults: freed memory goes back
    X, y = nn.load_mnist()
    X_train, y_train, X_test, y_test = nn.split_mnist(X, y)
    params, history = nn.train(X_train, y_train, epochs=3, log=None)
    print(json.dumps([r["seconds"] for r in history]))"""


def main():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--pairs", type=int, default=4, help="runs of each, in turn (default: 4)")
    args = p.parse_args()
    runs = {"with keep_freed_memory (as train() is)": "with",
            "without it (glibc's defaults)": "without"}
    epochs = {name: [] for name in runs}
    for _ in range(args.pairs):
        for name, variant in runs.items():
            out = subprocess.run([sys.executable, "-c", NOTEBOOK, variant], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout
            seconds = json.loads(out)
            epochs[name].append(seconds)
            print(f"{name:<40} epochs {', '.join(f'{s:.2f}' for s in seconds)} s", flush=True)
    medians = {name: statistics.median(s for run in e for s in run) for name, e in epochs.items()}
    for name, median in medians.items():
        print(f"{name:<40} median epoch {median:.3f} s")
    a, b = medians.values()
    print(f"without / with: {b / a:.2f}x")


if __name__ == "__main__":
    main()
