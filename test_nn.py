"""Tests for nn_from_scratch.py: python -m pytest -q test_nn.py

Real MNIST is read from ../shared/data (or $NN_SHARED_DATA): mnist.npz and the offline
OpenML cache scikit-learn_data/. The tests that need it are skipped, with the reason
shown, where it is absent. No test reaches for the network.
"""

import gzip
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nn_from_scratch as nn

HERE = Path(__file__).resolve().parent
SHARED = Path(os.environ.get("NN_SHARED_DATA", HERE.parent / "shared" / "data"))
MNIST_NPZ = SHARED / "mnist.npz"
OPENML_CACHE = SHARED / "scikit_learn_data"
# Any warning (from NumPy: overflow, divide by zero, invalid value) fails the test it occurs in.
pytestmark = pytest.mark.filterwarnings("error")

needs_mnist = pytest.mark.skipif(not MNIST_NPZ.exists(),
                                 reason=f"real MNIST not found at {MNIST_NPZ}")
needs_openml_cache = pytest.mark.skipif(not OPENML_CACHE.exists(),
                                        reason=f"offline OpenML cache not found at {OPENML_CACHE}")


def tiny_problem(n=5, d=12, hidden=7, k=4, seed=0, dtype=np.float64):
    """A small network with non-zero biases and a batch of random data."""
    rng = np.random.default_rng(seed)
    params = nn.init_params(d, hidden, k, rng, dtype)
    params["b1"] = (0.1 * rng.standard_normal(hidden)).astype(dtype)
    params["b2"] = (0.1 * rng.standard_normal(k)).astype(dtype)
    X = rng.random((n, d)).astype(dtype)
    y = np.arange(n) % k
    return params, X, y, nn.one_hot(y, k, dtype)


def run_cli(*args, env=None):
    """Run the script as a user would; returns the finished process."""
    return subprocess.run([sys.executable, str(HERE / "nn_from_scratch.py"), *map(str, args)],
                          capture_output=True, text=True, env=env, timeout=120)


# ----------------------------------------------------------------------------
# The building blocks

def test_one_hot_puts_a_single_one_at_each_label():
    # one row per label, a 1 in the label's column and 0 elsewhere, in the requested dtype
    Y = nn.one_hot(np.array([3, 0, 9, 3]), 10, np.float64)
    assert Y.shape == (4, 10) and Y.dtype == np.float64
    assert np.array_equal(Y.argmax(axis=1), [3, 0, 9, 3])
    assert np.array_equal(Y.sum(axis=1), np.ones(4))


def test_relu_and_its_derivative():
    # ReLU clips negatives to 0; its derivative is 1 for z > 0 and (by convention) 0 for z <= 0
    Z = np.array([[-2.0, -0.0, 0.0, 0.5, 3.0]], dtype=np.float32)
    assert np.array_equal(nn.ReLU(Z), [[0, 0, 0, 0.5, 3]])
    assert np.array_equal(nn.ReLU_deriv(Z), [[0, 0, 0, 1, 1]])
    assert nn.ReLU(Z).dtype == nn.ReLU_deriv(Z).dtype == np.float32


def test_softmax_is_a_distribution_even_for_huge_logits():
    # rows sum to 1, order is kept, and logits of 1e4 (exp overflows without the max shift)
    # give finite values without a warning
    Z = np.array([[1.0, 2.0, 3.0], [1e4, 0.0, -1e4], [-1e4, -1e4, -1e4]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        A = nn.softmax(Z)
    assert np.all(np.isfinite(A))
    assert np.allclose(A.sum(axis=1), 1)
    assert np.allclose(A[0], np.exp([1, 2, 3]) / np.exp([1, 2, 3]).sum())
    assert A[1, 0] == 1.0 and np.allclose(A[2], 1 / 3)
    assert nn.softmax(Z.astype(np.float32)).dtype == np.float32


def test_cross_entropy_is_finite_when_a_probability_underflows_to_zero():
    # a confidently wrong prediction (probability exactly 0) gives a large but finite loss
    A2 = np.array([[1.0, 0.0], [0.5, 0.5]])
    Y = np.array([[0.0, 1.0], [1.0, 0.0]])
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        loss = nn.cross_entropy(A2, Y)
    assert np.isfinite(loss) and loss > 300
    assert np.isclose(nn.cross_entropy(A2[1:], Y[1:]), math.log(2))


def test_forward_and_backward_shapes():
    # every array has the shape the docstring promises, gradients match their parameters
    rng = np.random.default_rng(0)
    params = nn.init_params(784, 128, 10, rng)
    X = rng.random((32, 784), dtype=np.float32)
    Y = nn.one_hot(rng.integers(0, 10, 32), 10)
    Z1, A1, Z2, A2 = nn.forward_prop(params, X)
    assert Z1.shape == A1.shape == (32, 128) and Z2.shape == A2.shape == (32, 10)
    grads = nn.backward_prop(params, X, Y, Z1, A1, A2)
    assert grads.keys() == params.keys()
    for key in params:
        assert grads[key].shape == params[key].shape
    assert {P.shape for P in params.values()} == {(784, 128), (128,), (128, 10), (10,)}


def test_float32_stays_float32_and_float64_stays_float64(monkeypatch):
    # a float64 array sneaking into the float32 path (e.g. a float64 one-hot) would make
    # training ~2x slower; the float64 path is what the gradient check needs
    for dtype in (np.float32, np.float64):
        params, X, y, Y = tiny_problem(dtype=dtype)
        Z1, A1, Z2, A2 = nn.forward_prop(params, X)
        grads = nn.backward_prop(params, X, Y, Z1, A1, A2)
        assert {a.dtype for a in (Z1, A1, Z2, A2, *grads.values())} == {np.dtype(dtype)}
    # training on uint8 pixels hands backprop nothing but float32 arrays
    seen = set()
    real_backward_prop = nn.backward_prop

    def spy(*arrays):
        grads = real_backward_prop(*arrays)
        seen.update(a.dtype for a in (*arrays[1:], *grads.values()))
        return grads
    monkeypatch.setattr(nn, "backward_prop", spy)
    X8 = np.random.default_rng(0).integers(0, 256, (50, 12), dtype=np.uint8)
    params, _ = nn.train(X8, np.arange(50) % 4, hidden=5, epochs=1, batch_size=10,
                         num_classes=4, log=None)
    assert seen == {np.dtype(np.float32)}
    assert {P.dtype for P in params.values()} == {np.dtype(np.float32)}


def test_backward_prop_matches_central_differences():
    # every entry of every parameter, in float64, on 5 examples, with non-zero biases
    params, X, y, Y = tiny_problem()
    Z1, A1, Z2, A2 = nn.forward_prop(params, X)
    assert np.abs(Z1).min() > 1e-3  # no unit sits on ReLU's kink, where no derivative exists
    analytic = nn.backward_prop(params, X, Y, Z1, A1, A2)
    numeric = nn.numerical_gradients(params, X, Y)
    for key in params:
        assert np.abs(analytic[key]).max() > 1e-3  # the check compares real numbers, not zeros
        assert nn.relative_error(analytic[key], numeric[key]) < 1e-6, key


def test_initial_loss_is_ln10_with_small_output_weights():
    # with W2 ~ 0 every class gets probability 1/10, so the loss must be ln 10 = 2.3026
    rng = np.random.default_rng(0)
    params = nn.init_params(784, 128, 10, rng, np.float64)
    params["W2"] *= 1e-4
    X = rng.random((200, 784))
    Y = nn.one_hot(rng.integers(0, 10, 200), 10, np.float64)
    assert abs(nn.cross_entropy(nn.forward_prop(params, X)[3], Y) - math.log(10)) < 1e-3


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.5), ("momentum", 0.1), ("adam", 0.01)])
def test_each_optimizer_overfits_twenty_examples(optimizer, lr):
    # a few hundred steps drive the loss on 20 random examples with random labels to ~0:
    # the whole loop (forward, backward, update) works end to end
    rng = np.random.default_rng(1)
    X = rng.random((20, 64))
    y = rng.integers(0, 10, 20)
    params, history = nn.train(X, y, hidden=32, epochs=300, batch_size=20, lr=lr,
                               optimizer=optimizer, schedule="constant", log=None)
    assert history[0]["loss"] > 1.5
    assert history[-1]["loss"] < 0.01
    assert nn.accuracy(nn.predict(params, X), y) == 1.0


def test_learning_rate_schedules():
    # cosine falls from lr to 0; step divides by 10 at half and three quarters; constant is flat
    assert nn.learning_rate(0.1, 0, 100, "cosine") == 0.1
    assert math.isclose(nn.learning_rate(0.1, 50, 100, "cosine"), 0.05)
    assert nn.learning_rate(0.1, 99, 100, "cosine") < 1e-4
    assert [nn.learning_rate(1.0, s, 100, "step") for s in (0, 49, 50, 74, 75, 99)] == \
        pytest.approx([1, 1, 0.1, 0.1, 0.01, 0.01])
    assert nn.learning_rate(0.1, 99, 100, "constant") == 0.1


def test_weight_decay_shrinks_the_weights():
    # with zero gradients, L2 weight decay alone pulls W toward 0 and leaves the biases alone
    params, X, y, Y = tiny_problem()
    before = {k: P.copy() for k, P in params.items()}
    zero = {k: np.zeros_like(P) for k, P in params.items()}
    nn.update_params(params, zero, nn.init_optimizer(params, "sgd"), 0.1, "sgd",
                     weight_decay=0.5)
    assert np.allclose(params["W1"], 0.95 * before["W1"])
    assert np.array_equal(params["b1"], before["b1"])


def test_denormal_optimizer_state_is_flushed():
    # momentum that has decayed toward 0 is set to exactly 0 before it reaches the slow
    # subnormal range; ordinary values are left as they are
    params, *_ = tiny_problem(dtype=np.float32)
    state = nn.init_optimizer(params, "momentum")
    state["v"]["W1"][0, :3] = [1e-33, -1e-31, 1e-3]
    nn.flush_denormals(state)
    assert list(state["v"]["W1"][0, :3]) == [0, 0, np.float32(1e-3)]


def test_same_seed_gives_bit_identical_weights_and_another_seed_does_not():
    X, y = digits()
    runs = [nn.train(X, y, hidden=16, epochs=2, seed=s, log=None)[0] for s in (3, 3, 4)]
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not np.array_equal(runs[0]["W1"], runs[2]["W1"])


def digits():
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    return np.rint(X * 255 / 16).astype(np.uint8), y


def test_learns_the_bundled_8x8_digits():
    # scikit-learn's 1,797 digits are always there: > 95% on a held-out fifth in < 1 s
    X_train, y_train, X_test, y_test, _ = nn.load_digits_data(seed=0)
    params, history = nn.train(X_train, y_train, epochs=30, batch_size=32, log=None)
    assert nn.accuracy(nn.predict(params, X_test), y_test) > 0.95


@needs_mnist
def test_learns_real_mnist_to_98_percent_with_the_defaults():
    # the headline claim: the default settings reach ~98% on the 10,000 MNIST test images
    # (98.04% measured for seed 0; the margin allows for other CPUs' rounding)
    with np.load(MNIST_NPZ) as f:
        X_train, y_train, X_test, y_test = nn.split_mnist(f["X"], f["y"])
    X_train, y_train, X_val, y_val = nn.hold_out(X_train, y_train, nn.VAL_SIZE,
                                                 np.random.default_rng(nn.SEED))
    params, history = nn.train(X_train, y_train, X_val, y_val, log=None)
    assert history[-1]["val_acc"] > 0.97
    assert nn.accuracy(nn.predict(params, X_test), y_test) >= 0.978


# ----------------------------------------------------------------------------
# Data: the OpenML path, its cache, the fallback, and the --data formats

@pytest.fixture(scope="session")
def mnist_home(tmp_path_factory):
    """A writable copy of the offline OpenML cache, after load_mnist has parsed it once."""
    if not OPENML_CACHE.exists():
        pytest.skip(f"offline OpenML cache not found at {OPENML_CACHE}")
    home = tmp_path_factory.mktemp("scikit_learn_data")
    shutil.copytree(OPENML_CACHE, home, dirs_exist_ok=True)
    assert not (home / nn.CACHE_NAME).exists()
    X, y = nn.load_mnist(str(home))  # the real fetch_openml, reading the cache offline
    return home, X, y


@needs_mnist
def test_fetch_openml_path_gives_mnist_and_writes_a_cache_that_is_used(mnist_home, monkeypatch):
    # parsing the OpenML download gives exactly MNIST as uint8, C-ordered, with integer labels;
    # the parsed arrays are cached and later calls read them without touching scikit-learn
    home, X, y = mnist_home
    with np.load(MNIST_NPZ) as f:
        assert np.array_equal(X, f["X"]) and np.array_equal(y, f["y"])
    assert X.dtype == y.dtype == np.uint8 and X.flags["C_CONTIGUOUS"]
    assert (home / nn.CACHE_NAME).exists()
    import sklearn.datasets

    def no_fetch(*args, **kwargs):
        raise AssertionError("fetch_openml called although the cache exists")
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", no_fetch)
    X2, y2 = nn.load_mnist(str(home))
    assert np.array_equal(X2, X) and np.array_equal(y2, y)


def fake_mnist():
    """What fetch_openml returns for MNIST, in shape and type (float64 pixels, string labels)."""
    X = np.zeros((70000, 784))
    X[:, 0] = np.arange(70000) % 256
    return X, np.array([str(d % 10) for d in range(70000)], dtype=object)


def test_unreadable_cache_is_rebuilt_with_a_note(tmp_path, monkeypatch, capsys):
    # a truncated cache file is replaced by a fresh parse, and the run says so in one line
    import sklearn.datasets
    X, y = fake_mnist()
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", lambda *a, **k: (X, y))
    (tmp_path / nn.CACHE_NAME).write_bytes(b"PK\x03\x04 half a file")
    X2, y2 = nn.load_mnist(str(tmp_path))
    assert "cannot use the MNIST cache" in capsys.readouterr().out
    assert np.array_equal(X2, X) and np.array_equal(y2, y.astype(np.uint8))
    assert nn.read_mnist_cache(str(tmp_path)) is not None  # rebuilt and readable


def test_read_only_cache_folder_is_no_error(tmp_path, monkeypatch, capsys):
    # when the cache cannot be written the data is still returned, with a note, and no
    # temporary file is left behind
    import sklearn.datasets
    X, y = fake_mnist()
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", lambda *a, **k: (X, y))

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(nn.tempfile, "mkstemp", refuse)
    X2, y2 = nn.load_mnist(str(tmp_path))
    assert "could not write the MNIST cache" in capsys.readouterr().out
    assert np.array_equal(X2, X)
    assert list(tmp_path.iterdir()) == []


def no_network(monkeypatch):
    """Make every download fail the way it fails offline, without reaching for the network."""
    from urllib.error import URLError
    import sklearn.datasets._openml as openml

    def offline(*args, **kwargs):
        raise URLError("simulated: no network")
    monkeypatch.setattr(openml, "urlopen", offline)
    monkeypatch.setattr(openml.time, "sleep", lambda s: None)  # skip the retry delays


def test_without_network_a_default_run_falls_back_to_the_bundled_digits(tmp_path, monkeypatch,
                                                                         capsys):
    # no MNIST and none asked for by name: one note, then a run on the 8x8 digits
    no_network(monkeypatch)
    assert nn.main(["--data-home", str(tmp_path), "--epochs", "2"]) == 0
    out = capsys.readouterr().out
    assert "cannot get MNIST (simulated: no network)" in out
    assert "scikit-learn digits (8x8)" in out
    assert out.splitlines()[-1].startswith("test accuracy: ")


def test_without_network_an_explicit_mnist_request_fails_clearly(tmp_path, monkeypatch, capsys):
    # --dataset mnist must not silently train on something else: one line, exit 1
    no_network(monkeypatch)
    assert nn.main(["--data-home", str(tmp_path), "--dataset", "mnist"]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("error: cannot get MNIST") and captured.err.count("\n") == 1
    assert "--data" in captured.err and "digits" not in captured.out


def small_mnist_like(n_train=300, n_test=100, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_train),
            rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8), rng.integers(0, 10, n_test))


def write_idx(path, array, gz):
    magic = 0x800 | array.ndim | 0  # 0x08: unsigned byte
    header = magic.to_bytes(4, "big") + b"".join(d.to_bytes(4, "big") for d in array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(data)
    else:
        Path(path).write_bytes(data)


def check_loaded(loaded, expected):
    X_train, y_train, X_test, y_test, _ = loaded
    assert X_train.shape == (len(expected[0]), 784) and X_train.dtype == np.uint8
    assert np.array_equal(X_train, expected[0].reshape(len(expected[0]), -1))
    assert np.array_equal(y_train, expected[1]) and y_train.dtype == np.uint8
    assert np.array_equal(X_test, expected[2].reshape(len(expected[2]), -1))
    assert np.array_equal(y_test, expected[3])


@pytest.mark.parametrize("gz", [False, True])
def test_data_from_an_idx_folder(tmp_path, gz):
    # the four original MNIST files, plain or gzipped, give back exactly what was written
    arrays = small_mnist_like()
    for name, a in zip(["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"], arrays):
        write_idx(tmp_path / name, a, gz)
    check_loaded(nn.load_data_path(str(tmp_path), seed=0), arrays)


def test_data_from_a_keras_npz(tmp_path):
    arrays = small_mnist_like()
    np.savez(tmp_path / "mnist.npz", x_train=arrays[0], y_train=arrays[1], x_test=arrays[2],
             y_test=arrays[3])
    check_loaded(nn.load_data_path(str(tmp_path / "mnist.npz"), seed=0), arrays)


def test_data_from_an_npz_of_x_and_y(tmp_path):
    # 70,000 rows are split like MNIST (60,000 / 10,000 in order); other sizes at random,
    # the same way for the same seed, with every row used exactly once
    X = np.random.default_rng(0).integers(0, 256, (70000, 784), dtype=np.uint8)
    y = np.arange(70000) % 10
    np.savez(tmp_path / "big.npz", X=X, y=y)
    check_loaded(nn.load_data_path(str(tmp_path / "big.npz"), seed=0),
                 (X[:60000], y[:60000], X[60000:], y[60000:]))
    np.savez(tmp_path / "small.npz", X=X[:500], y=y[:500])
    a = nn.load_data_path(str(tmp_path / "small.npz"), seed=5)
    b = nn.load_data_path(str(tmp_path / "small.npz"), seed=5)
    assert len(a[1]) == 400 and len(a[3]) == 100
    assert all(np.array_equal(u, v) for u, v in zip(a[:4], b[:4]))
    rows = {r.tobytes() for r in np.concatenate([a[0], a[2]])}
    assert rows == {r.tobytes() for r in X[:500]}


@pytest.mark.parametrize("header", [False, True])
def test_data_from_a_csv_folder(tmp_path, header):
    # mnist_train.csv / mnist_test.csv, label first, with or without a header row
    arrays = small_mnist_like(60, 20)
    for name, X, y in [("mnist_train.csv", *arrays[:2]), ("mnist_test.csv", *arrays[2:])]:
        rows = np.column_stack([y, X.reshape(len(X), -1)])
        head = "label," + ",".join(f"{i // 28 + 1}x{i % 28 + 1}" for i in range(784)) \
            if header else ""
        np.savetxt(tmp_path / name, rows, fmt="%d", delimiter=",", header=head, comments="")
    check_loaded(nn.load_data_path(str(tmp_path), seed=0), arrays)


# ----------------------------------------------------------------------------
# Weights on disk

def test_save_and_load_round_trip(tmp_path):
    # every array comes back bit for bit, with its dtype, and predicts the same
    params, X, y, Y = tiny_problem(dtype=np.float32)
    nn.save_params(tmp_path / "model.npz", params)
    loaded = nn.load_params(tmp_path / "model.npz")
    assert loaded.keys() == params.keys()
    for key in params:
        assert loaded[key].dtype == params[key].dtype
        assert np.array_equal(loaded[key], params[key])
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left


# ----------------------------------------------------------------------------
# The command line, as a user runs it

def test_importing_the_script_does_nothing_but_define(tmp_path):
    # no output, no training, and no scikit-learn import (it alone takes ~1 s)
    code = "import sys, nn_from_scratch; print('sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=HERE, timeout=60)
    assert done.stdout == "False\n" and done.stderr == ""


def test_help_lists_every_flag():
    done = run_cli("--help")
    assert done.returncode == 0
    for flag in ["--hidden", "--epochs", "--batch-size", "--lr", "--optimizer", "--seed",
                 "--data", "--dataset", "--data-home", "--save", "--load", "--subset"]:
        assert re.search(rf"(?<![\w-]){flag}(?![\w-])", done.stdout), flag


@needs_mnist
def test_command_line_trains_saves_and_loads(mnist_home, tmp_path):
    # a short run on the cached MNIST: header, aligned epoch lines, report, exact last line;
    # --load then evaluates the saved weights to exactly the same test accuracy
    home = mnist_home[0]
    model = tmp_path / "model.npz"
    done = run_cli("--data-home", home, "--epochs", 2, "--subset", 3000, "--save", model)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("MNIST: train 3,000, val 5,000, test 10,000 | network 784-128-10, 101,770")
    epochs = [line for line in lines if line.startswith("epoch ")]
    assert len(epochs) == 2 and len({line.index("| loss") for line in epochs}) == 1
    assert "confusion matrix (rows: true label, columns: predicted):" in lines
    last = lines[-1]
    assert last.startswith("test accuracy: ") and last.endswith("%")
    assert float(last.split()[-1][:-1]) > 85
    again = run_cli("--data-home", home, "--load", model)
    assert again.returncode == 0 and again.stdout.splitlines()[-1] == last
