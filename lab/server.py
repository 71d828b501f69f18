"""
The lab: python nn_from_scratch.py --serve. Start runs from a browser, watch them learn
side by side, and draw a digit for any of them to read.

The network and its command line are nn_from_scratch.py; this module is its server, and
the page is three files beside it, index.html, lab.css and lab.js, served by fixed name
from FILES: no path in a request ever reaches the file system. Standard library only; the
page fetches nothing from outside. A run started from the page is the command line's run:
its flags are read by nn.make_parser() and checked by nn.check_args(), and it is trained
and reported by nn.run_and_report(). Your digit is prepared on the server with
nn.mnist_style, as --predict does.
"""

import argparse
import base64
import http.server
import ipaddress
import json
import math
import os
import re
import shlex
import socket
import sys
import threading
import time
import urllib.parse

import numpy as np

import nn_from_scratch as nn

HERE = os.path.dirname(os.path.abspath(__file__))
FILES = {"/": ("index.html", "text/html; charset=utf-8"),  # (what GET path answers, its type)
         "/lab.css": ("lab.css", "text/css; charset=utf-8"),
         "/lab.js": ("lab.js", "text/javascript; charset=utf-8")}

MAX_BODY = 2_000_000      # bytes of JSON a request may send: a 280x280 pad is ~105 KB
MAX_PIXELS = 1000 * 1000  # the largest pad (width x height) accepted


class RequestError(ValueError):
    """A request that cannot be answered: RequestError(HTTP status, a one-line reason)."""


def read_json(body, expected=""):
    """A request's body as a JSON object, or RequestError(400) in one line."""
    try:
        request = json.loads(body)
    except (ValueError, UnicodeDecodeError) as e:
        raise RequestError(400, f"the body is not JSON ({e})") from None
    if not isinstance(request, dict):
        raise RequestError(400, f"expected a JSON object {expected}".strip())
    return request


def predict_request(params, body):
    """POST /predict. body: JSON {"width": W, "height": H, "pixels": base64 of W*H bytes,
    8-bit grayscale, row by row, either ink colour}. Returns the label, the ten
    probabilities, the 28x28 image the network sees (784 ints 0..255), the first hidden
    layer's activations A1 and, for a deeper network, each further hidden layer's
    [A2, ..., A(L-1)], and the saliency |dloss/dx| (784 ints 0..255); with "fool": true,
    also "fooled", the least eps that changes the answer, what it becomes and the image
    (or null up to 0.5); raises RequestError for anything else."""
    request = read_json(body, "with width, height and pixels")
    missing = [key for key in ("width", "height", "pixels") if key not in request]
    if missing:
        raise RequestError(400, f"missing {', '.join(missing)}; expected width, height, pixels")
    w, h, pixels = request["width"], request["height"], request["pixels"]
    if not all(type(n) is int and n > 0 for n in (w, h)):
        raise RequestError(400, "width and height must be positive whole numbers")
    if w * h > MAX_PIXELS:
        raise RequestError(400, f"a {w}x{h} pad is more than {MAX_PIXELS:,} pixels")
    try:
        raw = base64.b64decode(pixels, validate=True)
    except (TypeError, ValueError):  # binascii.Error is a ValueError
        raise RequestError(400, "pixels must be a base64 string of 8-bit gray values") from None
    if len(raw) != w * h:
        raise RequestError(400, f"a {w}x{h} pad has {w * h:,} pixels; pixels holds {len(raw):,}"
                                " bytes")
    try:
        x = nn.mnist_style(np.frombuffer(raw, dtype=np.uint8).reshape(h, w).astype(np.float64))
    except nn.DataError as e:  # a blank pad: nothing to guess
        raise RequestError(422, str(e)) from None
    X = nn.scale_pixels(x[None], params["W1"].dtype)   # (1, 784)
    cache = nn.forward_prop(params, X)
    dense = cache[-2 * nn.depth(params):]             # after a conv network's maps
    hidden = [A[0].tolist() for A in dense[1:-1:2]]   # A1, ..., A(L-1): (width,) each
    label = int(cache[-1][0].argmax())
    # which pixels decide: |dloss/dx| for the answer it gives, brightest 255
    g = np.abs(nn.input_gradient(params, X, nn.one_hot([label], len(cache[-1][0]), X.dtype))[0])
    answer = {"label": label, "probabilities": cache[-1][0].tolist(), "image": x.tolist(),
              "hidden": hidden[0] if hidden else [], "deeper": hidden[1:],
              "maps": [maps(A[:, 0]) for A in cache[1:-len(dense):2]],  # each conv layer's
              "saliency": np.rint(255 * g / max(g.max(), 1e-30)).astype(int).tolist()}
    if request.get("fool"):  # the smallest eps of 0.01, 0.02, ..., 0.5 that changes the answer
        eps = np.arange(1, 51)[:, None] / 100                          # (50, 1)
        X_adv = nn.fool(params, np.repeat(X, 50, axis=0), [label] * 50, eps)
        read = nn.predict(params, X_adv)                                 # (50,)
        first = np.flatnonzero(read != label)[:1]                      # the least eps, if any
        answer["fooled"] = {"eps": float(eps[first[0], 0]), "label": int(read[first[0]]),
                            "image": np.rint(255 * X_adv[first[0]]).astype(int).tolist()
                            } if len(first) else None
    return answer


def maps(A):
    """A conv layer's maps of one image, (F, h, w), as {side, values: F h w ints 0..255}:
    the layer's least value black, its greatest white."""
    low, high = A.min(), A.max()
    values = np.rint(255 * (A - low) / max(high - low, 1e-12)).astype(int)
    return {"side": A.shape[1], "values": values.ravel().tolist()}


def model_summary(params):
    """GET /model, for the unit panel and the templates: each first-layer unit's input
    weights (W1's column) on its own scale, as base64 of (hidden, 784) int8 -100..100 (100
    KB of JSON numbers would hold a server thread for longer) and, where the next layer is
    the output (one hidden layer), its weights out to the ten digits (W2's row). For a conv
    network the templates are its first layer's 3x3 filters, (F, 9), and "filters" says so."""
    W1 = params["W1"]                                          # (784, hidden)
    if "K1" in params:  # a conv network: its first layer's filters, (9, F), instead
        W1 = params["K1"].reshape(len(params["K1"]), -1).T
    templates = np.rint(100 * W1 / np.maximum(np.abs(W1).max(axis=0), 1e-12)).astype(np.int8)
    sizes = nn.network_sizes(params)
    outgoing = np.round(params["W2"], 4).tolist() if len(sizes) == 3 else None
    return {"templates": base64.b64encode(templates.T.tobytes()).decode(),
            "side": math.isqrt(W1.shape[0]), "filters": "K1" in params,
            "units": params["W1"].shape[1], "outgoing": outgoing, "sizes": sizes,
            "activation": params["activation"]}


class Live:
    """What the page shows, while the network trains and after. train() tells it every
    step (watch=); a few times a second at most it publishes a snapshot: copies of the
    weights, and the progress already encoded as JSON. The server's threads only ever read
    self.snapshot, which is replaced whole, and to which they only add the figures they
    make from its weights (figure()): a /predict uses the weights of one step, and no
    request waits for the training or holds it up.
    Live(params) serves weights that are done, as --load --serve does."""
    EVERY = 0.25          # seconds between snapshots, at the least
    LOSS_EVERY = 25       # batches per point of the page's loss curve

    def __init__(self, params=None, epochs=0, batches=0):
        self.epochs, self.batches = epochs, batches
        self.history, self.losses, self.recent = [], [], []  # records; [step, loss]; losses
        self.loss_before, self.at = None, (0, 0)  # the initial weights' loss; (epoch, batch)
        self.started, self.last, self.version = time.perf_counter(), -math.inf, 0
        self.snapshot = None
        self.publish(params, 0, 0, {"done": params is not None, "training": params is None})

    def start(self, epochs, batches):
        self.epochs, self.batches, self.started = epochs, batches, time.perf_counter()

    def step(self, params, epoch, batch, loss):
        """After each step of train(); epoch 0 is before the first, with its loss."""
        if epoch == 0:  # before the first step: the curve starts at the initial loss
            self.loss_before = loss
            self.losses.append([0, loss])
            return self.publish(params, 0, 0)
        self.at = epoch, batch
        self.recent.append(float(loss))
        if len(self.recent) == self.LOSS_EVERY:
            self.add_point()
        if time.perf_counter() - self.last >= self.EVERY:
            self.publish(params, epoch, batch)

    def epoch(self, params, record):
        """After each epoch of train(), with its record."""
        if self.recent:
            self.add_point()
        self.history.append(record)
        self.publish(params, *self.at)

    def add_point(self):
        """A point of the loss curve: the mean loss of the steps since the last point."""
        epoch, batch = self.at
        self.losses.append([(epoch - 1) * self.batches + batch,  # batches trained so far
                            sum(self.recent) / len(self.recent)])
        self.recent = []

    def finish(self, params, X_test, y_test, interrupted=False, mistakes=8):
        """Training is over: the page shows the test result, where training stopped if it
        was interrupted, and from now on serves these weights."""
        P = nn.predict_proba(params, X_test)                        # (n_test, 10)
        predicted = P.argmax(axis=1)
        worst, _ = nn.confident_mistakes(P, y_test, mistakes)
        result = {"test_accuracy": nn.accuracy(predicted, y_test),
                  "confusion": nn.confusion_matrix(predicted, y_test).tolist(),
                  "mistakes": [{"true": int(y_test[i]), "said": int(predicted[i]),
                                "p": float(P[i].max()),
                                "image": base64.b64encode(X_test[i].tobytes()).decode()}
                               for i in worst]}
        last = self.history[-1]["epoch"] if self.history else 0
        if interrupted:  # in the terminal's words
            interrupted = f"interrupted in epoch {last} after batch {self.batch} of {self.batches}"
        self.publish(params, last, self.batch, {"done": True, "interrupted": interrupted or None,
                                                "test_accuracy": result["test_accuracy"],
                                                "result": result})

    def publish(self, params, epoch, batch, extra=None):
        self.last, self.version, self.batch = time.perf_counter(), self.version + 1, batch
        weights = None if params is None else {**params, **{  # a copy of every array
            key: P.copy() for key, P in nn.arrays(params).items()}}
        progress = {"epoch": epoch, "epochs": self.epochs, "batch": batch,
                    "batches": self.batches, "elapsed": self.last - self.started,
                    "weights": weights is not None, "loss_before": self.loss_before,
                    "history": self.history, "losses": self.losses, "done": False,
                    "training": True, "test_accuracy": None, "interrupted": None,
                    "result": None, "version": self.version, **(extra or {})}
        self.snapshot = {"params": weights, "progress": json.dumps(progress).encode()}

    def figure(self, name, make):
        """The JSON of make(the latest snapshot's weights), made when a page first asks for
        it (GET /model, /dreams: 4 snapshots a second need not all be drawn) and kept with
        that snapshot; RequestError 503 before the first step."""
        snapshot = self.snapshot
        if snapshot["params"] is None:
            raise RequestError(503, "the network has not taken its first step yet")
        if name not in snapshot:  # two requests at once may both make it: the same JSON
            snapshot[name] = json.dumps(make(snapshot["params"])).encode()
        return snapshot[name]


# The lab: every run, the command line's first and those started from the page, is a Run:
# its flags, parsed by the command line's own parser, and a Live that the page reads. One
# worker thread trains them one at a time (two threads of BLAS would share two cores),
# in the order they were started, on the data that the server loaded once.

PAGE_REFUSES = {"save": "--save", "log": "--log", "plot": "--plot", "load": "--load",
                "predict": "--predict", "dream": "--dream FILE", "data": "--data",
                "dataset": "--dataset", "data_home": "--data-home", "serve": "--serve",
                "port": "--port", "host": "--host", "gradcheck": "--gradcheck"}
VIEWS = {"show_mistakes", "attack", "dream", "ascii", "moved"}  # accepted, but not in the form
DATA_FLAGS = ("data", "dataset", "data_home")  # the server's, for every run
LESSONS = [  # the README's lessons: each queues the runs it compares
    ("zeros", "Why not start every weight at 0?", ["--init zeros", "--init normal", ""]),
    ("mse", "Why cross-entropy, not squared error?", ["--loss mse", ""]),
    ("dropout", "Dropout against overfitting: 1,000 images, 800 units",
     ["--subset 1000 --hidden 800 --epochs 200 --no-augment",
      "--subset 1000 --hidden 800 --epochs 200 --no-augment --dropout 0.5"]),
    ("vanishing", "The vanishing gradient: four sigmoid layers against four ReLU layers",
     ["--hidden 30 30 30 30 --activation sigmoid", "--hidden 30 30 30 30"]),
    ("adam-lr", "A learning rate belongs to its optimiser: Adam at SGD's rate",
     ["--optimizer adam --lr 0.2", "--optimizer adam"]),
    ("conv", "What does convolution buy? The MLP against a conv network of its size",
     ["", "--conv 8 16 --batch-size 128 --epochs 6"])]


def flags_of(args, skip=()):
    """The flags by which args differ from the parser's defaults, in the parser's order, as
    a list of strings that the parser reads back to the same args."""
    words = []
    for action in nn.make_parser()._actions:
        value = getattr(args, action.dest, None)
        if (action.dest in skip or not action.option_strings or value == action.default
                or action.default == argparse.SUPPRESS):  # (--help)
            continue
        flag = action.option_strings[0]
        if isinstance(action, argparse.BooleanOptionalAction):
            words.append(flag if value else "--no-" + flag[2:])
        elif action.nargs == 0:
            words.append(flag)
        else:
            values = value if isinstance(value, list) else [value]
            words += [flag, *(repr(v) if isinstance(v, float) else str(v) for v in values
                              if v != "")]
    return words


def form_fields():
    """The settings form, from the parser's own definitions: every flag that the page may
    send, with its choices, default and help."""
    fields = []
    for a in nn.make_parser()._actions:
        if not a.option_strings or a.dest in PAGE_REFUSES or a.dest in VIEWS or a.dest == "help":
            continue
        kind = ("bool" if isinstance(a, argparse.BooleanOptionalAction) else
                "choice" if a.choices else "number" if a.type in (int, float) else "text")
        fields.append({"flag": a.option_strings[0], "kind": kind, "choices": a.choices,
                       "default": None if a.default is None else str(a.default),
                       "help": a.help % {"default": a.default}})
    return fields


class Run:
    """One run of the lab: args (parsed flags), its name and command, its state (queued,
    training, done, stopped or failed), the error that failed it, its Live and its record."""

    def __init__(self, number, args, params=None):
        self.id, self.args = number, args
        skip = ("serve", "port", "host")
        self.command = shlex.join(["python", "nn_from_scratch.py", *flags_of(args, skip)])
        self.name = " ".join(flags_of(args, skip + DATA_FLAGS)) or "default"
        self.state, self.error, self.record = "queued" if params is None else "done", None, None
        self.stop = threading.Event()
        self.live = Live(params)

    def summary(self):
        """Its row in GET /runs."""
        history, record = self.live.history, self.record or {}
        return {"id": self.id, "name": self.name, "command": self.command, "state": self.state,
                "error": self.error, "epochs": self.args.epochs, "epochs_done": len(history),
                "epoch_seconds": float(np.median([r["seconds"] for r in history]))
                if history else None,
                "loss_before": self.live.loss_before,
                "best_val_accuracy": max((r["val_acc"] for r in history
                                          if r["val_acc"] is not None), default=None),
                "train_accuracy": record.get("train_accuracy"),
                "test_accuracy": record.get("test_accuracy"), "version": self.live.version}


def refuse(message):
    """The page's parser's error(): the command line's words, raised as a UsageError."""
    raise nn.UsageError(message)


class Lab:
    """The runs, oldest first; the queue of those waiting; and one worker that trains them.
    The server's threads call start(), stop() and remove(); only the worker trains."""
    MAX_QUEUED = 5      # runs waiting at once; more are refused (429)
    MAX_FINISHED = 10   # finished runs kept in memory, oldest out first

    def __init__(self, server_args, data=None):
        self.server_args, self.data = server_args, data  # data: load_dataset's, or None yet
        self.seed = server_args.seed  # the seed the data was split with, if at random
        self.runs, self.queue, self.current, self.count = {}, [], None, 0
        self.changed = threading.Condition()
        self.worker = None  # started with the first run to train

    def parse(self, text):
        """The page's flags, read as the command line reads its own: args, or UsageError
        with the command line's words. Flags that read or write a file or change the
        server are refused: every run trains on the server's data, kept in memory."""
        try:
            words = shlex.split(text)
        except ValueError as e:
            raise nn.UsageError(f"cannot read the flags ({e})") from None
        parser = nn.make_parser(add_help=False)  # --help would print on the server
        parser.error = refuse  # a bad flag raises UsageError instead of exiting the server
        args = parser.parse_args(words)
        for dest, flag in PAGE_REFUSES.items():
            if getattr(args, dest) not in (parser.get_default(dest), ""):
                raise nn.UsageError(f"{flag} is for the command line: a run started from the "
                                 "page reads and writes no file and trains on the server's "
                                 "data; its record is at /runs/N")
        nn.check_args(args)
        for dest in DATA_FLAGS:
            setattr(args, dest, getattr(self.server_args, dest))
        if self.data is not None:  # what fits the data is checked before it queues, too
            nn.check_sizes(args, len(self.data[1]))
        return args

    def start(self, args, params=None):
        """Queue a run of args (params: weights to show as a finished run instead)."""
        with self.changed:
            if params is None and len(self.queue) >= self.MAX_QUEUED:
                raise RequestError(429, f"{len(self.queue)} runs are waiting already; stop "
                                        "one, or start this when one has trained")
            self.count += 1
            run = self.runs[self.count] = Run(self.count, args, params)
            if params is None:
                self.queue.append(run)
                if self.worker is None:
                    self.worker = threading.Thread(target=self.work, daemon=True)
                    self.worker.start()
            self.forget()
            self.changed.notify_all()
            return run

    def stop(self, run):
        """A queued run stops at once; a training one after its current batch, as Ctrl-C."""
        with self.changed:
            run.stop.set()
            if run in self.queue:
                self.queue.remove(run)
                run.state = "stopped"
            self.changed.notify_all()

    def stop_all(self):
        """Ctrl-C: stop every run; True if one was training or waiting, and not already
        told to stop."""
        with self.changed:
            busy = [run for run in self.runs.values()
                    if run.state in ("queued", "training") and not run.stop.is_set()]
        for run in busy:
            self.stop(run)
        return bool(busy)

    def remove(self, run):
        with self.changed:
            if run.state in ("queued", "training"):
                raise RequestError(409, f"run {run.id} is {run.state}; stop it first")
            self.runs.pop(run.id, None)

    def forget(self):
        """Keep MAX_FINISHED finished runs at the most, dropping the oldest."""
        finished = [n for n, run in self.runs.items()
                    if run.state not in ("queued", "training")]
        for n in finished[:max(len(finished) - self.MAX_FINISHED, 0)]:
            del self.runs[n]

    def newest(self):
        """The run that today's /progress, /model, /dreams and /predict are for: the last
        one to have started, else the last one queued."""
        with self.changed:
            started = [run for run in self.runs.values() if run.state != "queued"]
            return (started or list(self.runs.values()) or [None])[-1]

    def idle(self):
        with self.changed:
            return self.current is None and not self.queue

    def work(self):
        """The worker: train each queued run in turn, as the command line would."""
        while True:
            with self.changed:
                while not self.queue:
                    self.changed.wait()
                run = self.current = self.queue.pop(0)
                run.state = "training"
            print(f"\nrun {run.id}: {run.command}", flush=True)
            try:
                _, run.record = nn.run_and_report(run.args, self.load(run.args), run.stop,
                                               live=run.live, record=True)
                state, error = ("stopped" if run.stop.is_set() else "done"), None
            except nn.UsageError as e:
                state, error = "failed", nn.usage_line(e, "nn_from_scratch.py")
            except (nn.DataError, nn.TrainingDiverged, OSError) as e:
                state, error = "failed", f"error: {e}"
            except Exception as e:  # a fault of ours (or MemoryError): this run fails alone
                state, error = "failed", f"error: the run failed ({type(e).__name__}: {e})"
            if error:
                print(error, file=sys.stderr, flush=True)
            with self.changed:
                run.state, run.error, self.current = state, error, None
                self.forget()
                self.changed.notify_all()

    def load(self, args):
        """The server's data, loaded once (again for another --seed only where the split
        into training and test images is random, as for a .npz of X and y)."""
        if self.data is None or (args.seed != self.seed and not is_mnist(self.data[1])):
            self.data, self.seed = nn.load_dataset(args), args.seed
            for array in self.data[:4]:
                array.flags.writeable = False  # shared by every run: none may change it
        if self.data[2].shape[1] != 784:
            raise nn.DataError(f"the lab draws 28x28 digits; {self.data[4]} has "
                            f"{self.data[2].shape[1]} pixels per image")
        return self.data


MNIST_LABELS_SHA256 = "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13"


def is_mnist(y_train):
    """Whether y_train are MNIST's 60,000 training labels in their order (from OpenML, or a
    copy given with --data): its split into training and test images is fixed."""
    import hashlib
    return len(y_train) == 60000 and hashlib.sha256(
        np.asarray(y_train, dtype=np.uint8).tobytes()).hexdigest() == MNIST_LABELS_SHA256


def serve(args):
    """--serve: the lab. Trains the command line's flags as its first run (or shows the
    weights of --load as a finished one), serves the page, and trains every run the page
    starts, until Ctrl-C. The first Ctrl-C stops the runs (the one training ends after its
    batch, and is evaluated and saved as asked); the next one, or the first when nothing
    trains, stops the server. Exit code 130 if a run was stopped that way."""
    if args.load:  # the page, for weights trained before; data only when a run starts
        params = nn.drawing_weights(args.load)
        args.activation = params["activation"]
        lab = Lab(args)
        lab.start(args, params)
    else:
        nn.plot_needs_matplotlib(args)
        data = nn.load_dataset(args)
        if data[2].shape[1] != 784:  # said before training, not after it
            raise nn.DataError(f"--serve draws 28x28 digits; {data[4]} has {data[2].shape[1]} "
                            "pixels per image")
        nn.check_sizes(args, len(data[1]))
        lab = Lab(args, data)
    server, url = start_server(lab, args.host, args.port)
    first, stopped = None if args.load else args, False
    try:
        while True:
            try:  # Ctrl-C from the address on stops the runs, or the server
                if url:  # the first run is there when its address is (a page may ask at
                    with lab.changed:  # once), and the worker's first line comes after it
                        if first:
                            lab.start(first)
                        print(f"{'draw a digit' if args.load else 'watch it learn'} at "
                              f"(Ctrl-C to stop):\n{url}", flush=True)
                    url = None
                while True:
                    time.sleep(0.2)
            except KeyboardInterrupt:
                if not lab.stop_all():  # nothing was training or waiting: stop the server
                    break
                stopped = True
    finally:
        lab.stop_all()
        while not lab.idle():  # the run ends after its batch: nothing --save or --log asked
            time.sleep(0.05)   # for is lost
        server.shutdown()
        server.server_close()
    print("stopped")
    return 130 if stopped else 0


class PageHandler(http.server.BaseHTTPRequestHandler):
    """The routes of ROUTES, and nothing else: no file from disk. A run's pages come from
    one snapshot of its Live; /progress, /model, /dreams and /predict without /runs/N are
    those of the newest run (Lab.newest)."""
    timeout = 10  # seconds a client may take over its request before it is dropped
    ROUTES = [  # (method, path, what answers it); (/runs/N) names a run, else the newest
        ("GET", r"/|/lab\.css|/lab\.js", "file"), ("GET", r"/favicon\.ico", "favicon"),
        ("GET", r"/runs", "list_runs"), ("POST", r"/runs", "start_run"),
        ("GET", r"/runs/(\d+)", "record"), ("DELETE", r"/runs/(\d+)", "remove_run"),
        ("POST", r"/runs/(\d+)/stop", "stop_run"),
        ("GET", r"(?:/runs/(\d+))?/progress", "progress"),
        ("GET", r"(?:/runs/(\d+))?/model", "model"),
        ("GET", r"(?:/runs/(\d+))?/dreams", "dreams"),
        ("POST", r"(?:/runs/(\d+))?/predict", "predict")]
    WRITES = {"start_run", "stop_run"}  # POSTs that change the lab: their body must be JSON

    def do_GET(self):
        self.route("GET")

    def do_POST(self):
        self.route("POST")

    def do_DELETE(self):
        self.route("DELETE")

    def route(self, method):
        if not self.host_is_ours() or (method != "GET" and not self.origin_is_ours()):
            return
        path = self.path.split("?")[0]
        found = [(m, name, match) for m, pattern, name in self.ROUTES
                 for match in [re.fullmatch(pattern, path)] if match]
        if not found:
            routes = ", ".join(m + " " + p.replace(r"(?:/runs/(\d+))?", "[/runs/N]").replace(
                r"(\d+)", "N") for m, p, _ in self.ROUTES[2:])
            return self.fail(404, f"no page {path[:80]}; there is GET /, {routes}")
        for m, name, match in found:
            if m == method:
                break
        else:
            return self.fail(405, f"{path[:80]} takes {' or '.join(m for m, _, _ in found)}")
        body = b""
        if method == "POST":
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                return self.fail(411, "send the body's length in a Content-Length header")
            if int(length) > MAX_BODY:  # refused unread; the connection closes after the reply
                self.close_connection = True
                return self.fail(413, f"the body is {int(length):,} bytes; at most {MAX_BODY:,}")
            body = self.rfile.read(int(length))
        # A form on another site may send text/plain or form fields to any address, unasked;
        # only a page of this server's can send application/json (a browser asks first,
        # in a preflight that this server never grants). So a write must say it is JSON.
        kind = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if name in self.WRITES and kind != "application/json":
            return self.fail(415, f"send the body as JSON, with Content-Type: application/json "
                                  f"(got {kind[:40] or 'none'})")
        lab = self.server.lab
        run = None
        if match.groups():
            with lab.changed:
                run = lab.runs.get(int(match[1])) if match[1] else lab.newest()
            if run is None:
                return self.fail(404, f"no run {match[1]}; GET /runs lists them" if match[1]
                                 else "no runs yet; start one with POST /runs")
        try:
            getattr(self, name)(run, body)
        except RequestError as e:
            self.fail(*e.args)
        except Exception as e:  # a fault of ours: the client gets one line, the server goes on
            self.fail(500, f"the server failed to answer {method} {path[:80]} "
                           f"({type(e).__name__})")

    def file(self, run, body):
        name, content_type = FILES[self.path.split("?")[0]]
        self.reply(200, self.server.files[name], content_type)

    def favicon(self, run, body):
        self.reply(204)

    def list_runs(self, run, body):
        with self.server.lab.changed:
            runs = [r.summary() for r in self.server.lab.runs.values()]
        self.send_json(runs)

    def start_run(self, run, body):
        request = read_json(body, 'such as {"flags": "--init zeros"}')
        if not isinstance(request.get("flags", ""), str):
            raise RequestError(400, 'expected {"flags": "--init zeros ..."}')
        if len(request.get("flags", "")) > 2000:
            raise RequestError(400, "at most 2,000 characters of flags")
        try:
            args = self.server.lab.parse(request.get("flags", ""))
        except nn.UsageError as e:
            raise RequestError(400, nn.usage_line(e, "nn_from_scratch.py")) from None
        run = self.server.lab.start(args)
        self.send_json({"id": run.id, "command": run.command}, 201)

    def record(self, run, body):
        if run.record is None:
            raise RequestError(409, f"run {run.id} is {run.state}: " + (
                "it has no record" if run.state != "training" and run.state != "queued" else
                "its record comes when it ends"))
        self.send_json(run.record)

    def stop_run(self, run, body):
        self.server.lab.stop(run)
        self.send_json({"id": run.id, "state": run.state})

    def remove_run(self, run, body):
        self.server.lab.remove(run)
        self.reply(204)

    def progress(self, run, body):
        self.reply(200, run.live.snapshot["progress"], "application/json")

    def model(self, run, body):
        self.reply(200, run.live.figure("model", model_summary), "application/json")

    def dreams(self, run, body):
        def ten(params):
            X, P = nn.dream(params)
            return {"images": np.rint(255 * X).astype(int).tolist(),
                    "p": P[np.arange(len(P)), np.arange(len(P))].tolist()}
        self.reply(200, run.live.figure("dreams", ten), "application/json")

    def predict(self, run, body):
        params = run.live.snapshot["params"]  # the weights of one step, all layers
        if params is None:
            raise RequestError(503, "the network has not taken its first step yet; ask again")
        try:
            answer = predict_request(params, body)
        except RequestError:
            raise
        except Exception as e:
            raise RequestError(500, f"the server failed to read this pad "
                                    f"({type(e).__name__})") from None
        self.send_json(answer)

    def host_is_ours(self):
        """Refuse a Host header that names another site: a page elsewhere whose name was
        made to resolve to 127.0.0.1 (DNS rebinding) must not reach us. An IP address,
        localhost or the --host name are ours, as in Jupyter's server."""
        header = (self.headers.get("Host") or "").lower()
        match = re.fullmatch(r"\[([0-9a-f:.]+)\](?::\d+)?|([^:\[\]]*)(?::\d+)?", header)
        host = (match[1] or match[2]) if match else ""  # from [v6 address]:port or name:port
        try:
            ipaddress.ip_address(host)
            return True
        except ValueError:
            if host in ("localhost", self.server.host_name):
                return True
        self.fail(403, f"Host {header[:80]!r} is not this server's address")
        return False

    def origin_is_ours(self):
        """Refuse a POST or DELETE sent by a page on another site. Any page the user opens
        can send requests to 127.0.0.1 from the user's own browser: it cannot read the
        answers, but it could start, stop or remove runs and keep the machine busy. A
        browser names the sending page's site in the Origin header of every POST and
        DELETE; as in Jupyter's server, it must be this server (the Host it was asked
        for). A request with no Origin does not come from a page (curl, a script)."""
        origin = self.headers.get("Origin")
        if origin is None:
            return True
        parts, host = urllib.parse.urlsplit(origin), (self.headers.get("Host") or "").lower()
        if parts.scheme == "http" and parts.netloc.lower() == host:
            return True
        self.fail(403, f"Origin {origin[:80]!r} is another site; only this server's own page "
                       "may start, stop or remove runs")
        return False

    def send_json(self, value, status=200):
        self.reply(status, json.dumps(value).encode(), "application/json")

    def reply(self, status, body=b"", content_type=None):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def fail(self, status, reason):
        self.reply(status, json.dumps({"error": reason}).encode(), "application/json")

    def log_message(self, format, *args):
        pass  # quiet: a line per stroke would bury the URL


def make_server(lab, host="127.0.0.1", port=8000):
    """The lab's server, listening (port 0: a free one); serve_forever() runs it."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    server_class = type("Server", (http.server.ThreadingHTTPServer,), {"address_family": family})
    try:
        server = server_class((host, port), PageHandler)
    except OSError as e:
        raise nn.DataError(f"cannot listen on {host}:{port} ({e.strerror or e}); try another "
                        "--port, or --port 0 for any free one") from None
    server.daemon_threads = True  # a client still connected does not keep Ctrl-C waiting
    server.handle_error = lambda request, address: None  # a client that hung up: no traceback
    server.lab, server.host_name = lab, host.lower()
    server.files = page_files()
    return server


def page_files():
    """The page's three files, read once from beside this module; the form's flags and the
    lessons written into lab.js, from the parser as it is now."""
    files = {}
    for name, _ in FILES.values():
        with open(os.path.join(HERE, name), "rb") as f:
            files[name] = f.read()
    config = json.dumps({"fields": form_fields(), "lessons": LESSONS})
    files["lab.js"] = files["lab.js"].replace(b"const LAB = null;", b"const LAB = "
                                              + config.encode() + b";", 1)
    return files


def start_server(lab, host, port):
    """Serve the lab from a thread of its own; (the server, its address)."""
    server = make_server(lab, host, port)
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        print(f"warning: serving on {host}: anyone who can reach this machine can use the page")
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://{f'[{host}]' if ':' in host else host}:{server.server_address[1]}/"
