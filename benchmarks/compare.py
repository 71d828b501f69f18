"""
benchmarks/compare.py: the same network (784-128-10 by default) trained on the same MNIST
split by this project (NumPy), by scikit-learn's MLPClassifier and by PyTorch on the CPU,
side by side. PyTorch twice: as the recipe is written most simply, and tuned as a strong
user would (fused SGD, one inter-op thread, evaluation under inference_mode); a third,
compiled row (torch.compile) on request: --systems ... pytorch_compiled.

    python benchmarks/compare.py                              # seeds 0 1 2, ~6 minutes
    python benchmarks/compare.py --hidden 256 128             # the deep network, 784-256-128-10
    python benchmarks/compare.py --conv 8 16 --batch-size 128 --epochs 6 --systems \
        nn_from_scratch pytorch pytorch_tuned                 # the conv recipe, ~15 minutes
    python benchmarks/compare.py --markdown results.md        # also write docs/benchmark.md's table
    python benchmarks/compare.py --seeds 0 --epochs 1 --subset 5000   # a 30-second smoke run
    python benchmarks/compare.py --systems nn_from_scratch pytorch pytorch_tuned pytorch_compiled

Each (system, seed) trains in its own process, so that its peak memory is its own and no
system warms the caches for another; the runs are interleaved (seed 0 of every system, then
seed 1, ...) so that a machine that gets busier or cooler affects all of them alike. Every
process gets the same number of BLAS / OpenMP threads. Medians over the seeds are reported.

What is measured, per system:
  epoch       median seconds of one training epoch (training steps only, no evaluation)
  x floor     that, as a multiple of the floor: the time NumPy's matrix multiplies alone
              take for one epoch of this network's products at the same batch size
              (for 784-128-10: X W1, A1 W2, dZ2 W2^T, A1^T dZ2, X^T dZ1; the first layer
              needs no dX)
  to 97.5%    training seconds until the test accuracy, measured after each epoch,
  to 98.0%    first reaches 97.5% / 98.0% (the evaluation time is not counted)
  final       test accuracy after the last epoch (median, and the lowest seed)
  memory      peak resident memory of the process (MNIST as uint8 is 55 MB of it)
and, below the table, PyTorch's own floor: the same products in PyTorch, in its process
(its matrix multiplies are MKL's on Intel CPUs, where NumPy's are OpenBLAS's).

Needs numpy and scikit-learn (requirements.txt). PyTorch is optional: without it its rows
are skipped with a note (a CPU build is enough; pytorch.org gives the pip command).
"""

import argparse
import importlib.metadata
import importlib.util
import json
import math
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import nn_from_scratch as nn  # noqa: E402

# scikit-learn's best SGD setting: learning_rate_init in {0.05, 0.1, 0.2, 0.4} x batch_size
# in {128, 256}, Nesterov momentum 0.9, constant rate, 20 epochs, compared by validation
# accuracy (seed 0): `python benchmarks/compare.py --search-sklearn`. Measured: batch 256 and
# lr 0.2 best at 97.60% (lr 0.1: 97.44%; batch 128, lr 0.1: 97.54%).
SKLEARN_SGD = dict(solver="sgd", learning_rate_init=0.2, batch_size=256, momentum=0.9,
                   nesterovs_momentum=True, learning_rate="constant")

# Every run gets the allocator settings that `python nn_from_scratch.py` makes for itself
# (see keep_freed_memory there): glibc keeps freed memory instead of returning it to the OS.
MALLOC_SETTINGS = {"MALLOC_TRIM_THRESHOLD_": str(1 << 30), "MALLOC_MMAP_THRESHOLD_": str(32 << 20)}

BATCH_SIZES = {"nn_from_scratch": nn.BATCH_SIZE, "pytorch": nn.BATCH_SIZE,
               "pytorch_tuned": nn.BATCH_SIZE, "pytorch_compiled": nn.BATCH_SIZE,
               "sklearn_sgd": SKLEARN_SGD["batch_size"], "sklearn_adam": 200}  # Adam: "auto"

SYSTEMS = {
    "nn_from_scratch": "this project, default settings (NumPy, float32)",
    "pytorch": "PyTorch: the same network, optimiser, schedule, batches and shifts (float32)",
    "pytorch_tuned": "PyTorch, tuned: the same, with fused SGD, one inter-op thread and "
                     "evaluation under inference_mode",
    "pytorch_compiled": "PyTorch, tuned and torch.compile'd (the compiling is in its first "
                        "epoch)",
    "sklearn_sgd": "scikit-learn MLPClassifier, best SGD setting (no shifts)",
    "sklearn_adam": "scikit-learn MLPClassifier, default: Adam (no shifts)",
}


# ----------------------------------------------------------------------------
# The data: the same split as `python nn_from_scratch.py --seed S`

def load_split(seed, subset=None):
    """(X_train, y_train, X_test, y_test) as uint8: 55,000 training images (5,000 of the
    60,000 held out for validation, as the script does), the 10,000 test images."""
    X, y = nn.load_mnist()
    X_train, y_train, X_test, y_test = nn.split_mnist(X, y)
    X_train, y_train, _, _ = nn.hold_out(X_train, y_train, nn.VAL_SIZE,
                                         np.random.default_rng(seed))
    if subset:
        X_train, y_train = X_train[:subset], y_train[:subset]
    return X_train, y_train, X_test, y_test


# ----------------------------------------------------------------------------
# One training run per system. Each returns a list of (epoch seconds, test accuracy).

def run_nn_from_scratch(data, seed, epochs, hidden, conv=(), batch=nn.BATCH_SIZE):
    X_train, y_train, X_test, y_test = data
    # The test set stands in for the validation slice here only to be measured after each
    # epoch; the defaults were chosen on the validation slice, never on it.
    _, history = nn.train(X_train, y_train, X_test, y_test, hidden=hidden, epochs=epochs,
                          seed=seed, conv=conv, batch_size=batch,
                          log=None)  # shifted batches, as the command line
    return [(r["seconds"], r["val_acc"]) for r in history]


def run_pytorch(data, seed, epochs, threads, hidden, tuned=False, compiled=False,
                sgd="fused", conv=(), batch=nn.BATCH_SIZE):
    """tuned: what a strong PyTorch user reaches for first (docs/benchmark.md); compiled:
    that and torch.compile. sgd: the tuned rows' implementation of SGD (--torch-sgd)."""
    import torch
    torch.set_num_threads(threads)
    if tuned:
        # The network is one chain of operations: nothing can run beside anything else, so
        # one inter-op thread, and the cores are left to the intra-op (BLAS, OpenMP) threads.
        torch.set_num_interop_threads(1)
    torch.set_flush_denormal(True)  # what flush_denormals does for ours, in hardware
    torch.manual_seed(seed)
    X_train, y_train, X_test, y_test = data
    X = torch.from_numpy(X_train)                            # preloaded uint8, as ours
    y = torch.from_numpy(y_train.astype(np.int64))
    X_t = torch.from_numpy(nn.scale_pixels(X_test))
    sizes = nn.layer_sizes(conv[-1] * (28 >> len(conv)) ** 2 if conv else 784, hidden, 10)
    convs = [torch.nn.Conv2d(C, F, 3, padding=1) for C, F in zip((1, *conv), conv)]
    layers = [torch.nn.Linear(a, b) for a, b in zip(sizes, sizes[1:])]
    model = torch.nn.Sequential(  # ours: max-pool, then the activation; the same numbers
        *([torch.nn.Unflatten(1, (1, 28, 28))] if conv else []),
        *[m for c in convs for m in (c, torch.nn.ReLU(), torch.nn.MaxPool2d(2))],
        *([torch.nn.Flatten()] if conv else []),
        *[m for layer in layers[:-1] for m in (layer, torch.nn.ReLU())], layers[-1])
    layers = convs + layers
    for layer in layers:                                     # He initialisation, zero biases
        torch.nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
        torch.nn.init.zeros_(layer.bias)
    lr = nn.default_lr(nn.OPTIMIZER, batch_size=batch, n_train=len(X),
                       depth=len(sizes) - 2 + len(conv))  # the rate ours takes when unset
    # Tuned: fused=True updates each parameter, its velocity and its weight decay in one
    # kernel, one pass, instead of one operation per term and parameter (the default on the
    # CPU, "for-loop") or one per term over all parameters (foreach=True). Measured with
    # --torch-sgd (docs/benchmark.md), fused and the for-loop tied and foreach was 5%
    # slower; fused is the one PyTorch documents as the fastest.
    implementation = {"fused": {"fused": True}, "foreach": {"foreach": True},
                      "for-loop": {"foreach": False}}[sgd] if tuned else {}
    optimizer = torch.optim.SGD([{"params": [m.weight for m in layers],
                                  "weight_decay": nn.WEIGHT_DECAY},
                                 {"params": [m.bias for m in layers], "weight_decay": 0.0}],
                                lr=lr, momentum=nn.MOMENTUM, **implementation)
    forward = model
    if compiled:
        # torch.compile traces the forward and backward graphs and generates fused C++ for
        # them; the first step compiles (seconds, counted in the first epoch's time).
        forward = torch.compile(model)
    # Evaluation: inference_mode records nothing for autograd at all (no_grad still tracks
    # versions of tensors); it is not in the epoch's time, only in the tuned row's habits.
    evaluating = torch.inference_mode if tuned else torch.no_grad
    n = len(X)
    steps = math.ceil(n / batch)
    generator = torch.Generator().manual_seed(seed)
    results = []
    for epoch in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n, generator=generator)
        for b in range(steps):
            idx = order[b * batch:(b + 1) * batch]
            images = shift_images_torch(X[idx], generator) if nn.AUGMENT else X[idx]
            for group in optimizer.param_groups:             # the same cosine, per step
                group["lr"] = nn.learning_rate(lr, epoch * steps + b, epochs * steps)
            loss = torch.nn.functional.cross_entropy(forward(images.float() / 255), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        seconds = time.perf_counter() - start
        with evaluating():
            accuracy = (model(X_t).argmax(1).numpy() == y_test).mean()
        results.append((seconds, float(accuracy)))
    return results


def shift_images_torch(X, generator):
    """nn.shift_images in PyTorch: the batch X (B, 784) moved by one random offset of at most
    a pixel, zero-filled."""
    import torch
    dy, dx = torch.randint(-1, 2, (2,), generator=generator).tolist()
    images = X.view(-1, 28, 28)
    moved = torch.zeros_like(images)
    moved[:, max(dy, 0):28 + min(dy, 0), max(dx, 0):28 + min(dx, 0)] = \
        images[:, max(-dy, 0):28 + min(-dy, 0), max(-dx, 0):28 + min(-dx, 0)]
    return moved.view(-1, 784)


def run_sklearn(data, seed, epochs, hidden=(nn.HIDDEN,), **settings):
    import warnings
    from sklearn.neural_network import MLPClassifier
    X_train, y_train, X_test, y_test = data
    X, X_t = nn.scale_pixels(X_train), nn.scale_pixels(X_test)  # float32: MLP keeps it
    model = MLPClassifier(hidden_layer_sizes=tuple(hidden), random_state=seed, **settings)
    results = []
    for epoch in range(epochs):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.partial_fit(X, y_train, classes=np.arange(10))  # one shuffled epoch
        seconds = time.perf_counter() - start
        results.append((seconds, float((model.predict(X_t) == y_test).mean())))
    return results


def run_system(system, seed, epochs, sklearn_epochs, subset, threads, hidden, sgd="fused",
               conv=(), batch=None):
    data = load_split(seed, subset)
    batch = batch or BATCH_SIZES[system]
    # here and now: the same machine state
    sizes = nn.layer_sizes(784, hidden, 10)
    floor = matmul_floor(batch, n=len(data[1]), sizes=sizes) if not conv else None
    own_floor = None  # PyTorch's own products (MKL on Intel), where NumPy's are OpenBLAS's
    if system.startswith("pytorch") and not conv:
        import torch
        torch.set_num_threads(threads)
        own_floor = matmul_floor(batch, n=len(data[1]), sizes=sizes, tensor=torch.from_numpy)
    if system == "nn_from_scratch":
        results = run_nn_from_scratch(data, seed, epochs, hidden, conv, batch)
    elif system.startswith("pytorch"):
        results = run_pytorch(data, seed, epochs, threads, hidden,
                              tuned=system != "pytorch", compiled=system == "pytorch_compiled",
                              sgd=sgd, conv=conv, batch=batch)
    elif system == "sklearn_sgd":
        results = run_sklearn(data, seed, sklearn_epochs, hidden, **SKLEARN_SGD)
    else:
        results = run_sklearn(data, seed, sklearn_epochs, hidden)
    return {"system": system, "seed": seed, "batch": batch, "epochs": results, "floor": floor,
            "own_floor": own_floor, "peak_mib": peak_memory_mib()}


def peak_memory_mib():
    """Peak resident memory of this process. Linux's VmHWM, not ru_maxrss: that one keeps the
    parent's peak across the fork and exec that started this process."""
    try:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ----------------------------------------------------------------------------
# The floor: NumPy's matrix multiplies alone, for one epoch at the shapes used

def matmul_floor(batch_size, n=55000, sizes=(784, nn.HIDDEN, 10), repeats=5, tensor=None):
    """Median seconds of one epoch's matrix products, in float32: per step and layer l,
    A_(l-1) W_l (forward), A_(l-1)^T dZ_l and, above the first layer, dZ_l W_l^T
    (backward). For 784-128-10: X W1, A1 W2, A1^T dZ2, dZ2 W2^T, X^T dZ1. tensor: time
    another library's products instead of NumPy's (torch.from_numpy: PyTorch's)."""
    rng = np.random.default_rng(0)
    tensor = tensor or (lambda a: a)
    A = [tensor(rng.random((batch_size, m), dtype=np.float32)) for m in sizes]   # A[0] = X
    W = [None] + [tensor(rng.random((a, b), dtype=np.float32)) for a, b in zip(sizes, sizes[1:])]
    dZ = A  # any array of the same shape will do
    L = len(sizes) - 1
    steps = n // batch_size  # full batches; the last, partial one is left out: a floor
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            for l in range(1, L + 1):
                A[l - 1] @ W[l]
            for l in range(L, 0, -1):
                A[l - 1].T @ dZ[l]
                if l > 1:
                    dZ[l] @ W[l].T
        times.append(time.perf_counter() - start)
    return statistics.median(times)


# ----------------------------------------------------------------------------
# Running everything and the tables

def time_to(results, threshold):
    """Training seconds until the test accuracy first reaches threshold, or None."""
    total = 0.0
    for seconds, acc in results:
        total += seconds
        if acc >= threshold:
            return total
    return None


def summarise(runs):
    rows = []
    for system in SYSTEMS:
        mine = [r for r in runs if r["system"] == system]
        if not mine:
            continue
        # torch.compile compiles in the first epoch: its cost is shown apart (first_epoch),
        # and counted in the time to 97.5% and 98%, but not in the median epoch
        timed = [r["epochs"][1:] if system == "pytorch_compiled" and len(r["epochs"]) > 1
                 else r["epochs"] for r in mine]
        epoch = statistics.median(s for epochs in timed for s, _ in epochs)
        # each run against the floor measured in its own process just before it trained
        floor_ratio = statistics.median(statistics.median(s for s, _ in epochs) / r["floor"]
                                        for r, epochs in zip(mine, timed)) \
            if mine[0]["floor"] else None  # (no floor for conv networks)
        finals = [r["epochs"][-1][1] for r in mine]
        reach = {}
        for threshold in (0.975, 0.98):
            times = [time_to(r["epochs"], threshold) for r in mine]
            # the median over seeds; a seed that never gets there counts as infinitely slow
            reach[threshold] = statistics.median(t if t is not None else math.inf for t in times)
        rows.append({"system": system, "batch": mine[0]["batch"], "epoch": epoch,
                     "floor": statistics.median(r["floor"] for r in mine) if floor_ratio else None,
                     "own_floor": statistics.median(r["own_floor"] for r in mine)
                     if mine[0].get("own_floor") else None,
                     "floor_ratio": floor_ratio,
                     "to_975": reach[0.975], "to_98": reach[0.98],
                     "final": statistics.median(finals), "final_min": min(finals),
                     "epochs": len(mine[0]["epochs"]),
                     "first_epoch": statistics.median(r["epochs"][0][0] for r in mine),
                     "memory": statistics.median(r["peak_mib"] for r in mine)})
    return rows


def fmt_time(t):
    return "never" if t == math.inf else f"{t:.1f} s"


def ratio(a, b):
    return "n/a (not reached)" if math.inf in (a, b) else f"{a / b:.2f}"


def table(rows, markdown=False):
    head = ["system", "batch", "epoch", "floor", "x floor", "to 97.5%", "to 98.0%",
            "final (min)", "epochs", "memory"]
    body = [[SYSTEMS[r["system"]] if markdown else r["system"], str(r["batch"]),
             f"{r['epoch']:.3f} s", f"{r['floor']:.3f} s" if r["floor"] else "-",
             f"{r['floor_ratio']:.2f}x" if r["floor"] else "-",
             fmt_time(r["to_975"]),
             fmt_time(r["to_98"]), f"{100 * r['final']:.2f}% ({100 * r['final_min']:.2f}%)",
             str(r["epochs"]), f"{r['memory']:.0f} MiB"] for r in rows]
    if markdown:
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in body])
    widths = [max(len(x) for x in column) for column in zip(head, *body)]
    return "\n".join("  ".join(x.ljust(w) for x, w in zip(row, widths)) for row in [head, *body])


def ratios(rows):
    """The targets, as ratios from this run."""
    by = {r["system"]: r for r in rows}
    if "nn_from_scratch" not in by:
        return []
    ours = by["nn_from_scratch"]
    lines = []
    sklearn_best = min((by[s]["to_98"] for s in ("sklearn_sgd", "sklearn_adam") if s in by),
                       default=None)
    if sklearn_best == math.inf:
        lines.append("time to 98.0%: scikit-learn never got there (target: <= 0.5 x its "
                     "fastest setting)")
    elif sklearn_best:
        lines.append(f"time to 98.0%: {ratio(ours['to_98'], sklearn_best)} x scikit-learn's "
                     "fastest setting (target <= 0.5)")
    for system, name, targets in (("pytorch", "PyTorch's", ("", "")),
                                  ("pytorch_tuned", "the tuned PyTorch's",
                                   (" (target <= 0.75)", " (target <= 1.0)")),
                                  ("pytorch_compiled", "the compiled PyTorch's", ("", ""))):
        if system in by:
            lines.append(f"time to 98.0%: {ratio(ours['to_98'], by[system]['to_98'])} x "
                         f"{name}{targets[0]}")
            lines.append(f"epoch time at batch {ours['batch']}: "
                         f"{ours['epoch'] / by[system]['epoch']:.2f} x {name}{targets[1]}")
    if "pytorch_compiled" in by:
        first = by["pytorch_compiled"]["first_epoch"]
        lines.append(f"torch.compile: its first epoch took {first:.1f} s, compiling included; "
                     f"then {by['pytorch_compiled']['epoch']:.3f} s an epoch")
    same = [s for s in ("sklearn_sgd", "sklearn_adam") if s in by and by[s]["batch"] == ours["batch"]]
    for s in same:
        lines.append(f"epoch time at batch {ours['batch']}: "
                     f"{ours['epoch'] / by[s]['epoch']:.2f} x {s}'s (target <= 0.75)")
    if ours["floor"]:
        lines.append(f"epoch time: {ours['floor_ratio']:.2f} x the NumPy matmul floor "
                     "(target <= 2.0)")
    torch_floor = next((by[s]["own_floor"] for s in ("pytorch_tuned", "pytorch") if s in by), None)
    if torch_floor:
        lines.append(f"the matrix products alone: NumPy's {ours['floor']:.3f} s an epoch, "
                     f"PyTorch's {torch_floor:.3f} s ({ours['floor'] / torch_floor:.2f}x)")
    return lines


def search_sklearn(epochs, seed=0):
    """Each SGD setting's validation accuracy after `epochs` epochs (the test set unused)."""
    X, y = nn.load_mnist()
    X_train, y_train, _, _ = nn.split_mnist(X, y)
    X_train, y_train, X_val, y_val = nn.hold_out(X_train, y_train, nn.VAL_SIZE,
                                                 np.random.default_rng(seed))
    results = []
    for batch_size in (128, 256):
        for lr in (0.05, 0.1, 0.2, 0.4):
            settings = {**SKLEARN_SGD, "batch_size": batch_size, "learning_rate_init": lr}
            runs = run_sklearn((X_train, y_train, X_val, y_val), seed, epochs, **settings)
            results.append((runs[-1][1], batch_size, lr))
            print(f"batch {batch_size:3d}  lr {lr:<4}  validation {100 * runs[-1][1]:.2f}%  "
                  f"{sum(s for s, _ in runs):.1f} s", flush=True)
    best = max(results)
    print(f"best: batch_size={best[1]}, learning_rate_init={best[2]}")
    return 0


def machine(threads):
    cpu = "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = [f"Python {platform.python_version()}", f"NumPy {np.__version__}"]
    for name in ("scikit-learn", "torch"):  # read without importing them (torch takes ~3 s)
        try:
            versions.append(f"{name} {importlib.metadata.version(name)}")
        except importlib.metadata.PackageNotFoundError:
            pass
    return f"{cpu}, {os.cpu_count()} cores, {threads} threads per run; " + ", ".join(versions)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--epochs", type=int, default=nn.EPOCHS,
                   help="epochs for this project and PyTorch (default: its default)")
    p.add_argument("--sklearn-epochs", type=int, default=20,
                   help="epochs for scikit-learn, whose Adam needs more (default: 20)")
    p.add_argument("--subset", type=int, default=None, help="train on the first N images only")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help="BLAS / OpenMP threads for every system (default: all cores)")
    p.add_argument("--systems", nargs="+", choices=list(SYSTEMS),
                   default=[s for s in SYSTEMS if s != "pytorch_compiled"],
                   help="(default: all but pytorch_compiled, which needs a C++ compiler and "
                        "was slower; ask for it by name)")
    p.add_argument("--hidden", type=int, nargs="+", default=[nn.HIDDEN], metavar="W",
                   help=f"one width per hidden layer, for every system (default: {nn.HIDDEN})")
    p.add_argument("--conv", type=int, nargs="+", default=[], metavar="C",
                   help="conv layers of C channels before the hidden ones (this project and "
                        "PyTorch only; no matmul floor)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="the batch of every system (default: each one's own)")
    p.add_argument("--torch-sgd", choices=["fused", "foreach", "for-loop"], default="fused",
                   help="the tuned PyTorch rows' SGD implementation (default: fused)")
    p.add_argument("--markdown", metavar="FILE", help="also write the table as Markdown")
    p.add_argument("--search-sklearn", action="store_true",
                   help="find scikit-learn's best SGD setting on the validation slice")
    p.add_argument("--worker", nargs=2, metavar=("SYSTEM", "SEED"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.search_sklearn:
        return search_sklearn(args.sklearn_epochs)

    if args.worker:  # one run, in this process, with the result as JSON on stdout
        system, seed = args.worker[0], int(args.worker[1])
        print(json.dumps(run_system(system, seed, args.epochs, args.sklearn_epochs, args.subset,
                                    args.threads, args.hidden, args.torch_sgd, args.conv,
                                    args.batch_size)))
        return 0
    return orchestrate(args)


def orchestrate(args):
    systems = list(args.systems)
    if any(s.startswith("pytorch") for s in systems) and importlib.util.find_spec("torch") is None:
        print("note: PyTorch is not installed; its rows are skipped (pip install torch, CPU build)")
        systems = [s for s in systems if not s.startswith("pytorch")]
    env = {**os.environ, **{k: str(args.threads) for k in
                           ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")},
           **MALLOC_SETTINGS}
    network = (f"conv {'-'.join(map(str, args.conv))} + " if args.conv else "") + \
        "-".join(map(str, nn.layer_sizes(784, args.hidden, 10, args.conv)))
    print(f"network {network}; {machine(args.threads)}", flush=True)
    runs = []
    for seed in args.seeds:
        for system in systems:
            command = [sys.executable, os.path.abspath(__file__), "--worker", system, str(seed),
                       "--epochs", str(args.epochs), "--sklearn-epochs", str(args.sklearn_epochs),
                       "--threads", str(args.threads), "--torch-sgd", args.torch_sgd,
                       "--hidden", *map(str, args.hidden)]
            if args.subset:
                command += ["--subset", str(args.subset)]
            command += ["--conv", *map(str, args.conv)] if args.conv else []
            command += ["--batch-size", str(args.batch_size)] if args.batch_size else []
            done = subprocess.run(command, capture_output=True, text=True, env=env)
            if done.returncode != 0:
                sys.exit(f"{system} seed {seed} failed:\n{done.stderr}")
            run = json.loads(done.stdout.splitlines()[-1])
            runs.append(run)
            last = run["epochs"][-1]
            print(f"  seed {seed}  {system:<16} {len(run['epochs'])} epochs, "
                  f"{sum(s for s, _ in run['epochs']):5.1f} s, test {100 * last[1]:.2f}%",
                  flush=True)
    rows = summarise(runs)
    print()
    print(table(rows))
    print()
    for line in ratios(rows):
        print(line)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(f"network {network}; {machine(args.threads)}; medians over seeds "
                    f"{', '.join(map(str, args.seeds))}\n\n{table(rows, markdown=True)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
