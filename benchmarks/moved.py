"""
benchmarks/moved.py: what convolution buys, measured. The MLP against the conv network of
about its size, each trained with and without the one-pixel shifts, on the test digits as
they are and moved 1 to 4 pixels (--moved: the mean over up, down, left and right).
Prints the README's table: medians over the seeds.

    python benchmarks/moved.py                 # seeds 0 1 2, ~6 minutes on two cores
    python benchmarks/moved.py --seeds 0       # one seed, ~2 minutes

Each run is `python nn_from_scratch.py FLAGS --moved 1 2 3 4 --seed S`, in its own process,
one after another, as a reader would type it; the numbers are the lines it prints.
"""

import argparse
import os
import re
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(HERE), "nn_from_scratch.py")
RECIPE = "--conv 8 16 --batch-size 128 --epochs 6"  # the README's conv recipe
NETWORKS = [  # (name, flags)
    ("MLP 784-128-10, 101,770 parameters, shifted batches (the default)", ""),
    ("the same MLP, no shifts", "--no-augment"),
    ("conv 8-16 + 128, 103,018 parameters, shifted batches", RECIPE),
    ("the same conv network, no shifts", RECIPE + " --no-augment")]
DISTANCES = (1, 2, 3, 4)


def run(flags, seed):
    """One run's test accuracy as it is and at each distance, and its training seconds."""
    command = [sys.executable, SCRIPT, *flags.split(), "--seed", str(seed), "--moved",
               *map(str, DISTANCES)]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    moved = {int(d): float(a) for d, a in re.findall(r"^test digits moved (\d+) px .*: ([\d.]+)%",
                                                     out, re.M)}
    moved[0] = float(re.search(r"^test accuracy: ([\d.]+)%", out, re.M)[1])
    return moved, float(re.search(r"^trained in ([\d.]+)s", out, re.M)[1])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = p.parse_args(argv)
    rows = []
    for name, flags in NETWORKS:
        runs = [run(flags, seed) for seed in args.seeds]
        median = lambda values: statistics.median(values)  # noqa: E731
        cells = [f"{median([r[0][d] for r in runs]):.2f}%" for d in (0, *DISTANCES)]
        rows.append(f"| {name} | " + " | ".join(cells) +
                    f" | {median([r[1] for r in runs]):.0f} s |")
        print(rows[-1], flush=True)
    print(f"\nmedians of seeds {', '.join(map(str, args.seeds))}; flags: "
          + "; ".join(f"`{flags or '(none)'}`" for _, flags in NETWORKS))
    print("\n| network | as they are | moved 1 px | 2 px | 3 px | 4 px | training |\n"
          "|---|---|---|---|---|---|---|\n" + "\n".join(rows))


if __name__ == "__main__":
    main()
