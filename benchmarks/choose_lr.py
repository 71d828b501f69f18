"""
benchmarks/choose_lr.py: how an unset learning rate was chosen for each depth and
activation. Trains each network at several learning rates and seeds and prints the median
VALIDATION accuracy of the last epoch (the test set is never looked at to choose).

    python benchmarks/choose_lr.py                  # every row, ~30 minutes on 2 cores
    python benchmarks/choose_lr.py --only sigmoid   # rows whose flags contain "sigmoid"

Each run is `python nn_from_scratch.py FLAGS --lr LR --seed S --log FILE`, one after
another in its own process; the number comes from the run's --log record.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(HERE), "nn_from_scratch.py")

# (flags, learning rates to try), each with the other defaults (momentum 0.9, batch 256, ...)
ROWS = [
    ("", [0.1, 0.2, 0.4]),
    ("--hidden 256 128", [0.05, 0.1, 0.2, 0.3]),
    ("--hidden 128 128", [0.05, 0.1, 0.2, 0.3]),
    ("--hidden 128 128 128", [0.05, 0.1, 0.133, 0.2]),
    ("--hidden 128 128 128 128", [0.025, 0.05, 0.1, 0.2]),
    ("--hidden 30 30 30 30", [0.05, 0.1, 0.2]),
    ("--activation tanh", [0.05, 0.1, 0.2, 0.4, 0.8, 1.6]),
    ("--hidden 128 128 128 128 --activation tanh", [0.1, 0.2, 0.4]),
    ("--activation sigmoid", [0.2, 0.5, 1.0, 2.0, 4.0]),
    ("--hidden 128 128 --activation sigmoid", [0.5, 1.0, 2.0]),
    ("--hidden 128 128 128 128 --activation sigmoid", [0.5, 1.0, 2.0]),
    ("--hidden 30 30 30 30 --activation sigmoid", [0.5, 1.0, 2.0, 4.0]),
    ("--optimizer adam --hidden 128 128 128 128", [0.0025, 0.005]),
    ("--optimizer adam --activation sigmoid", [0.005, 0.0125]),
    ("--optimizer adam --hidden 128 128 128 128 --activation sigmoid", [0.0125, 0.05]),
    ("--optimizer sgd --hidden 128 128 128 128", [0.25, 0.5]),
    ("--loss mse", [0.2, 0.5, 1.0, 2.0, 4.0]),
    ("--loss mse --optimizer sgd", [0.5, 1.0, 2.5, 5.0, 10.0]),
    ("--loss mse --optimizer adam", [0.0025, 0.005, 0.01]),
]


def validation_accuracy(flags, lr, seed, folder):
    log = os.path.join(folder, "run.json")
    done = subprocess.run([sys.executable, SCRIPT, *flags.split(), "--lr", str(lr),
                           "--seed", str(seed), "--log", log], capture_output=True, text=True)
    if done.returncode != 0:
        return None  # diverged, for instance
    with open(log) as f:
        return json.load(f)["history"][-1]["val_acc"]


def main():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--only", nargs="+", default=[], help="rows whose flags contain these words")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default: 3)")
    args = p.parse_args()
    print("| network | lr tried: median validation accuracy, seeds 0.."
          f"{args.seeds - 1} |\n|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as folder:
        for flags, rates in ROWS:
            if args.only and not all(word in flags for word in args.only):
                continue
            cells = []
            for lr in rates:
                accs = [validation_accuracy(flags, lr, s, folder) for s in range(args.seeds)]
                ok = [a for a in accs if a is not None]
                cells.append(f"{lr:g}: " + (f"{100 * statistics.median(ok):.2f}%" if ok
                                            else "diverged"))
            print(f"| `{flags or '(default)'}` | {', '.join(cells)} |", flush=True)


if __name__ == "__main__":
    main()
