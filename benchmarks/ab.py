"""
benchmarks/ab.py: is this nn_from_scratch.py as fast as another version of it? Trains the
default network with both, in this one process, an epoch of each in turn, so that the
machine's drift hits both alike, and prints each one's median epoch and the ratio; it also
checks that both print the same numbers (losses, accuracies) for the same seed.

    python benchmarks/ab.py HEAD~1              # against the previous commit
    python benchmarks/ab.py old.py --rounds 15  # against a file
    python benchmarks/ab.py HEAD~1 --batch-size 32   # where the per-step overhead shows
    python benchmarks/ab.py HEAD~1 --hidden 256 128  # the deep network
"""

import argparse
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load(path, name):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("other", help="a git revision (HEAD~1) or a path to another nn_from_scratch.py")
    p.add_argument("--rounds", type=int, default=11, help="epochs of each (default: 11)")
    p.add_argument("--batch-size", type=int, default=256, help="(default: 256)")
    p.add_argument("--hidden", type=int, nargs="+", default=[128], metavar="W",
                   help="one width per hidden layer (default: 128)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = args.other
        if not os.path.exists(path):
            path = os.path.join(folder, "other.py")
            with open(path, "wb") as f:
                f.write(subprocess.run(["git", "show", f"{args.other}:nn_from_scratch.py"],
                                       cwd=ROOT, check=True, capture_output=True).stdout)
        versions = {"this": load(os.path.join(ROOT, "nn_from_scratch.py"), "nn_this"),
                    args.other: load(path, "nn_other")}
    nn = versions["this"]
    nn.keep_freed_memory()
    X, y = nn.load_mnist()
    X_train, y_train, X_val, y_val = nn.hold_out(X[:60000], y[:60000], nn.VAL_SIZE,
                                                 nn.np.random.default_rng(nn.SEED))
    # The same numbers: three epochs of each, seed 0, as the command line trains MNIST
    hidden = args.hidden[0] if len(args.hidden) == 1 else args.hidden
    runs = {name: v.train(X_train, y_train, X_val, y_val, hidden=hidden, epochs=3,
                          batch_size=args.batch_size, augment=True, log=None)[1]
            for name, v in versions.items()}
    same = [[(r["loss"], r["train_acc"], r["val_acc"]) for r in h] for h in runs.values()]
    print("same losses and accuracies, 3 epochs:", "yes" if same[0] == same[1] else "NO")
    times = {name: [] for name in versions}
    for _ in range(args.rounds):
        for name, v in versions.items():
            history = v.train(X_train, y_train, hidden=hidden, epochs=1,
                              batch_size=args.batch_size, augment=True, log=None)[1]
            times[name].append(history[0]["seconds"])
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, t in median.items():
        print(f"{name:>10}: median epoch {t:.3f} s over {args.rounds} ({min(times[name]):.3f}-"
              f"{max(times[name]):.3f})")
    print(f"this / {args.other}: {median['this'] / median[args.other]:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
