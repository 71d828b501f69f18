"""What the tests in this folder share: where MNIST is, how to skip for what is not
installed, how to run the script, small data, and the lab's server and requests."""

import contextlib
import gzip
import http.client
import importlib
import json
import math
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import nn_from_scratch as nn
from test_nn import DATA_HOME, NOT_FETCHED, SHARED, unavailable

ROOT = Path(__file__).resolve().parent.parent  # the repository
labmod = nn.load_lab()  # lab/server.py, as --serve imports it
OPENML_DESCRIPTION = Path("openml/openml.org/api/v1/json/data/554.gz")  # MNIST is dataset 554


OPENML_HOME = next((home for home in [DATA_HOME, *(s / "scikit_learn_data" for s in SHARED)]
                    if (home / OPENML_DESCRIPTION).exists()), None)
needs_mnist = pytest.mark.usefixtures("mnist")


def missing(what, install):
    """unavailable() for something not installed, saying how to install it."""
    unavailable(f"{what} is not installed ({install})")


def optional(module, install):
    """Import an optional module (Pillow, selenium), or skip the test with missing()."""
    try:
        return importlib.import_module(module)
    except ImportError:
        pass  # (skipped outside the except block, so that no ImportError is chained to it)
    missing(module.split(".")[0], install)


def run_cli(*args, env=None):
    """Run the script as a user would; returns the finished process."""
    return subprocess.run([sys.executable, str(ROOT / "nn_from_scratch.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


def copy_openml_download(target):
    """Copy fetch_openml's download of MNIST (OpenML dataset 554: its descriptions and its
    ARFF file), and nothing else of the data folder OPENML_HOME, into the folder target."""
    if OPENML_HOME is None:
        unavailable(f"fetch_openml's download of MNIST is {NOT_FETCHED}")
    root = OPENML_HOME / "openml" / "openml.org"
    description = json.loads(gzip.decompress((OPENML_HOME / OPENML_DESCRIPTION).read_bytes()))
    file_id = description["data_set_description"]["file_id"]  # the ARFF's
    mnist = re.compile(rf"api/v1/json/data/((features|qualities)/)?554\.gz"
                       rf"|api/v1/json/data/list/data_name/mnist_784/.*"
                       rf"|data/v1/download/{file_id}(/.*|\.gz)")
    for path in root.rglob("*"):
        relative = path.relative_to(root).as_posix()
        if path.is_file() and mnist.fullmatch(relative):
            copy = Path(target) / "openml" / "openml.org" / relative
            copy.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, copy)  # a new file, writable whatever the original's mode


def fake_mnist():
    """What fetch_openml returns for MNIST, in shape and type (float64 pixels, string labels)."""
    X = np.zeros((70000, 784))
    X[:, 0] = np.arange(70000) % 256
    return X, np.array([str(d % 10) for d in range(70000)], dtype=object)


def small_mnist_like(n_train=300, n_test=100, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train),
            rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test))


def arc(cx, cy, rx, ry, start, end, n=24):
    """Points along an elliptical arc, angles in degrees (0 = right, 90 = down)."""
    t = np.radians(np.linspace(start, end, n))
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in t]


# Each digit as the pen strokes a person makes, in a unit square with y pointing down
STROKES = {
    0: [arc(0.5, 0.5, 0.27, 0.4, -90, 270, 40)],
    1: [[(0.42, 0.22), (0.55, 0.1), (0.55, 0.9)]],
    2: [arc(0.5, 0.32, 0.23, 0.2, 190, 370) + [(0.25, 0.9), (0.78, 0.9)]],
    3: [arc(0.47, 0.3, 0.22, 0.18, 200, 450) + arc(0.47, 0.67, 0.25, 0.2, -90, 150)],
    4: [[(0.32, 0.1), (0.25, 0.58), (0.78, 0.58)], [(0.64, 0.1), (0.64, 0.9)]],
    5: [[(0.74, 0.12), (0.33, 0.12), (0.3, 0.45)] + arc(0.48, 0.64, 0.25, 0.22, -120, 150)],
    6: [[(0.68, 0.1), (0.45, 0.3)] + arc(0.5, 0.66, 0.22, 0.22, 200, 560)],
    7: [[(0.25, 0.12), (0.76, 0.12), (0.45, 0.9)]],
    8: [arc(0.5, 0.3, 0.18, 0.18, 90, 450), arc(0.5, 0.69, 0.22, 0.2, -90, 270)],
    9: [arc(0.5, 0.32, 0.2, 0.2, 0, 360), [(0.7, 0.32), (0.66, 0.9)]],
}


def draw(digit, pen, size=280):
    """(size, size) ink 0..1: the digit's strokes drawn with a round pen `pen` pixels wide,
    anti-aliased like a browser canvas (ink fades over the pen's last pixel)."""
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    dist = np.full((size, size), np.inf)  # from each pixel to the nearest stroke
    for stroke in STROKES[digit]:
        P = np.array(stroke) * size
        for (x0, y0), (x1, y1) in zip(P[:-1], P[1:]):
            dx, dy = x1 - x0, y1 - y0
            t = np.clip(((xx - x0) * dx + (yy - y0) * dy) / max(dx * dx + dy * dy, 1e-9), 0, 1)
            dist = np.minimum(dist, np.hypot(xx - x0 - t * dx, yy - y0 - t * dy))
    return np.clip(pen / 2 - dist + 0.5, 0, 1)


@contextlib.contextmanager
def lab_server(lab):
    """The real server for a Lab on a free port of 127.0.0.1, in a thread; yields its port."""
    server = labmod.make_server(lab, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        lab.stop_all()  # a run still training ends after its batch
        server.shutdown()
        server.server_close()


def page_server(params):
    """The server for finished weights, as --load model.npz --serve shows them: run 1."""
    args = nn.parse_args(["--load", "model.npz", "--activation", params["activation"]])
    lab = labmod.Lab(args)
    lab.start(args, params)
    return lab_server(lab)


def request(port, method, path, body=b"", headers=None, timeout=10):
    """One HTTP request; returns (status, the body as JSON where it is JSON, else bytes)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request(method, path, body, headers or {})
        response = connection.getresponse()
        data = response.read()
    finally:
        connection.close()
    if response.getheader("Content-Type") == "application/json":
        data = json.loads(data)
    return response.status, data


def read_until(process, start):
    """The process's next lines of output, up to the first that starts with start."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(start):
            break
    return lines


def url_port(lines):
    return int(re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\n", lines[-1])[1])
