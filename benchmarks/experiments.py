"""
benchmarks/experiments.py: "what happens if I change X?" Trains with the default settings,
then with one flag changed at a time, and prints the experiments table of the README: the
test accuracy (median over seeds, and the range), the median epoch time, the whole training
time, and what each change teaches (a lesson may quote the trained network's median
accuracy on its own training images, {train}: its gap to the test accuracy is overfitting;
and {attack}, the median accuracies under --attack, one per eps).

    python benchmarks/experiments.py                          # every row, ~25 minutes:
                                                              # writes docs/experiments.md
    python benchmarks/experiments.py --only adam batch-size   # rows whose command has these
    python benchmarks/experiments.py --only adam --markdown adam.md

Each run is `python nn_from_scratch.py FLAGS --seed S --log FILE`, one after another in its
own process, exactly as a reader would type it; the numbers come from the run's --log record.
Rows that would take long train one seed, the others three (0, 1, 2). A run that fails is a
row with its error line instead of numbers.
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
sys.path.insert(0, HERE)
from compare import machine  # noqa: E402

# (flags, what they change, seeds, what the row teaches)
EXPERIMENTS = [
    ("", "nothing: the defaults", 3,
     "the row every other row changes one thing of (train {train})"),
    ("--optimizer sgd", "plain SGD, at its own lr 0.5", 3,
     "without momentum, a few tenths lower in the same 20 epochs"),
    ("--optimizer sgd --lr 0.2", "plain SGD at momentum's lr", 3,
     "momentum at 0.2 steps like SGD at 2 (0.2 / (1 - 0.9)): SGD needs a bigger lr"),
    ("--optimizer adam", "Adam, at its own lr 0.005", 3, "at its own lr, Adam matches momentum"),
    ("--optimizer adam --lr 0.001", "Adam at the textbook lr", 3,
     "the usual 1e-3 is too timid for 20 epochs of this network"),
    ("--optimizer adam --lr 0.2", "Adam at momentum's lr", 3,
     "a learning rate belongs to its optimiser: Adam's step is about lr itself"),
    ("--momentum 0.5", "less momentum", 3, "a shorter memory of past gradients: a little lower"),
    ("--momentum 0.99", "more momentum", 3,
     "steps add up over ~100 batches, so the unset lr shrinks 10x to 0.02"),
    ("--schedule step", "lr x0.1 at 50% and 75% of the run", 3,
     "any schedule that ends small does about as well as the cosine"),
    ("--schedule constant", "no learning-rate decay", 3,
     "ending at full speed leaves the weights jittering: the decay is worth most of a point"),
    ("--batch-size 16", "16 images per step", 1,
     "16x the steps, each noisier: the unset lr shrinks by sqrt(16/256); slower per epoch"),
    ("--batch-size 32", "32 images per step", 1,
     "more, noisier steps at a smaller lr: as good or better, but slower"),
    ("--batch-size 64", "64 images per step", 3,
     "more, noisier steps at a smaller lr: as good or better, but slower"),
    ("--batch-size 128", "128 images per step", 3,
     "more, noisier steps at a smaller lr: as good or better, but slower"),
    ("--batch-size 512", "512 images per step", 3, "half the steps: about as good, faster"),
    ("--batch-size 1024", "1,024 images per step", 3,
     "a quarter of the steps: in 20 epochs the network learns less"),
    ("--batch-size 2048", "2,048 images per step", 3,
     "27 steps an epoch: a big batch needs more epochs (lr 1.6 fell to 54%)"),
    ("--lr 0.05", "a quarter of the default lr", 3, "too small for 20 epochs"),
    ("--lr 0.1", "half the default lr", 3, "about as good: the best lr is a broad range"),
    ("--lr 0.4", "twice the default lr", 3, "about as good: the best lr is a broad range"),
    ("--lr 0.8", "4x the default lr", 3,
     "too big: it overshoots, and loses three points"),
    ("--lr 3", "15x the default lr", 3,
     "far too big: every ReLU dies and it answers 1 for everything (11.35% of the test set)"),
    ("--hidden 8", "8 hidden units", 3, "even 8 units learn most of MNIST"),
    ("--hidden 16", "16 hidden units", 3, "each doubling of the width helps, less each time"),
    ("--hidden 32", "32 hidden units", 3, "each doubling of the width helps, less each time"),
    ("--hidden 64", "64 hidden units", 3, "each doubling of the width helps, less each time"),
    ("--hidden 256", "256 hidden units", 3, "wider is better by less and less, and slower"),
    ("--hidden 512", "512 hidden units", 3, "wider is better by less and less, and slower"),
    ("--hidden 1024", "1,024 hidden units", 3, "8x the width, 5x the time, for a few tenths"),
    ("--hidden 128 128", "two hidden layers of 128", 3,
     "a second layer is worth a few tenths, at the same lr"),
    ("--hidden 256 128", "two hidden layers, 784-256-128-10", 3,
     "depth and width together, for twice the time"),
    ("--conv 8 16 --batch-size 128 --epochs 6", "two conv layers (8 and 16 channels of 3x3, "
     "each max-pooled) before the 128: 103,018 parameters, the MLP 101,770", 3,
     "as many weights, each filter used at every position: LeNet-5's 99.05% in under a minute"),
    ("--hidden 512 256", "two wide hidden layers", 3,
     "the best row in 20 epochs, for four times the time"),
    ("--hidden 128 128 128", "three hidden layers", 3,
     "past two layers the unset lr shrinks as 2 / depth, here to 0.133"),
    ("--hidden 128 128 128 128", "four hidden layers", 3,
     "four layers at their own lr, 0.1: better than one, not than two"),
    ("--hidden 128 128 128 128 --lr 0.2", "four hidden layers at one layer's lr", 3,
     "the classic 'deeper is worse': it is the lr, not the depth"),
    ("--activation tanh", "tanh instead of ReLU", 3, "at its own lr, 0.4, as good as ReLU"),
    ("--activation sigmoid", "sigmoid, at its own lr", 3,
     "its slope is at most 1/4: at its own lr, 0.5, a few tenths behind ReLU"),
    ("--activation sigmoid --lr 0.2", "sigmoid at ReLU's lr", 3,
     "ReLU's lr is too small a step for sigmoid: half a point lower"),
    ("--hidden 30 30 30 30 --activation sigmoid", "four sigmoid layers of 30", 3,
     "the gradient vanishes on its way down"),
    ("--hidden 30 30 30 30", "four ReLU layers of 30", 3,
     "ReLU and He initialisation keep the layers learning alike"),
    ("--epochs 1", "one pass over the data", 3, "one pass already gets ~96%"),
    ("--epochs 2", "two passes", 3, "most of the learning happens early"),
    ("--epochs 5", "five passes", 3, "a one-second run within a point of the default"),
    ("--epochs 10", "ten passes", 3, "half the time, a few tenths less"),
    ("--epochs 40", "forty passes", 3, "twice the time for about a tenth more"),
    ("--epochs 60", "sixty passes", 1, "three times the time for a few tenths more"),
    ("--weight-decay 0", "no L2 penalty", 3, "the weight decay is worth about a tenth of a point"),
    ("--weight-decay 0.002", "10x the L2 penalty", 3,
     "too strong a penalty keeps the weights too small to fit the data"),
    ("--no-augment", "no shifted batches", 3,
     "showing each batch a pixel off is worth about half a point"),
    ("--subset 10", "10 training images", 3, "ten images, one or two per digit: 3x chance"),
    ("--subset 100", "100 training images", 3, "a hundred images: three in four right"),
    ("--subset 1000", "1,000 training images", 3, "a thousand images: nine in ten right"),
    ("--subset 10000", "10,000 training images", 3,
     "a fifth of the data: within a point and a half"),
    ("--dataset digits", "scikit-learn's 8x8 digits", 3,
     "1,797 tiny images, no download, trained in a blink"),
    ("--dtype float64", "double precision", 3,
     "twice the precision: the same accuracy, twice the time"),
    ("--hidden 800 --epochs 60 --no-augment", "LeCun's 2-layer MLP: 800 units", 1,
     "train {train}: LeCun's MNIST page lists 1.6% error for it (cross-entropy)"),
    ("--hidden 800 --epochs 60", "the same, with shifted batches", 1,
     "LeCun's page lists 1.1% error with affine distortions"),
    ("--init zeros", "every weight starts at 0", 3,
     "every unit the same, and ReLU's slope at 0 is 0: only the output biases learn, so it "
     "answers 1"),
    ("--init zeros --activation sigmoid", "every weight 0, sigmoid", 3,
     "the units learn, but alike: one feature 128 times over"),
    ("--init zeros --activation sigmoid --dtype float64", "the same in float64", 3,
     "the symmetry is exact on every CPU (float32 may round a few units apart)"),
    ("--init normal", "weights from N(0, 1)", 3,
     "far too large: a first loss of 71, and 73% of the ReLUs dead by epoch 2"),
    ("--init normal --activation sigmoid", "N(0, 1), sigmoid", 3,
     "sigmoids saturate instead of dying, and come back: within a tenth of Glorot's"),
    ("--loss mse", "squared error, at its own lr 0.5", 3,
     "it learns least from confident mistakes: behind cross-entropy from epoch 1"),
    ("--loss mse --lr 0.2", "squared error at cross-entropy's lr", 3,
     "its gradient carries the softmax's slope: at cross-entropy's lr, too small a step"),
    ("--subset 1000 --hidden 800 --epochs 200 --no-augment", "a big network, 1,000 images", 3,
     "train {train}: 800 units memorise 1,000 images, and miss one test digit in ten"),
    ("--subset 1000 --hidden 800 --epochs 200 --no-augment --dropout 0.5",
     "the same, dropping half the units", 3,
     "train {train}: still memorised, but a point better on new digits"),
    ("--dropout 0.2", "a fifth of the hidden units dropped", 3,
     "train {train}: the default hardly overfits, so dropout only costs"),
    ("--dropout 0.5", "half the hidden units dropped", 3,
     "train {train}: half the units gone at each step: too little left in 20 epochs"),
    ("--hidden 800 --epochs 60 --no-augment --dropout 0.2", "LeCun's MLP, dropout 0.2", 1,
     "train {train}: where 800 units overfit, dropout helps"),
    ("--hidden 800 --epochs 60 --no-augment --dropout 0.5", "LeCun's MLP, dropout 0.5", 1,
     "train {train}: where 800 units overfit, dropout helps"),
    ("--attack 0.05 0.1 0.2", "fooled: every pixel moved by eps against it", 3,
     "test accuracy under FGSM at eps 0.05, 0.1, 0.2: {attack}"),
    ("--hidden 256 128 --attack 0.05 0.1 0.2", "the same, two hidden layers", 3,
     "{attack}: deeper is a little harder to fool, no more"),
    ("--activation sigmoid --attack 0.05 0.1 0.2", "the same, sigmoid", 3,
     "{attack}: smoother is a little harder to fool, no more"),
    ("--no-augment --attack 0.05 0.1 0.2", "the same, trained without shifts", 3,
     "{attack}: shifted batches are no defence"),
]


def run(flags, seed, folder):
    """One run of the script: {'accuracy', 'epoch', 'training'} from its --log, or {'error'}."""
    log = os.path.join(folder, "run.json")
    done = subprocess.run([sys.executable, SCRIPT, *flags.split(), "--seed", str(seed),
                           "--log", log], capture_output=True, text=True)
    if done.returncode != 0:
        return {"error": (done.stderr.strip().splitlines() or ["exit code "
                                                               f"{done.returncode}"])[-1]}
    with open(log) as f:
        record = json.load(f)
    seconds = [r["seconds"] for r in record["history"]]
    speeds = record["history"][0]["db_norm"][:-1]  # the hidden layers', in epoch 1
    return {"accuracy": record["test_accuracy"], "epoch": statistics.median(seconds),
            "training": sum(seconds), "speeds": speeds, "train": record["train_accuracy"],
            "attack": [r["accuracy"] for r in record.get("attack", [])]}


def summarise(flags, changes, lesson, runs):
    command = f"`{f'python nn_from_scratch.py {flags}'.strip()}`"
    errors = [r["error"] for r in runs if "error" in r]
    if errors:
        return [command, changes, errors[0], "", "", lesson]
    accuracy = sorted(100 * r["accuracy"] for r in runs)
    lesson = lesson.replace("{train}", f"{statistics.median(100 * r['train'] for r in runs):.2f}%")
    lesson = lesson.replace("{attack}", " / ".join(  # the median accuracy under each eps
        f"{statistics.median(100 * a for a in eps):.1f}%" for eps in zip(*(r["attack"]
                                                                          for r in runs))))
    hidden = len(runs[0]["speeds"])
    if hidden >= 2:  # how much slower the first hidden layer learns than the last
        ratio = statistics.median(r["speeds"][0] / r["speeds"][-1] for r in runs)
        lesson += (f": in epoch 1, layer 1 learns {1 / ratio:.0f}x slower than layer {hidden}"
                   if ratio < 0.5 else f" (epoch 1: layer 1 at {ratio:.2g}x layer {hidden}'s "
                   "speed)")
    spread = f" ({accuracy[0]:.2f}-{accuracy[-1]:.2f})" if len(runs) > 1 else ""
    return [command, changes, f"{statistics.median(accuracy):.2f}%{spread}",
            seconds(statistics.median(r["epoch"] for r in runs)),
            f"{statistics.median(r['training'] for r in runs):.1f} s", lesson]


def seconds(t):
    return f"{t:.2f} s" if t >= 0.1 else f"{1000 * t:.0f} ms"


HEADER = ["command", "what it changes", "test accuracy (range)", "epoch", "training",
          "what it teaches"]
PAGE = os.path.join(os.path.dirname(HERE), "docs", "experiments.md")


def page(table, machine_line):
    """docs/experiments.md: every row, with how they were made. The README shows a dozen."""
    return "\n".join([
        "# Experiments: what happens if I change X?", "",
        "Each row is the default run with one thing changed, exactly as you would type it; the",
        "test accuracy is the median over seeds 0, 1 and 2 (one seed where a run takes long), with",
        "the range. A flag you leave unset suits the ones you set (each optimiser its own learning",
        "rate, a smaller one for a smaller batch or more momentum or depth); the run's second line",
        "says which. `python benchmarks/experiments.py` wrote this page (~25 minutes; `--only",
        "WORD...` runs the rows whose flags have these words). The README's [experiments",
        "table](../README.md#experiments-what-happens-if-i-change-x) shows a dozen of them.", "",
        f"{machine_line}; `python benchmarks/experiments.py`", "",
        "| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER),
        *("| " + " | ".join(row) + " |" for row in table), "",
        "The times come from a shared machine whose speed drifts from minute to minute (compare",
        "rows, not single figures); the accuracies do not drift. The two `--hidden 800 --epochs",
        "60` rows set this network beside the 2-layer MLPs on [LeCun's MNIST",
        "page](http://yann.lecun.com/exdb/mnist/): 800 hidden units, 1.6% error, and 1.1% with",
        "affine distortions.", ""])


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="+", metavar="WORD",
                   help="run only the rows whose flags contain one of these words")
    p.add_argument("--seeds", type=int, default=None, metavar="N",
                   help="at most N seeds per row (default: each row's own, 1 or 3)")
    p.add_argument("--markdown", metavar="FILE",
                   help="write the page of the table there (default: docs/experiments.md, "
                        "for a run of every row)")
    args = p.parse_args(argv)
    rows = [e for e in EXPERIMENTS if not args.only or any(w in e[0] for w in args.only)]
    if not rows:
        p.exit(2, f"{p.prog}: error: no row's flags contain {' or '.join(args.only)}\n")
    print(machine(os.cpu_count()), flush=True)
    table = []
    with tempfile.TemporaryDirectory() as folder:
        for flags, changes, seeds, lesson in rows:
            seeds = min(seeds, args.seeds or seeds)
            runs = [run(flags, seed, folder) for seed in range(seeds)]
            table.append(summarise(flags, changes, lesson, runs))
            print(" | ".join(table[-1]), flush=True)
    path = args.markdown or (None if args.only or args.seeds else PAGE)  # some rows: no page
    if path:
        with open(path, "w") as f:
            f.write(page(table, machine(os.cpu_count())))
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
