"""Tests for nn_from_scratch.py: python -m pytest -q test_nn.py

Real MNIST is read where the project keeps it: in scikit-learn's data folder
($SCIKIT_LEARN_DATA, else ~/scikit_learn_data), which `python nn_from_scratch.py` fills on
its first run, or else in $NN_SHARED_DATA (mnist.npz and an OpenML data folder
scikit_learn_data/) where that is set. The tests that need it are skipped, saying what to
run, where it is absent. No test reaches for the network, and none writes into that folder.
"""

import ast
import base64
import concurrent.futures
import contextlib
import copy
import ctypes
import gzip
import http.client
import importlib.util
import inspect
import json
import math
import os
import pickle
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest

import nn_from_scratch as nn

HERE = Path(__file__).resolve().parent
# Where MNIST is: the data folder load_mnist() reads, with the parsed cache it keeps and
# fetch_openml's own download beside it; then $NN_SHARED_DATA's, if set.
DATA_HOME = Path(os.path.expanduser(nn.default_data_home()))
SHARED = [Path(os.environ["NN_SHARED_DATA"])] if os.environ.get("NN_SHARED_DATA") else []
OPENML_DESCRIPTION = Path("openml/openml.org/api/v1/json/data/554.gz")  # MNIST is dataset 554
MNIST_NPZ = next((path for path in [DATA_HOME / nn.CACHE_NAME, *(s / "mnist.npz" for s in SHARED)]
                  if path.exists()), None)
OPENML_HOME = next((home for home in [DATA_HOME, *(s / "scikit_learn_data" for s in SHARED)]
                    if (home / OPENML_DESCRIPTION).exists()), None)
NOT_FETCHED = (f"not in {DATA_HOME}{''.join(f' nor in {s}' for s in SHARED)}: "
               "run `python nn_from_scratch.py` once, to fetch it")
# Any warning (from NumPy: overflow, divide by zero, invalid value) fails the test it occurs in.
pytestmark = pytest.mark.filterwarnings("error")


def unavailable(reason):
    """Skip a test whose data or optional package is not here, saying why. CI provides all of
    them (.ci/run), so there it fails instead of passing unseen."""
    (pytest.fail if os.environ.get("CI") else pytest.skip)(reason)


def missing(what, install):
    """unavailable() for something not installed, saying how to install it."""
    unavailable(f"{what} is not installed ({install})")


@pytest.fixture(scope="session")
def mnist():
    """Real MNIST as X (70000, 784) and y (70000,), uint8, read-only: the tests share them."""
    if MNIST_NPZ is None:
        unavailable(f"real MNIST is {NOT_FETCHED}")
    with np.load(MNIST_NPZ) as f:
        X, y = f["X"], f["y"]
    X.flags.writeable = y.flags.writeable = False
    return X, y


needs_mnist = pytest.mark.usefixtures("mnist")


@pytest.fixture(scope="session", autouse=True)
def data_folder_of_their_own(tmp_path_factory):
    """For the whole run, $SCIKIT_LEARN_DATA is an empty folder (MNIST was looked for above,
    before this), so that no test, nor a process it starts, reads or writes the user's data
    folder unasked: a test that needs MNIST's folder takes mnist_home, a copy."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCIKIT_LEARN_DATA", str(tmp_path_factory.mktemp("empty_data_home")))
        yield


def optional(module, install):
    """Import an optional module (Pillow, selenium), or skip the test with missing()."""
    try:
        return importlib.import_module(module)
    except ImportError:
        pass  # (skipped outside the except block, so that no ImportError is chained to it)
    missing(module.split(".")[0], install)


def tiny_problem(n=5, d=12, hidden=7, k=4, seed=0, dtype=np.float64):
    """A small network with non-zero biases and a batch of random data."""
    rng = np.random.default_rng(seed)
    params = nn.init_params([d, hidden, k], rng, dtype)
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
    params = nn.init_params([784, 128, 10], rng)
    X = rng.random((32, 784), dtype=np.float32)
    Y = nn.one_hot(rng.integers(0, 10, 32), 10)
    Z1, A1, Z2, A2 = nn.forward_prop(params, X)
    assert Z1.shape == A1.shape == (32, 128) and Z2.shape == A2.shape == (32, 10)
    grads = nn.backward_prop(params, X, Y, [Z1, A1, Z2, A2])
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
        grads = nn.backward_prop(params, X, Y, [Z1, A1, Z2, A2])
        assert {a.dtype for a in (Z1, A1, Z2, A2, *grads.values())} == {np.dtype(dtype)}
    # training on uint8 pixels hands backprop nothing but float32 arrays
    seen = set()
    real_backward_prop = nn.backward_prop

    def spy(params, X, Y, cache, *rest):
        grads = real_backward_prop(params, X, Y, cache, *rest)
        seen.update(a.dtype for a in (X, Y, *cache, *grads.values()))
        return grads
    monkeypatch.setattr(nn, "backward_prop", spy)
    X8 = np.random.default_rng(0).integers(0, 256, (50, 12), dtype=np.uint8)
    params, _ = nn.train(X8, np.arange(50) % 4, hidden=5, epochs=1, batch_size=10,
                         num_classes=4, augment=False, log=None)
    assert seen == {np.dtype(np.float32)}
    assert {P.dtype for P in params.values()} == {np.dtype(np.float32)}


def test_backward_prop_matches_central_differences():
    # every entry of every parameter, in float64, on 5 examples, with non-zero biases
    # (the same function --gradcheck runs)
    rows = nn.gradient_check()
    assert [r["name"] for r in rows] == ["W1", "b1", "W2", "b2"]
    for r in rows:
        assert r["max_grad"] > 1e-3  # the check compares real numbers, not zeros
        assert r["rel_error"] < 1e-6 and r["ok"], r
    params, X, y, Y = tiny_problem()  # and on a second, differently shaped problem
    Z1, A1, Z2, A2 = nn.forward_prop(params, X)
    assert np.abs(Z1).min() > 1e-3  # no unit sits on ReLU's kink, where no derivative exists
    analytic = nn.backward_prop(params, X, Y, [Z1, A1, Z2, A2])
    numeric = nn.numerical_gradients(params, X, Y)
    for key in params:
        assert nn.relative_error(analytic[key], numeric[key]) < 1e-6, key


def test_initial_loss_is_ln10_with_small_output_weights():
    # with W2 ~ 0 every class gets probability 1/10, so the loss must be ln 10 = 2.3026
    rng = np.random.default_rng(0)
    params = nn.init_params([784, 128, 10], rng, np.float64)
    params["W2"] *= 1e-4
    X = rng.random((200, 784))
    Y = nn.one_hot(rng.integers(0, 10, 200), 10, np.float64)
    assert abs(nn.cross_entropy(nn.forward_prop(params, X)[3], Y) - math.log(10)) < 1e-3


# ----------------------------------------------------------------------------
# Any depth, any activation

def unrolled_two_layers(params, X, Y):
    """The README's walk-through of 784-128-10, written out line by line: forward, backward."""
    Z1 = X @ params["W1"] + params["b1"]
    A1 = nn.ReLU(Z1)
    Z2 = A1 @ params["W2"] + params["b2"]
    A2 = nn.softmax(Z2)
    dZ2 = (A2 - Y) / len(X)
    dW2, db2 = A1.T @ dZ2, dZ2.sum(axis=0)
    dZ1 = (dZ2 @ params["W2"].T) * nn.ReLU_deriv(Z1)
    dW1, db1 = X.T @ dZ1, dZ1.sum(axis=0)
    return [Z1, A1, Z2, A2], {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def test_the_layer_loop_for_two_layers_is_the_unrolled_walk_through_bit_for_bit():
    # forward_prop and backward_prop for L = 2 compute exactly what the README's equations
    # do, in float32 at the default's shapes, so the default network's numbers cannot move
    rng = np.random.default_rng(0)
    params = nn.init_params([784, 128, 10], rng)
    X = rng.random((256, 784), dtype=np.float32)
    Y = nn.one_hot(rng.integers(0, 10, 256), 10)
    cache = nn.forward_prop(params, X)
    expected_cache, expected_grads = unrolled_two_layers(params, X, Y)
    assert len(cache) == 4
    assert all(np.array_equal(a, b) for a, b in zip(cache, expected_cache))
    grads = nn.backward_prop(params, X, Y, cache)
    assert list(grads) == ["W1", "b1", "W2", "b2"]
    assert all(np.array_equal(grads[key], expected_grads[key]) for key in grads)


def test_a_deep_network_has_a_shape_for_every_layer():
    # 784-256-128-10: W1..W3 and b1..b3 chain, forward_prop gives [Z1, A1, ..., Z3, A3] with
    # A3 the probabilities, and every gradient has its parameter's key and shape
    rng = np.random.default_rng(0)
    params = nn.init_params(nn.layer_sizes(784, (256, 128), 10), rng)
    assert {k: P.shape for k, P in params.items()} == {
        "W1": (784, 256), "b1": (256,), "W2": (256, 128), "b2": (128,), "W3": (128, 10),
        "b3": (10,)}
    X = rng.random((32, 784), dtype=np.float32)
    cache = nn.forward_prop(params, X)
    assert [A.shape for A in cache] == [(32, 256)] * 2 + [(32, 128)] * 2 + [(32, 10)] * 2
    assert np.allclose(cache[-1].sum(axis=1), 1) and cache[-1].min() >= 0
    grads = nn.backward_prop(params, X, nn.one_hot(rng.integers(0, 10, 32), 10), cache)
    assert {k: g.shape for k, g in grads.items()} == {k: P.shape for k, P in params.items()}
    assert nn.layer_sizes(784, 128, 10) == [784, 128, 10]


@pytest.mark.parametrize("hidden", [0, -3, 2.5, "64", True, (64, 0)])
def test_a_width_that_is_not_a_whole_number_of_at_least_1_is_refused(hidden):
    X, y = digits()
    with pytest.raises(ValueError, match=r"one width per hidden layer, each a whole number >= 1"):
        nn.train(X[:100], y[:100], hidden=hidden, epochs=1, log=None)


def test_an_unknown_activation_is_refused_in_one_line():
    X, y = digits()
    with pytest.raises(ValueError, match=r"activation must be one of relu, sigmoid, tanh; got"):
        nn.train(X[:100], y[:100], activation="softplus", epochs=1, log=None)


def test_each_activation_sits_with_its_derivative():
    # each derivative is the slope of its function (central differences), keeps float32,
    # and sigmoid neither overflows nor warns for huge inputs
    Z = np.linspace(-6, 6, 48)  # 0, ReLU's kink, is not among them
    for name, (g, g_deriv) in nn.ACTIVATIONS.items():
        numeric = (g(Z + 1e-6) - g(Z - 1e-6)) / 2e-6
        assert np.allclose(g_deriv(Z), numeric, atol=1e-6), name
        Z32 = Z.astype(np.float32)
        assert g(Z32).dtype == g_deriv(Z32).dtype == np.float32, name
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        s = nn.sigmoid(np.array([-1000.0, 0.0, 1000.0], dtype=np.float32))
    assert np.array_equal(s, [0, 0.5, 1])
    assert nn.sigmoid_deriv(np.zeros(1))[0] == 0.25 and nn.tanh_deriv(np.zeros(1))[0] == 1


def test_the_initialisation_follows_the_activation():
    # He, std sqrt(2 / fan_in), for ReLU; Glorot, sqrt(2 / (fan_in + fan_out)), for sigmoid
    # and tanh; biases 0
    for activation, fan in (("relu", 400), ("sigmoid", 600), ("tanh", 600)):
        params = nn.init_params([400, 200, 10], np.random.default_rng(0),
                                activation=activation)
        assert abs(params["W1"].std() / math.sqrt(2 / fan) - 1) < 0.02, activation
        assert not params["b1"].any() and not params["b2"].any()


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
def test_backprop_matches_central_differences_at_any_depth(activation):
    # every W and b of a 20-7-5-3-10 network, in float64: the loop gets each layer right
    rows = nn.gradient_check(sizes=(20, 7, 5, 3, 10), activation=activation)
    assert [r["name"] for r in rows] == ["W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]
    for r in rows:
        assert r["max_grad"] > 1e-3 and r["ok"], r


def test_a_wrong_derivative_fails_the_gradient_check_in_the_layers_below_it(capsys,
                                                                            monkeypatch):
    # tanh's derivative swapped for ReLU's: the output layer is still right, every layer
    # the gradient reached through an activation is wrong, and the command says so
    monkeypatch.setitem(nn.ACTIVATIONS, "tanh", (nn.tanh, nn.ReLU_deriv))
    code, out, err = run_main(["--gradcheck", "--hidden", 7, 5, 3, "--activation", "tanh"],
                              capsys)
    assert code == 1 and "network 20-7-5-3-10, tanh" in out
    results = dict(re.findall(r"^([Wb]\d) .* (pass|FAIL)$", out, re.M))
    assert results == {**{k: "FAIL" for k in ("W1", "b1", "W2", "b2", "W3", "b3")},
                       "W4": "pass", "b4": "pass"}


def test_gradcheck_checks_the_network_it_is_given(capsys):
    code, out, err = run_main(["--gradcheck", "--hidden", 7, 5, 3, "--activation", "tanh"],
                              capsys)
    assert code == 0 and out.startswith(
        "gradient check: network 20-7-5-3-10, tanh, cross-entropy, float64")
    assert re.findall(r"^([Wb]\d) .* pass$", out, re.M) == [
        "W1", "b1", "W2", "b2", "W3", "b3", "W4", "b4"]


def test_the_header_names_the_network_and_its_initialisation():
    assert nn.describe_network([784, 256, 128, 10], "relu") == \
        "network 784-256-128-10, 235,146 parameters, ReLU with He initialisation"
    assert nn.describe_network([784, 128, 10], "sigmoid") == \
        "network 784-128-10, 101,770 parameters, sigmoid with Glorot initialisation"


def test_deep_sigmoid_layers_learn_slowly_at_first_and_relu_layers_do_not():
    # Nielsen's chapter 5, on the bundled digits, 64-30-30-30-30-10, epoch 1: the first
    # sigmoid layer's ||dloss/db|| is ~1% of the last hidden layer's (the gradient shrinks
    # through every sigmoid); with ReLU and He initialisation the layers stay close
    X, y = digits()
    for activation, low, high in (("sigmoid", 0, 0.05), ("relu", 0.33, 3), ("tanh", 0.33, 3)):
        for seed in (0, 1):
            params, history = nn.train(X, y, hidden=(30, 30, 30, 30), activation=activation,
                                       epochs=1, seed=seed, log=None)
            speeds = history[0]["db_norm"]
            assert len(speeds) == 5 and all(s > 0 for s in speeds)
            assert low < speeds[0] / speeds[3] < high, (activation, seed, speeds)


def test_a_layers_speed_is_the_length_of_its_bias_gradient():
    # Nielsen's measure, ||dloss/db_l||: with the whole training set as one batch, epoch 1's
    # record holds the lengths of the bias gradients at the initial weights
    X, y = digits()
    params, history = nn.train(X, y, hidden=(16, 8), epochs=1, batch_size=len(X), log=None)
    initial = nn.init_params([64, 16, 8, 10], np.random.default_rng(nn.SEED))
    X1 = nn.scale_pixels(X)
    grads = nn.backward_prop(initial, X1, nn.one_hot(y), nn.forward_prop(initial, X1))
    expected = [np.linalg.norm(grads[f"b{l}"]) for l in (1, 2, 3)]
    assert np.allclose(history[0]["db_norm"], expected, rtol=1e-4)


def test_layer_speeds_show_in_the_terminal_for_two_or_more_hidden_layers_only(capsys):
    # the default network's lines are as before; a deep one ends each epoch line with each
    # hidden layer's speed relative to the last, and the run with a summary line
    code, out, err = run_main(["--dataset", "digits", "--epochs", 2], capsys)
    assert code == 0 and "layers learn" not in out and "hidden layer 1 learned" not in out
    code, out, err = run_main(["--dataset", "digits", "--epochs", 2, "--hidden", 30, 30, 30,
                               "--activation", "sigmoid"], capsys)
    epochs = [line for line in out.splitlines() if line.startswith("epoch")]
    assert len(epochs) == 2
    assert all(re.search(r"\| layers learn \S+x \S+x 1x \| saturated \d+% \d+% \d+%$", line)
               for line in epochs), epochs
    first = float(re.search(r"layers learn (\S+)x", epochs[0])[1])
    assert first < 0.1  # sigmoid: layer 1 far slower than layer 3
    summary = re.search(r"^hidden layer 1 learned (\d+)x slower than hidden layer 3 in epoch 1",
                        out, re.M)
    assert summary and int(summary[1]) > 10, out


def test_the_log_keeps_each_layers_speed(tmp_path, capsys):
    code, out, err = run_main(["--dataset", "digits", "--epochs", 2, "--hidden", 16, 8,
                               "--log", tmp_path / "run.json"], capsys)
    history = json.loads((tmp_path / "run.json").read_text())["history"]
    assert code == 0 and [len(r["db_norm"]) for r in history] == [3, 3]
    assert all(v > 0 for r in history for v in r["db_norm"])


def test_the_core_above_the_plumbing_banner_runs_on_its_own(monkeypatch):
    # pasted into a notebook on its own, the text up to the Plumbing banner defines all it
    # uses: it fetches MNIST (fetch_openml stood in for), trains a two-hidden-layer network
    # on the bundled digits, checks its input and its gradients, and evaluates
    import sklearn.datasets
    from sklearn.datasets import load_digits
    text = (HERE / "nn_from_scratch.py").read_text()
    core = text[:text.index("# " + "=" * 76 + "\n# Plumbing")]
    namespace = {"__name__": "notebook"}
    exec(compile(core, "pasted", "exec"), namespace)
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", lambda *a, **k: fake_mnist())
    X, y = namespace["fetch_mnist"]()  # as a notebook calls it: scikit-learn's data folder
    assert X.shape == (70000, 784) and X.dtype == y.dtype == np.uint8 and y[:3].tolist() == [0, 1, 2]
    X, y = load_digits(return_X_y=True)
    X = X / 16  # floats in [0, 1]
    train, predict, accuracy = namespace["train"], namespace["predict"], namespace["accuracy"]
    params, history = train(X[:1400], y[:1400], X[1400:1600], y[1400:1600], hidden=(32, 16),
                            epochs=20, batch_size=64, log=None)
    assert list(params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    assert accuracy(predict(params, X[1600:]), y[1600:]) > 0.9
    assert namespace["report"](predict(params, X[1600:]), y[1600:])[1].startswith("confusion")
    assert all(r["ok"] for r in namespace["gradient_check"](sizes=(10, 6, 4, 10),
                                                            activation="sigmoid"))
    with pytest.raises(ValueError, match="raw pixels"):
        train(X * 16, y, epochs=1, log=None)
    with pytest.raises(namespace["TrainingDiverged"]):
        train(X, y, lr=1e6, epochs=1, log=None)


def test_an_unset_learning_rate_suits_the_depth_and_the_activation(capsys):
    # deeper ReLU networks get a smaller rate, sigmoid a larger one, and the header says why;
    # a rate that is set is kept
    rates = [nn.default_lr("momentum", depth=d) for d in (1, 2, 3, 4)]
    assert rates[0] == nn.LR["momentum"] and rates == sorted(rates, reverse=True)
    assert rates[3] < rates[0]
    assert nn.default_lr("momentum", activation="sigmoid") > nn.LR["momentum"]
    code, out, err = run_main(["--dataset", "digits", "--epochs", 1, "--hidden", 32, 32, 32,
                               32], capsys)
    lr = nn.default_lr("momentum", batch_size=256, depth=4)
    assert f"lr {lr:.3g} (the default for 4 hidden layers, cosine)" in out
    code, out, err = run_main(["--dataset", "digits", "--epochs", 1, "--activation", "sigmoid"],
                              capsys)
    lr = nn.default_lr("momentum", activation="sigmoid")
    assert f"lr {lr:.3g} (the default for sigmoid, cosine)" in out
    code, out, err = run_main(["--dataset", "digits", "--epochs", 1, "--hidden", 32, 32, 32,
                               32, "--lr", 0.3], capsys)
    assert "lr 0.3 (cosine)" in out


@needs_mnist
@pytest.mark.parametrize("hidden, goal", [((256, 128), 0.987), ((128, 128, 128, 128), 0.9853)])
def test_a_deeper_network_with_only_hidden_set_trains_at_least_as_well_as_the_default(
        hidden, goal, capsys):
    # the goals for seed 0 on real MNIST: 784-256-128-10 at least 98.7% (above the one-layer
    # default's 98.53%), four layers of 128 at least the default's 98.53%
    code, out, err = run_main(["--data", MNIST_NPZ, "--hidden", *hidden], capsys)
    accuracy = float(re.search(r"^test accuracy: (\d+\.\d+)%$", out, re.M)[1]) / 100
    assert code == 0 and accuracy >= goal, out[-300:]


def test_a_trained_network_knows_its_activation_and_predict_never_guesses(tmp_path):
    # what train() returns is a dict of arrays that knows it was trained with tanh: predict
    # and predict_proba run it as tanh (before, as ReLU, with no word: 55% instead of 97% for
    # the README's tanh network), save_params and load_params keep it, and so do copies; an
    # activation= that contradicts it, and a plain dict with none given, are one line each
    X_train, y_train, X_test, y_test, _ = nn.load_digits_data(seed=0)
    params, _ = nn.train(X_train, y_train, hidden=(32, 16), activation="tanh", epochs=10,
                         batch_size=32, log=None)
    assert isinstance(params, dict) and params.activation == "tanh" and len(params) == 6
    as_tanh = nn.forward_prop(params, nn.scale_pixels(X_test), "tanh")[-1]
    assert np.array_equal(nn.predict_proba(params, X_test), as_tanh)
    assert nn.accuracy(nn.predict(params, X_test), y_test) > 0.9
    assert np.array_equal(nn.predict(params, X_test, "tanh"), as_tanh.argmax(axis=1))
    assert not np.allclose(nn.predict_proba(dict(params), X_test, "relu"), as_tanh)
    with pytest.raises(ValueError, match=r"^these weights were trained with activation='tanh', "
                                         r"not 'relu': leave activation= out$"):
        nn.predict(params, X_test, activation="relu")
    for call in (nn.predict, nn.predict_proba):
        with pytest.raises(ValueError, match=r"^these weights are a plain dict, .* pass "
                                             r"activation= one of relu, sigmoid, tanh$"):
            call(dict(params), X_test)
    with pytest.raises(ValueError, match="^activation must be one of relu, sigmoid, tanh; got"):
        nn.predict(dict(params), X_test, "swish")
    nn.save_params(tmp_path / "m.npz", params)
    loaded, activation = nn.load_params(tmp_path / "m.npz")
    assert activation == loaded.activation == "tanh"
    assert np.array_equal(nn.predict_proba(loaded, X_test), as_tanh)
    with pytest.raises(ValueError, match="plain dict"):
        nn.save_params(tmp_path / "n.npz", dict(params))
    for clone in (pickle.loads(pickle.dumps(params)), copy.deepcopy(params)):
        assert clone.activation == "tanh" and np.array_equal(clone["W3"], params["W3"])


def test_a_deep_tanh_network_saves_loads_and_shows_its_mistakes(tmp_path, capsys):
    # --save keeps every layer and the activation, and --load evaluates the same network:
    # the same test accuracy (a file read back as ReLU would score otherwise)
    model = tmp_path / "deep.npz"
    code, out, err = run_main(["--dataset", "digits", "--epochs", 5, "--hidden", 32, 16,
                               "--activation", "tanh", "--save", model], capsys)
    assert code == 0, err
    trained = out.splitlines()[-1]
    params, activation = nn.load_params(model)
    assert activation == "tanh" and list(params) == ["W1", "b1", "W2", "b2", "W3", "b3"]
    code, out, err = run_main(["--dataset", "digits", "--load", model, "--show-mistakes", 2,
                               "--ascii"], capsys)
    assert code == 0 and out.splitlines()[-1] == trained
    assert out.startswith(f"weights {model}: network 64-32-16-10, 2,778 parameters, tanh "
                          "with Glorot initialisation")
    assert "most confident mistakes" in out


def test_a_deep_network_reads_your_own_digit(tmp_path, capsys):
    # --predict with a saved 784-16-8-10 sigmoid network gives the probabilities that the
    # library computes with that activation
    rng = np.random.default_rng(0)
    params = nn.init_params([784, 16, 8, 10], rng, activation="sigmoid")
    nn.save_params(tmp_path / "m.npz", params, activation="sigmoid")
    image = 255 * draw(7, pen=8)
    np.save(tmp_path / "seven.npy", image)
    code, out, err = run_main(["--load", tmp_path / "m.npz", "--predict",
                               tmp_path / "seven.npy"], capsys)
    p = nn.predict_proba(params, nn.mnist_style(image)[None], "sigmoid")[0]
    assert code == 0 and f"seven.npy: {p.argmax()}" in out and nn.top_classes(p) in out


def test_weights_saved_before_networks_had_depth_still_load(tmp_path):
    # what --save wrote before: W1, b1, W2, b2 and sizes, no activation; read as ReLU
    params, *_ = tiny_problem()
    np.savez(tmp_path / "old.npz", **params, sizes=np.array([12, 7, 4]),
             settings=np.array(json.dumps({"hidden": 7})))
    loaded, activation = nn.load_params(tmp_path / "old.npz")
    assert activation == "relu" and list(loaded) == ["W1", "b1", "W2", "b2"]
    assert all(np.array_equal(loaded[key], params[key]) for key in params)


def deep_weights_file(tmp_path, change):
    params = nn.init_params([12, 7, 5, 4], np.random.default_rng(0))
    arrays = {**params, "sizes": np.array([12, 7, 5, 4]), "activation": np.array("tanh")}
    change(arrays)
    np.savez(tmp_path / "deep.npz", **arrays)
    return tmp_path / "deep.npz"


@pytest.mark.parametrize("change, message", [
    (lambda a: a.pop("b3"), "missing b3; a weights file saved with --save holds W1, b1, ..., W3"),
    (lambda a: a.update(W2=np.zeros((6, 5))), "layer 2: W2 is float64 (6, 5); a 12-7-5-4 "
                                              "network needs float32 or float64 (7, 5)"),
    (lambda a: a.update(b2=np.zeros(4)), "layer 2: b2 is float64 (4,)"),
    (lambda a: a.update(W4=np.zeros((4, 3))), "missing b4"),
    (lambda a: a.update(sizes=np.array([12, 7, 4])), "sizes must be 4 positive integers"),
    (lambda a: a.update(activation=np.array("softplus")), "activation 'softplus' is not one of"),
])
def test_a_model_file_whose_layers_do_not_chain_is_refused_naming_the_layer(change, message,
                                                                           tmp_path, capsys):
    path = deep_weights_file(tmp_path, change)
    with pytest.raises(nn.DataError) as e:
        nn.load_params(path)
    assert str(path) in str(e.value) and message in str(e.value)
    # and from the command line: one line, exit 1, before any data is read
    code, out, err = run_main(["--dataset", "digits", "--load", path], capsys)
    assert code == 1 and out == "" and err == f"error: {e.value}\n"


@pytest.mark.parametrize("optimizer, lr", [("sgd", 0.5), ("momentum", 0.1), ("adam", 0.01)])
def test_each_optimizer_overfits_twenty_examples(optimizer, lr):
    # a few hundred steps drive the loss on 20 random examples with random labels to ~0:
    # the whole loop (forward, backward, update) works end to end
    rng = np.random.default_rng(1)
    X = rng.random((20, 64))
    y = rng.integers(0, 10, 20)
    params, history = nn.train(X, y, hidden=32, epochs=300, batch_size=20, lr=lr,
                               optimizer=optimizer, schedule="constant", augment=False, log=None)
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


def test_tiny_weights_and_optimizer_state_are_flushed():
    # momentum that has decayed toward 0, and weights that have shrunk toward 0, are set to
    # exactly 0 before they reach the slow subnormal range; ordinary values are left alone
    params, *_ = tiny_problem(dtype=np.float32)
    state = nn.init_optimizer(params, "adam")
    state["m"]["W1"][0, :3] = [1e-33, -1e-31, 1e-3]
    state["v"]["b1"][:2] = [1e-35, 1e-3]
    params["W2"][0, :3] = [-1e-32, 1e-31, 1e-3]
    nn.flush_denormals(params, state)
    assert list(state["m"]["W1"][0, :3]) == [0, 0, np.float32(1e-3)]
    assert list(state["v"]["b1"][:2]) == [0, np.float32(1e-3)]
    assert list(params["W2"][0, :3]) == [0, 0, np.float32(1e-3)]


def test_adam_at_a_large_learning_rate_leaves_no_subnormal_weights():
    # Adam at lr 0.2 switches hidden units off for good; weight decay then shrinks their
    # weights geometrically toward 0. Unflushed, thousands of W1's entries end up subnormal
    # (every matrix product with them ~20x slower); flushed, they are exactly 0
    X, y = digits()
    params, _ = nn.train(X, y, epochs=40, batch_size=32, optimizer="adam", lr=0.2,
                         augment=False, log=None)
    tiny = np.finfo(np.float32).tiny
    for key, P in params.items():
        assert np.count_nonzero((P != 0) & (np.abs(P) < tiny)) == 0, key
    assert np.count_nonzero(params["W1"] == 0) > 1000  # the flush did happen


class FixedOffset:
    """Stands in for the generator in shift_images: always the offset (dy, dx)."""
    def __init__(self, dy, dx):
        self.offset = np.array([dy, dx])

    def integers(self, low, high, size):
        return self.offset


@pytest.mark.parametrize("dy", [-1, 0, 1])
@pytest.mark.parametrize("dx", [-1, 0, 1])
def test_shift_images_moves_every_image_by_the_offset_and_fills_with_blank(dy, dx):
    # pixel (r, c) lands at (r + dy, c + dx); what falls off the edge is gone; the strip
    # uncovered on the other side is 0; dtype and shape are kept
    X = np.zeros((2, 28, 28), dtype=np.uint8)
    X[0, 5, 7] = 200
    X[1] = np.arange(1, 785).reshape(28, 28) % 255 + 1  # no zeros anywhere
    moved = nn.shift_images(X.reshape(2, 784), FixedOffset(dy, dx)).reshape(2, 28, 28)
    assert moved.dtype == np.uint8
    assert moved[0, 5 + dy, 7 + dx] == 200 and moved[0].sum() == 200
    expected = np.roll(X[1], (dy, dx), axis=(0, 1))
    if dy:
        expected[0 if dy > 0 else 27, :] = 0
    if dx:
        expected[:, 0 if dx > 0 else 27] = 0
    assert np.array_equal(moved[1], expected)


def test_training_shifts_every_batch_when_augmenting_and_never_otherwise(monkeypatch):
    X, y = digits()
    calls = []
    real_shift = nn.shift_images
    monkeypatch.setattr(nn, "shift_images", lambda X, rng: calls.append(1) or real_shift(X, rng))
    nn.train(X, y, epochs=2, batch_size=256, augment=True, log=None)
    assert len(calls) == 2 * 8  # 1,797 images: 8 batches of up to 256
    calls.clear()
    nn.train(X, y, epochs=2, batch_size=256, augment=False, log=None)
    assert calls == []


def test_fetch_openml_arrays_train_in_float32_from_one_contiguous_copy(monkeypatch):
    # fetch_openml gives float64 pixels in column (Fortran) order; once scaled (X / 255),
    # train() copies them once into row order in float32, so every batch is a fast gather and
    # the network runs in float32 as for uint8 input (gathering rows from the Fortran array
    # measured ~35x slower a batch, float64 arithmetic ~2x); dtype=float64 is there to ask for
    class Watched(np.ndarray):
        """An array that counts the rows gathered from it."""
        gathers = 0

        def __getitem__(self, index):
            Watched.gathers += isinstance(index, np.ndarray)
            return super().__getitem__(index)

    X, y = digits()
    fortran = np.asfortranarray(X / 255.0)
    batches = []
    real_step = nn.train_step
    monkeypatch.setattr(nn, "train_step", lambda params, state, X, *a: batches.append(X)
                        or real_step(params, state, X, *a))
    params, _ = nn.train(fortran.view(Watched), y, epochs=1, log=None)
    assert Watched.gathers == 0  # every batch came from the row-order copy
    assert params["W1"].dtype == np.float32
    assert all(B.dtype == np.float32 and B.flags["C_CONTIGUOUS"] for B in batches)
    batches.clear()
    params, _ = nn.train(fortran, y, epochs=1, dtype=np.float64, log=None)
    assert params["W1"].dtype == np.float64 and batches[0].dtype == np.float64
    # and a float64 network sees uint8 pixels scaled in float64, not rounded to float32 first
    assert np.array_equal(nn.predict_proba(params, X[:5]),
                          nn.forward_prop(params, X[:5] / 255.0)[3])


def test_dtype_flag_trains_in_float64(capsys, monkeypatch):
    calls = train_spy(monkeypatch)
    code, out, err = run_main(["--dataset", "digits", "--epochs", 1, "--dtype", "float64"],
                              capsys)
    assert code == 0, err
    assert calls[-1]["dtype"] == np.float64 and ", float64" in out.splitlines()[1]


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
    params, history = nn.train(X_train, y_train, epochs=30, batch_size=32, augment=False,
                               log=None)
    assert nn.accuracy(nn.predict(params, X_test), y_test) > 0.95


def test_learns_real_mnist_to_98_point_2_percent_with_the_defaults(mnist):
    # the headline claim: the default settings reach ~98.5% on the 10,000 MNIST test images
    # (98.53% measured for seed 0; the margin allows for other CPUs' rounding)
    X_train, y_train, X_test, y_test = nn.split_mnist(*mnist)
    X_train, y_train, X_val, y_val = nn.hold_out(X_train, y_train, nn.VAL_SIZE,
                                                 np.random.default_rng(nn.SEED))
    # the command line shifts the batches for MNIST; train() does when asked
    params, history = nn.train(X_train, y_train, X_val, y_val, augment=nn.AUGMENT, log=None)
    assert history[-1]["val_acc"] > 0.97
    assert nn.accuracy(nn.predict(params, X_test), y_test) >= 0.982


# ----------------------------------------------------------------------------
# The classic lessons: initialisation (--init), the loss (--loss), dropout (--dropout)

def test_each_init_gives_the_weights_it_names():
    # he N(0, 2/fan_in) and glorot N(0, 2/(fan_in + fan_out)), matched to the activation
    # when unset; zeros every weight 0; normal N(0, 1); biases 0 in every case; the same
    # seed draws the same numbers whatever the init, so the shuffles that follow are alike
    sizes = [784, 256, 10]
    def stds(init, activation="relu"):
        rng = np.random.default_rng(0)
        params = nn.init_params(sizes, rng, np.float64, activation, init)
        assert all(not params[f"b{l}"].any() for l in (1, 2))
        return [params[f"W{l}"].std() for l in (1, 2)], rng.random()
    (he, after), _ = stds("he"), None
    assert np.allclose(he, [math.sqrt(2 / 784), math.sqrt(2 / 256)], rtol=0.02)
    assert np.allclose(stds("glorot")[0], [math.sqrt(2 / 1040), math.sqrt(2 / 266)], rtol=0.02)
    assert np.allclose(stds("normal")[0], [1, 1], rtol=0.02)
    assert stds("zeros")[0] == [0, 0]
    assert stds(None) == stds("he") and stds(None, "tanh") == stds("glorot", "tanh")
    assert len({stds(init)[1] for init in nn.INITS}) == 1
    with pytest.raises(ValueError, match="^init must be one of he, glorot, zeros, normal"):
        nn.train(np.zeros((4, 3), np.uint8), np.arange(4) % 2, init="ones", log=None)


def test_the_loss_before_training_is_ln_10_for_a_good_start_and_far_more_for_a_large_one(
        mnist):
    # on 5,000 MNIST images: He's start is within 0.15 of ln 10 = 2.30, the loss of knowing
    # nothing; N(0, 1)'s is ~30x that with ReLU and ~5x with sigmoid: confident nonsense
    X, y = mnist[0][:5000], mnist[1][:5000]
    def before(activation, init):
        params = nn.init_params([784, 128, 10], np.random.default_rng(0), np.float32,
                                activation, init)
        value, line = nn.loss_before_training(params, None, None, X, y)
        assert line.endswith("on the 5,000 validation images (ln 10 = 2.3026 for a network "
                             "that knows nothing)")
        assert line.split()[3] == f"{value:.4f}"
        return value
    assert abs(before("relu", None) - math.log(10)) < 0.15
    assert abs(before("sigmoid", None) - math.log(10)) < 0.15
    assert before("relu", "normal") > 30 and before("sigmoid", "normal") > 6


def test_the_loss_before_training_is_the_only_new_line_of_a_default_run(capsys):
    # it stands between the header and epoch 1; the epochs' lines gain nothing with one
    # hidden layer at the default init
    code, out, err = run_main(["--dataset", "digits", "--epochs", 2], capsys)
    lines = out.splitlines()
    assert code == 0 and lines[2].startswith("loss before training: ")
    assert re.fullmatch(r"loss before training: \d\.\d{4} on the 143 validation images "
                        r"\(ln 10 = 2\.3026 for a network that knows nothing\)", lines[2])
    assert lines[3].startswith("epoch 1/2") and re.search(r"\| \d\.\ds$", lines[3])
    assert not any("hidden units" in line for line in lines)


@pytest.mark.parametrize("activation", ["relu", "tanh"])
def test_all_zero_weights_learn_only_the_output_biases_and_answer_1(activation, mnist):
    # every hidden unit outputs 0 (ReLU(0) = tanh(0) = 0), so no gradient reaches any
    # weight: only b2 learns, the log of how common each digit is, and every answer is "1",
    # the commonest: exactly 11.35% of the test set. The run says symmetry was never broken
    X_train, y_train, X_test, y_test = nn.split_mnist(*mnist)
    lines = []
    params, history = nn.train(X_train, y_train, epochs=1, activation=activation,
                               init="zeros", log=lines.append)
    assert not any(params[key].any() for key in ("W1", "b1", "W2")) and params["b2"].any()
    assert nn.accuracy(nn.predict(params, X_test), y_test) == 0.1135
    assert lines[-1].startswith("hidden units identical: symmetry was never broken")
    assert "| dead 100%" in lines[-2] if activation == "relu" else "| saturated 0%" in lines[-2]


def test_all_zero_sigmoid_units_stay_copies_of_one_feature(mnist, capsys):
    # sigmoid(0) = 1/2, so the units do learn, but all alike: in float64 W1's 128 columns
    # stay one feature and the test accuracy stays far below the default's; in float32 the
    # matrix products round the units apart by ~1e-10 and they make a few features, not 128
    code, out, err = run_main(["--data", MNIST_NPZ, "--epochs", 3, "--activation", "sigmoid",
                               "--init", "zeros", "--dtype", "float64"], capsys)
    assert code == 0 and "hidden units identical: symmetry was never broken" in out
    assert float(re.search(r"^test accuracy: (\S+)%$", out, re.M)[1]) < 50
    X_train, y_train, _, _ = nn.split_mnist(*mnist)
    lines = []
    params, _ = nn.train(X_train[:20000], y_train[:20000], epochs=2, activation="sigmoid",
                         init="zeros", log=lines.append)
    assert nn.distinct_features(params["W1"], params["b1"]) < 16
    assert re.fullmatch(r"hidden units (identical: symmetry was never broken.*|: layer 1's 128 "
                        r"units compute \d distinct features? .*only rounding.*)", lines[-1])


def test_dropout_breaks_the_symmetry_of_all_zero_weights():
    # random masks tell the units apart where the data cannot, and the run says so
    X_train, y_train, _, _, _ = nn.load_digits_data(seed=0)
    lines = []
    params, _ = nn.train(X_train, y_train, hidden=32, epochs=5, activation="sigmoid",
                         init="zeros", dropout=0.2, log=lines.append)
    assert nn.distinct_features(params["W1"], params["b1"]) == 32
    assert lines[-1].endswith("they started the same, and only dropout's random masks told "
                              "them apart")


def test_distinct_features_counts_what_the_units_compute():
    rng = np.random.default_rng(0)
    W, b = rng.standard_normal((20, 6)), np.zeros(6)
    assert nn.distinct_features(W, b) == 6
    assert nn.distinct_features(np.repeat(W[:, :1], 6, axis=1), b) == 1
    assert nn.distinct_features(np.zeros((20, 6)), b) == 0
    copies = np.hstack([W[:, :2]] * 3) + 1e-9 * rng.standard_normal((20, 6))  # rounding
    assert nn.distinct_features(copies, b) == 2


def test_dead_relus_and_saturated_sigmoids_are_counted_per_hidden_layer():
    # a ReLU unit on for no example is dead; a sigmoid or tanh output within 1% of its range's
    # end (slope under 2% of its most) is saturated; each hidden layer has its own share
    Z1 = np.array([[1.0, -1, -2, 0], [-1, -1, 3, 0]])  # unit 0 and 2 on once; 1 and 3 never
    Z2 = np.array([[-1.0], [-2]])                      # the one unit never on
    samples = [nn.stuck_units([Z1, Z2], "relu"), nn.stuck_units([-Z1, -Z2], "relu")]
    assert nn.stuck_shares(samples[:1], "relu") == {"dead": [0.5, 1.0]}
    assert nn.stuck_shares(samples, "relu") == {"dead": [0.25, 0.0]}  # over the whole epoch
    assert nn.sigmoid(np.array(nn.SATURATED["sigmoid"])) == pytest.approx(0.995)
    assert np.tanh(nn.SATURATED["tanh"]) == pytest.approx(0.99)
    Z = np.array([[6.0, -6, 1, 0]])
    assert nn.stuck_shares([nn.stuck_units([Z], "sigmoid")], "sigmoid") == {"saturated": [0.5]}
    assert nn.stuck_shares([nn.stuck_units([Z], "tanh")], "tanh") == {"saturated": [0.5]}


def test_the_record_and_the_epoch_lines_show_stuck_units_when_they_teach_something(capsys):
    # every record has each hidden layer's share; the terminal shows it with two or more
    # hidden layers, or when --init is not the one matched to the activation
    def lines(*flags):
        code, out, err = run_main(["--dataset", "digits", "--epochs", 2, *flags], capsys)
        assert code == 0, err
        return [line for line in out.splitlines() if line.startswith("epoch ")]
    assert not any("dead" in line for line in lines())
    assert not any("dead" in line for line in lines("--init", "he"))
    assert all(re.search(r"\| dead \d+% \d+%$", line) for line in lines("--hidden", 16, 16))
    assert all(re.search(r"\| saturated \d+%$", line)
               for line in lines("--init", "normal", "--activation", "sigmoid"))
    X_train, y_train, _, _, _ = nn.load_digits_data(seed=0)
    _, history = nn.train(X_train, y_train, hidden=(16, 8), epochs=2, log=None)
    assert all(len(r["dead"]) == 2 and all(0 <= s <= 1 for s in r["dead"]) for r in history)


def test_squared_error_and_its_gradient_through_the_softmax():
    # (1/2n) sum (A - Y)^2; its gradient into the logits carries the softmax's slope, so a
    # confidently wrong answer gets almost none of the push that cross-entropy gives it
    A = np.array([[0.5, 0.5], [0.9, 0.1]])
    Y = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert nn.squared_error(A, Y) == pytest.approx((0.25 + 0.25 + 0.81 + 0.81) / 4)
    params = {"W1": np.eye(2), "b1": np.zeros(2), "W2": 20 * np.eye(2), "b2": np.zeros(2)}
    params = nn.Params(params, "relu")
    X, Y = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])  # sure of class 0; it is class 1
    cache = nn.forward_prop(params, X)
    assert cache[-1][0, 0] > 0.999
    push = {loss: np.abs(nn.backward_prop(params, X, Y, cache, loss=loss)["b2"]).max()
            for loss in nn.LOSSES}
    assert push["cross-entropy"] > 0.99 and push["mse"] < 0.01


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("loss, dropout", [("mse", 0.0), ("cross-entropy", 0.5), ("mse", 0.5)])
def test_backprop_matches_central_differences_for_squared_error_and_dropout(activation, loss,
                                                                            dropout):
    # every parameter of 20-7-5-3-10, in float64, through the squared error's softmax slope
    # and through one fixed set of dropout masks: relative error under 1e-6
    rows = nn.gradient_check(sizes=(20, 7, 5, 3, 10), activation=activation, loss=loss,
                             dropout=dropout)
    assert len(rows) == 8 and all(r["max_grad"] > 1e-4 for r in rows)
    assert all(r["rel_error"] < 1e-6 and r["ok"] for r in rows), rows


def test_the_gradient_check_fails_where_backprop_forgets_the_mask(monkeypatch):
    # the check is not fooled: a backward pass that ignores dropout's masks (here given the
    # cache as a plain list, which carries none) is caught
    real = nn.backward_prop
    monkeypatch.setattr(nn, "backward_prop", lambda params, X, Y, cache, activation, loss:
                        real(params, X, Y, list(cache), activation, loss))
    rows = nn.gradient_check(sizes=(20, 7, 5, 10), dropout=0.5)
    assert [r["name"] for r in rows if not r["ok"]] == ["W1", "b1", "W2", "b2"]


def test_gradcheck_on_the_command_line_takes_the_loss_and_dropout(capsys):
    code, out, err = run_main(["--gradcheck", "--hidden", 7, 5, "--activation", "tanh",
                               "--loss", "mse", "--dropout", 0.3], capsys)
    assert code == 0 and out.startswith("gradient check: network 20-7-5-10, tanh, mse, "
                                        "dropout 0.3 (one fixed mask), float64")
    assert sum(line.endswith("pass") for line in out.splitlines()) == 6


def test_dropout_masks_keep_each_unit_with_probability_1_minus_p_and_scale_it_up():
    params = nn.init_params([64, 100, 50, 10], np.random.default_rng(0))
    masks = nn.dropout_masks(params, 2000, 0.3, np.random.default_rng(1))
    assert [M.shape for M in masks] == [(2000, 100), (2000, 50)]
    for M in masks:
        assert M.dtype == np.float32 and set(np.unique(M)) == {0, np.float32(1 / 0.7)}
        assert abs(np.mean(M == 0) - 0.3) < 0.01 and abs(M.mean() - 1) < 0.02


def test_dropout_trains_by_the_seed_and_predicts_without_masks():
    # the masks come from the run's generator: the same seed, the same weights; they change
    # training (other weights than without dropout) but not predict, which is deterministic
    # and uses the whole network, unscaled
    X_train, y_train, X_test, y_test, _ = nn.load_digits_data(seed=0)
    runs = [nn.train(X_train, y_train, hidden=64, epochs=5, dropout=d, log=None)[0]
            for d in (0.5, 0.5, 0.0)]
    assert all(np.array_equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert not np.array_equal(runs[0]["W1"], runs[2]["W1"])
    P = nn.predict_proba(runs[0], X_test)
    assert np.array_equal(P, nn.predict_proba(runs[0], X_test))
    assert np.array_equal(P, nn.forward_prop(runs[0], nn.scale_pixels(X_test), "relu")[-1])
    assert nn.accuracy(P.argmax(axis=1), y_test) > 0.9
    with pytest.raises(ValueError, match=r"^dropout is the share of units dropped, >= 0 and "
                                         r"< 1; got 1"):
        nn.train(X_train, y_train, dropout=1, log=None)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_big_network_memorises_a_small_training_set_and_dropout_narrows_the_gap(seed):
    # the overfitting lesson in a second: 400 units learn all of 150 digits but a few in a
    # hundred fewer of the other 1,647; dropping half the units at each step (measured:
    # +1.0 to +1.3 points for seeds 0-2) does better on new digits, still memorising
    X, y = digits()
    order = np.random.default_rng(0).permutation(len(y))
    train, test = order[:150], order[150:]
    accuracies = {}
    for p in (0.0, 0.5):
        params, _ = nn.train(X[train], y[train], hidden=400, epochs=300, batch_size=64,
                             dropout=p, seed=seed, log=None)
        accuracies[p] = [nn.accuracy(nn.predict(params, X[i]), y[i]) for i in (train, test)]
    assert accuracies[0.0][0] == accuracies[0.5][0] == 1.0     # the training set, memorised
    assert accuracies[0.0][1] < 0.95                           # new digits: a gap of 5 points
    assert accuracies[0.5][1] >= accuracies[0.0][1] + 0.005   # dropout: better on new digits


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("sizes", [(20, 10), (20, 8, 10), (20, 7, 5, 3, 10)])
def test_the_input_gradient_matches_central_differences(activation, sizes):
    # dloss/dX, backprop taken one layer further, for every pixel of every example, against
    # (loss(X + h) - loss(X - h)) / 2h, at any depth and with each activation, in float64
    rng = np.random.default_rng(1)
    params = nn.init_params(sizes, rng, np.float64, activation)
    for l in range(1, len(sizes)):
        params[f"b{l}"] = 0.1 * rng.standard_normal(sizes[l])
    X = rng.random((4, sizes[0]))                                     # (4, 20)
    Y = nn.one_hot(np.arange(4) % 10, 10, np.float64)                 # (4, 10)
    analytic = nn.input_gradient(params, X, Y, activation)
    assert analytic.shape == X.shape
    numeric = np.zeros_like(X)
    for i in np.ndindex(X.shape):
        saved, h = X[i], 1e-5
        X[i] = saved + h
        up = nn.cross_entropy(nn.forward_prop(params, X, activation)[-1], Y)
        X[i] = saved - h
        down = nn.cross_entropy(nn.forward_prop(params, X, activation)[-1], Y)
        X[i] = saved
        numeric[i] = (up - down) / (2 * h)
    assert nn.relative_error(analytic, numeric) < 1e-6
    # and asking for it leaves the parameters' gradients as they were
    cache = nn.forward_prop(params, X, activation)
    grads, dX = nn.backward_prop(params, X, Y, cache, activation, into_input=True)
    assert np.array_equal(dX, analytic)
    plain = nn.backward_prop(params, X, Y, cache, activation)
    assert all(np.array_equal(grads[k], plain[k]) for k in params)


@pytest.fixture(scope="module")
def digits_model():
    X_train, y_train, X_test, y_test, _ = nn.load_digits_data(seed=0)
    params, _ = nn.train(X_train, y_train, hidden=64, epochs=30, batch_size=32, log=None)
    return params, X_test, y_test


def test_fooling_images_stay_within_eps_and_in_0_1_and_fool_far_more_than_noise(digits_model):
    # FGSM moves no pixel by more than eps, keeps every pixel in [0, 1], and the accuracy
    # falls as eps grows, much faster than under random noise of the same size
    params, X, y = digits_model
    Xf = nn.scale_pixels(X, np.float32)
    for eps in (0.02, 0.1, 0.3):
        X_adv = nn.fool(params, Xf, y, eps)
        assert X_adv.dtype == np.float32 and X_adv.shape == Xf.shape
        assert np.abs(X_adv - Xf).max() <= eps + 1e-6
        assert X_adv.min() >= 0 and X_adv.max() <= 1
    sweep, X_adv, answers = nn.attack(params, X, y, [0.02, 0.05, 0.1, 0.2, 0.3],
                                      np.random.default_rng(0))
    accuracies = [r["accuracy"] for r in sweep]
    assert accuracies[0] > 0.8 and accuracies == sorted(accuracies, reverse=True)
    assert accuracies[-1] < 0.1
    assert sweep[-1]["noise_accuracy"] > accuracies[-1] + 0.5
    assert np.array_equal(answers, nn.predict(params, X_adv))
    # the step is along the gradient's sign: the other way the loss falls instead of rising
    Y = nn.one_hot(y, 10)
    loss = lambda Z: nn.cross_entropy(nn.predict_proba(params, Z), Y)
    assert loss(nn.fool(params, Xf, y, 0.05)) > loss(Xf) > loss(nn.fool(params, Xf, y, -0.05))


def test_attack_on_the_command_line_prints_a_line_per_eps_and_logs_the_sweep(tmp_path,
                                                                             capsys):
    code, out, err = run_main(["--dataset", "digits", "--epochs", 30, "--batch-size", 32,
                               "--attack", 0.2, 0.05, "--log", tmp_path / "run.json"], capsys)
    assert code == 0 and err == ""
    lines = re.findall(r"^attack eps (\S+): test accuracy (\S+)% \(random noise of the same "
                       r"size: (\S+)%\)(, fooled with \d+% confidence)?$", out, re.M)
    assert [l[0] for l in lines] == ["0.05", "0.20"]          # in order of eps
    assert float(lines[1][1]) < float(lines[0][1]) and float(lines[1][1]) < float(lines[1][2])
    record = json.loads((tmp_path / "run.json").read_text())
    assert [r["eps"] for r in record["attack"]] == [0.05, 0.2]
    assert f"{100 * record['attack'][1]['accuracy']:.1f}" == lines[1][1]
    # fooled digits are drawn: read right before, read wrong after
    heads = re.findall(r"^#\d+: (\d), read (\d) +\+ eps 0.2: read (\d)", out, re.M)
    assert heads and all(a == b != c for a, b, c in heads)


def test_each_dream_is_read_as_its_own_class_with_p_at_least_0_99(digits_model):
    # gradient ascent from black: image c is read as c, surely, and stays pixels in [0, 1]
    params, _, _ = digits_model
    X, P = nn.dream(params)
    assert X.shape == (10, 64) and X.min() >= 0 and X.max() <= 1
    assert np.array_equal(P.argmax(axis=1), np.arange(10))
    assert P[np.arange(10), np.arange(10)].min() >= 0.99
    assert np.array_equal(P, nn.predict_proba(params, X))


def test_the_dream_penalties_make_less_ink_and_smoother_images(digits_model):
    # an L2 penalty leaves less ink and a blur smaller steps from pixel to pixel, and the
    # dreams are still read as their own class
    params, _, _ = digits_model
    plain, _ = nn.dream(params)
    small, P_small = nn.dream(params, l2=0.01)
    smooth, P_smooth = nn.dream(params, blur=4)
    roughness = lambda X: np.abs(np.diff(X.reshape(10, 8, 8), axis=2)).mean()
    assert small.sum() < 0.5 * plain.sum()
    assert roughness(smooth) < 0.5 * roughness(plain)
    for P in (P_small, P_smooth):
        assert np.array_equal(P.argmax(axis=1), np.arange(10))


def test_dream_on_the_command_line_draws_ten_and_saves_them(tmp_path, capsys):
    code, out, err = run_main(["--dataset", "digits", "--epochs", 30, "--batch-size", 32,
                               "--dream", tmp_path / "dreams.npy"], capsys)
    assert code == 0 and err == ""
    ps = re.findall(r"(\d): p = (\S+)", out)
    assert [c for c, _ in ps] == list("0123456789") and min(float(p) for _, p in ps) >= 0.99
    dreams = np.load(tmp_path / "dreams.npy")
    assert dreams.shape == (10, 64) and dreams.dtype == np.float32
    assert 0 <= dreams.min() and dreams.max() <= 1
    code, out, err = run_main(["--dataset", "digits", "--dream", tmp_path / "no" / "d.npy"],
                              capsys)
    assert code == 2 and err.count("\n") == 1 and "--dream" in err


def test_a_model_saved_before_init_loss_and_dropout_still_loads(tmp_path, capsys):
    # the file as the previous version wrote it (its settings without the new flags) loads
    # and evaluates; a new one records them
    X_train, y_train, X_test, y_test, _ = nn.load_digits_data(seed=0)
    params, _ = nn.train(X_train, y_train, epochs=3, log=None)
    old = {"hidden": [128], "activation": "relu", "epochs": 3, "data": "digits"}
    np.savez(tmp_path / "old.npz", **params, sizes=np.array([64, 128, 10]),
             activation=np.array("relu"), settings=np.array(json.dumps(old)))
    loaded, activation = nn.load_params(tmp_path / "old.npz")
    assert activation == "relu" and np.array_equal(nn.predict(loaded, X_test),
                                                   nn.predict(params, X_test))
    code, out, err = run_main(["--dataset", "digits", "--load", tmp_path / "old.npz"], capsys)
    assert code == 0, err
    run_main(["--dataset", "digits", "--epochs", 1, "--dropout", 0.2, "--loss", "mse",
              "--init", "glorot", "--save", tmp_path / "new.npz"], capsys)
    with np.load(tmp_path / "new.npz") as f:
        settings = json.loads(str(f["settings"]))
    assert (settings["init"], settings["loss"], settings["dropout"]) == ("glorot", "mse", 0.2)


# ----------------------------------------------------------------------------
# Data: the OpenML path, its cache, the fallback, and the --data formats

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


@pytest.fixture(scope="session")
def mnist_home(mnist, tmp_path_factory):
    """A data folder of the tests' own holding MNIST's cache, as the first run leaves it."""
    home = tmp_path_factory.mktemp("scikit_learn_data")
    shutil.copyfile(MNIST_NPZ, home / nn.CACHE_NAME)  # the cache's format: X, y
    return home


def test_fetch_openml_path_gives_mnist_and_writes_a_cache_that_is_used(mnist, tmp_path,
                                                                       monkeypatch):
    # the real fetch_openml, offline, parsing a copy of its own download: exactly MNIST (as
    # the MNIST tests read it, with MNIST's class counts), as uint8, C-ordered, with integer
    # labels; the parsed arrays are cached and later calls read them without scikit-learn
    copy_openml_download(tmp_path)
    no_network(monkeypatch)  # an incomplete download fails here; it is never fetched again
    X, y = nn.load_mnist(str(tmp_path))
    assert np.array_equal(X, mnist[0]) and np.array_equal(y, mnist[1])
    assert np.bincount(y).tolist() == [6903, 7877, 6990, 7141, 6824, 6313, 6876, 7293, 6825, 6958]
    assert X.dtype == y.dtype == np.uint8 and X.flags["C_CONTIGUOUS"]
    assert (tmp_path / nn.CACHE_NAME).exists()
    import sklearn.datasets

    def no_fetch(*args, **kwargs):
        raise AssertionError("fetch_openml called although the cache exists")
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", no_fetch)
    X2, y2 = nn.load_mnist(str(tmp_path))
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
    np.savez(tmp_path / "text.npz", X=X[:500], y=y[:500].astype(str))  # fetch_openml's '0'..'9'
    c = nn.load_data_path(str(tmp_path / "text.npz"), seed=5)
    assert all(np.array_equal(u, v) for u, v in zip(a[:4], c[:4]))


@pytest.mark.parametrize("how", ["scaled float32", "scaled float64", "raw float64", "raw int64",
                                 "(n, 28, 28)", "one-hot labels", "fortran order"])
def test_data_files_are_read_for_what_they_are(how, tmp_path):
    # pixels saved as the write-up leaves them (X / 255.0, in [0, 1]), as fetch_openml gives
    # them (float64 0..255) or as integers, images as (n, 28, 28), labels as one-hot rows:
    # each loads as exactly the uint8 pixels and labels it stands for (before the fix,
    # scaled pixels were rounded to 0 and 1, and trained to 11-21%)
    X = np.random.default_rng(0).integers(0, 256, (500, 784), dtype=np.uint8)
    y = np.arange(500) % 10
    saved = {"scaled float32": (X / np.float32(255), y), "scaled float64": (X / 255.0, y),
             "raw float64": (X.astype(np.float64), y), "raw int64": (X.astype(np.int64), y),
             "(n, 28, 28)": (X.reshape(-1, 28, 28), y),
             "one-hot labels": (X, nn.one_hot(y, 10, np.float64)),
             "fortran order": (np.asfortranarray(X / 255.0), y)}[how]
    np.savez(tmp_path / "plain.npz", X=X, y=y)
    np.savez(tmp_path / "other.npz", X=saved[0], y=saved[1])
    expected = nn.load_data_path(str(tmp_path / "plain.npz"), seed=1)
    loaded = nn.load_data_path(str(tmp_path / "other.npz"), seed=1)
    check_loaded(loaded, expected[:4])


def test_bool_pixels_are_ink_or_paper(tmp_path):
    X = np.random.default_rng(0).random((100, 784)) > 0.7
    np.savez(tmp_path / "b.npz", x_train=X, y_train=np.arange(100) % 10, x_test=X[:10],
             y_test=np.arange(10))
    X_train = nn.load_data_path(str(tmp_path / "b.npz"), seed=0)[0]
    assert np.array_equal(X_train, np.where(X, 255, 0))


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
    loaded, activation = nn.load_params(tmp_path / "model.npz")
    assert loaded.keys() == params.keys() and activation == "relu"
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


def test_command_line_trains_saves_and_loads(mnist_home, tmp_path):
    # a short run on the cached MNIST: header, aligned epoch lines, report, exact last line;
    # --load then evaluates the saved weights to exactly the same test accuracy
    home = mnist_home
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


# ----------------------------------------------------------------------------
# Bad input, faults and interruptions: one clear line, a non-zero exit, nothing lost

def run_main(args, capsys):
    """nn.main(args) in-process, as the command line runs it: (exit code, stdout, stderr)."""
    try:
        code = nn.main([str(a) for a in args])
    except SystemExit as e:  # argparse's own exit
        code = e.code
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("args, flag, allowed", [
    (["--epochs", 0], "--epochs", ">= 1"),
    (["--batch-size", -5], "--batch-size", ">= 1"),
    (["--hidden", 0], "--hidden", "a whole number >= 1, one per hidden layer (got '0')"),
    (["--hidden", 256, "1.5"], "--hidden", "a whole number >= 1, one per hidden layer (got '1.5')"),
    (["--hidden", "abc"], "--hidden", "(got 'abc')"),
    (["--hidden", 128, -4], "--hidden", "(got '-4')"),
    (["--hidden", 10**7], "--hidden", "from 1 to 100,000"),
    (["--hidden", 20000, 20000], "--hidden", "makes 415,880,000 weights"),
    (["--activation", "softplus"], "--activation", "choose from 'relu', 'sigmoid', 'tanh'"),
    (["--subset", 0], "--subset", ">= 1"),
    (["--lr", 0], "--lr", "> 0"),
    (["--lr", -0.1], "--lr", "> 0"),
    (["--lr", "nan"], "--lr", "finite"),
    (["--lr", "inf"], "--lr", "finite"),
    (["--momentum", 1], "--momentum", "< 1"),
    (["--weight-decay", -1e-4], "--weight-decay", ">= 0 and < 1"),
    (["--weight-decay", "nan"], "--weight-decay", ">= 0 and < 1"),
    (["--seed", -1], "--seed", ">= 0"),
    (["--optimizer", "rmsprop"], "--optimizer", "choose from 'sgd', 'momentum', 'adam'"),
    (["--epochs", "ten"], "--epochs", "invalid int value"),
    (["--dropout", 1], "--dropout", ">= 0 and < 1 (got 1.0)"),
    (["--dropout", -0.1], "--dropout", ">= 0 and < 1 (got -0.1)"),
    (["--dropout", "nan"], "--dropout", ">= 0 and < 1 (got nan)"),
    (["--init", "ones"], "--init", "choose from 'he', 'glorot', 'zeros', 'normal'"),
    (["--loss", "hinge"], "--loss", "choose from 'cross-entropy', 'mse'"),
    (["--attack", 0.1, 0], "--attack", "each > 0 and <= 1, in the network's pixel scale"),
    (["--attack", 25], "--attack", "each > 0 and <= 1, in the network's pixel scale"),
    (["--attack", "nan"], "--attack", "(got nan)"),
])
def test_a_bad_flag_is_one_line_and_exit_code_2_before_any_work(args, flag, allowed, capsys,
                                                               monkeypatch):
    # the message names the flag and what it takes; no data is loaded first
    monkeypatch.setattr(nn, "load_dataset", lambda args: pytest.fail("loaded data first"))
    code, out, err = run_main(args, capsys)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and flag in err and allowed in err


@pytest.mark.parametrize("args, message", [
    (["--batch-size", 5000], "--batch-size must be from 1 to 1,295, the number of training"),
    (["--subset", 2000], "--subset must be from 1 to 1,295"),
])
def test_flags_that_depend_on_the_data_are_checked_before_training(args, message, capsys):
    # the training set's size is known only once the data is loaded, but still before training
    code, out, err = run_main(["--dataset", "digits", *args], capsys)
    assert code == 2 and message in err and err.count("\n") == 1
    assert "epoch" not in out


def train_spy(monkeypatch):
    """Replace nn.train with one that records the arguments each call gets, then trains."""
    calls, real_train = [], nn.train
    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_train(*args, **kwargs)
    monkeypatch.setattr(nn, "train", spy)
    return calls


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_each_optimizer_takes_its_own_learning_rate_unless_one_is_given(optimizer, capsys,
                                                                       monkeypatch):
    # `--optimizer adam` alone once trained Adam at momentum's lr 0.2 (78.70% on MNIST); now
    # each optimiser gets its own, the header says so, and a --lr given is used as given
    calls = train_spy(monkeypatch)
    base = ["--dataset", "digits", "--epochs", 1, "--optimizer", optimizer]
    code, out, err = run_main(base, capsys)
    assert code == 0, err
    assert calls[-1]["lr"] == nn.LR[optimizer]
    assert f"lr {nn.LR[optimizer]:g} ({optimizer}'s default, cosine)" in out
    code, out, err = run_main(base + ["--lr", 0.0123], capsys)
    assert code == 0 and calls[-1]["lr"] == 0.0123 and "lr 0.0123 (cosine)" in out
    # the library does the same: lr=None is the optimiser's own
    X, y = digits()
    _, history = nn.train(X, y, epochs=1, optimizer=optimizer, schedule="constant", log=None)
    assert history[0]["lr"] == nn.LR[optimizer]
    assert len(set(nn.LR.values())) == 3
    assert f"{nn.LR[optimizer]:g} for {optimizer}" in " ".join(run_cli("--help").stdout.split())


def test_a_smaller_batch_takes_a_smaller_learning_rate(capsys, monkeypatch):
    # a batch of B has gradient noise ~ 1 / sqrt(B): at batch 16 and lr 0.2 momentum SGD
    # reached 64% on MNIST, so an unset lr shrinks by sqrt(B / 256) (0.05 at batch 16); a
    # larger batch, or a batch of the whole training set (no noise), keeps it
    calls = train_spy(monkeypatch)
    for args, lr, says in ((["--batch-size", 16], 0.05, "the default for batch 16"),
                           (["--batch-size", 64], 0.1, "the default for batch 64"),
                           (["--batch-size", 1024], 0.2, "momentum's default"),
                           (["--subset", 100], 0.2, "momentum's default"),
                           (["--batch-size", 64, "--optimizer", "adam"], 0.0025,
                            "the default for batch 64")):
        code, out, err = run_main(["--dataset", "digits", "--epochs", 1, *args], capsys)
        assert code == 0 and math.isclose(calls[-1]["lr"], lr), (args, calls[-1]["lr"])
        assert f"lr {lr:g} ({says}, cosine)" in out
    X, y = digits()
    _, history = nn.train(X, y, epochs=1, batch_size=64, schedule="constant", log=None)
    assert math.isclose(history[0]["lr"], 0.1)
    _, history = nn.train(X[:50], y[:50], epochs=1, batch_size=64, schedule="constant", log=None)
    assert history[0]["lr"] == 0.2  # 50 images in one batch of at most 64: no noise


def test_more_momentum_than_the_default_takes_a_smaller_learning_rate(capsys, monkeypatch):
    # momentum m moves 1 / (1 - m) times a single step: at 0.99 and momentum's lr 0.2 that
    # overshoots (93.2% on MNIST), so an unset lr shrinks by (1 - m) / (1 - 0.9); less
    # momentum than 0.9 keeps 0.2, and a --lr given is used as given
    calls = train_spy(monkeypatch)
    for momentum, lr, says in ((0.99, 0.02, "the default for momentum 0.99"),
                               (0.95, 0.1, "the default for momentum 0.95"),
                               (0.5, 0.2, "momentum's default"), (0.0, 0.2, "momentum's default")):
        code, out, err = run_main(["--dataset", "digits", "--epochs", 1, "--momentum", momentum],
                                  capsys)
        assert code == 0 and math.isclose(calls[-1]["lr"], lr), (momentum, calls[-1]["lr"])
        assert f"lr {lr:g} ({says}, cosine)" in out
    code, out, err = run_main(["--dataset", "digits", "--epochs", 1, "--momentum", 0.99,
                               "--lr", 0.3], capsys)
    assert calls[-1]["lr"] == 0.3 and "lr 0.3 (cosine)" in out
    assert math.isclose(nn.default_lr("momentum", 0.99), 0.02)
    assert nn.default_lr("adam", 0.99) == nn.LR["adam"]


def test_a_batch_size_left_unset_shrinks_to_fit_a_small_training_set(capsys, monkeypatch):
    # `--subset 100` once failed with "--batch-size must be from 1 to 100", a flag never set
    calls = train_spy(monkeypatch)
    code, out, err = run_main(["--dataset", "digits", "--subset", 100, "--epochs", 1], capsys)
    assert code == 0, err
    assert calls[-1]["batch_size"] == 100 and "batch 100 (all the training images)" in out
    code, out, err = run_main(["--dataset", "digits", "--subset", 500, "--epochs", 1], capsys)
    assert calls[-1]["batch_size"] == nn.BATCH_SIZE and f"batch {nn.BATCH_SIZE}," in out
    # one given explicitly is never changed: it is refused, with the range
    code, out, err = run_main(["--dataset", "digits", "--subset", 100, "--batch-size", 256],
                              capsys)
    assert code == 2 and "--batch-size must be from 1 to 100" in err


def test_shifted_batches_are_the_default_for_mnist_only(tmp_path, capsys, monkeypatch,
                                                       request):
    # MNIST is recognised by its 60,000 training labels, however it is given; other 28x28
    # data (here the same images with their labels in another order) trains without shifts
    # by default, says so, and shifts when asked
    X = np.zeros((70000, 784), dtype=np.uint8)
    rng = np.random.default_rng(0)
    X[:, rng.integers(0, 784, 50)] = 255
    calls = train_spy(monkeypatch)
    other = np.roll(np.arange(70000) % 10, 3).astype(np.uint8)
    np.savez(tmp_path / "other.npz", X=X, y=other)
    common = ["--subset", 500, "--epochs", 1, "--hidden", 8]
    code, out, err = run_main(["--data", tmp_path / "other.npz", *common], capsys)
    assert code == 0, err
    assert calls[-1]["augment"] is False
    assert "no shifted batches (the default for MNIST only: --augment)" in out
    run_main(["--data", tmp_path / "other.npz", "--augment", *common], capsys)
    assert calls[-1]["augment"] is True
    y = request.getfixturevalue("mnist")[1]  # the rest needs real MNIST's labels
    assert nn.is_mnist(y[:60000]) and not nn.is_mnist(y[10000:70000])
    np.savez(tmp_path / "mnist.npz", X=X, y=y)
    code, out, err = run_main(["--data", tmp_path / "mnist.npz", *common], capsys)
    assert code == 0, err
    assert calls[-1]["augment"] is True and "batches shifted by up to 1 pixel" in out
    code, out, err = run_main(["--data", tmp_path / "mnist.npz", "--no-augment", *common], capsys)
    assert calls[-1]["augment"] is False and "batches shifted" not in out


def test_save_to_a_folder_that_does_not_exist_is_refused_before_training(tmp_path, capsys):
    code, out, err = run_main(["--dataset", "digits", "--save", tmp_path / "no" / "m.npz"],
                              capsys)
    assert code == 2 and "--save" in err and out == ""


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


def idx_folder(tmp_path, skip=None, gz=False):
    arrays = small_mnist_like()
    for name, a in zip(["train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                        "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"], arrays):
        if name != skip:
            write_idx(tmp_path / name, a, gz)
    return tmp_path


def good_xy(n=100):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (n, 784)).astype(np.float64), rng.integers(0, 10, n)


def corrupt(path, how):
    data = Path(path).read_bytes()
    Path(path).write_bytes(data[:len(data) // 2] if how == "truncate" else b"\x00" * 64 + data[64:])
    return path


def csv_folder(tmp_path, train_text, test_text="0" + ",0" * 784 + "\n"):
    (tmp_path / "mnist_train.csv").write_text(train_text)
    (tmp_path / "mnist_test.csv").write_text(test_text)
    return tmp_path


ROW = "3" + ",0" * 784 + "\n"
BAD_DATA = {
    "missing path": (lambda p: p / "nowhere.npz", "no such file or folder"),
    "not a data file": (lambda p: (p / "notes.txt").write_text("hi") and p / "notes.txt",
                        "--data takes a .npz file or a folder"),
    "empty folder": (lambda p: p, "no IDX files"),
    "a CSV file, not its folder": (lambda p: csv_folder(p, ROW) / "mnist_train.csv",
                                   "--data takes the folder that holds the training and the test"),
    "IDX file missing": (lambda p: idx_folder(p, skip="t10k-labels-idx1-ubyte"),
                         "missing t10k-labels-idx1-ubyte"),
    "truncated .gz": (lambda p: (idx_folder(p, gz=True), corrupt(
        p / "train-images-idx3-ubyte.gz", "truncate"))[0], "train-images-idx3-ubyte.gz: cannot read"),
    "corrupt .gz": (lambda p: (idx_folder(p, gz=True), corrupt(
        p / "t10k-labels-idx1-ubyte.gz", "overwrite"))[0], "t10k-labels-idx1-ubyte.gz: cannot read"),
    "wrong magic": (lambda p: (idx_folder(p), (p / "train-labels-idx1-ubyte").write_bytes(
        b"\x00\x00\x09\x01" + bytes(300 + 4)))[0], "magic number 0x00000901, expected"),
    "truncated IDX": (lambda p: (idx_folder(p), corrupt(p / "t10k-images-idx3-ubyte",
                                                        "truncate"))[0],
                      "the file is truncated or corrupt"),
    "empty IDX": (lambda p: (idx_folder(p), (p / "t10k-labels-idx1-ubyte").write_bytes(b""))[0],
                  "t10k-labels-idx1-ubyte: empty"),
    "truncated .npz": (lambda p: corrupt(write_npz(p / "d.npz", X=good_xy()[0], y=good_xy()[1]),
                                         "truncate"), "d.npz: not a readable .npz file"),
    "empty .npz": (lambda p: (p / "d.npz").write_bytes(b"") or p / "d.npz",
                   "d.npz: not a readable .npz file"),
    "wrong keys": (lambda p: write_npz(p / "d.npz", images=good_xy()[0]),
                   "expected arrays X and y, or x_train"),
    "32x32 images": (lambda p: write_npz(p / "d.npz", X=np.zeros((100, 32, 32)),
                                         y=np.zeros(100, int)),
                     "expected 28x28 images (784 pixels each), got an array of shape (80, 1024)"),
    "count mismatch": (lambda p: write_npz(p / "d.npz", x_train=np.zeros((50, 28, 28)),
                                           y_train=np.zeros(49, int), x_test=np.zeros((5, 784)),
                                           y_test=np.zeros(5, int)),
                       "50 images but 49 labels; each image needs one label"),
    "X and y of different lengths": (lambda p: write_npz(p / "d.npz", X=np.zeros((2000, 784)),
                                                         y=np.zeros(1500, int)),
                                     "X holds 2,000 images and y 1,500 labels"),
    "labels of shape (n, 3)": (lambda p: write_npz(p / "d.npz", X=good_xy()[0],
                                                   y=np.zeros((100, 3), int)),
                               "80 images but labels of shape (80, 3)"),
    "label 10": (lambda p: write_npz(p / "d.npz", X=good_xy()[0], y=np.full(100, 10)),
                 "labels must be the integers 0..9"),
    "label 1.5": (lambda p: write_npz(p / "d.npz", X=good_xy()[0], y=np.full(100, 1.5)),
                  "labels must be the integers 0..9"),
    "label 'cat'": (lambda p: write_npz(p / "d.npz", X=good_xy()[0], y=np.full(100, "cat")),
                    "labels must be the integers 0..9"),
    "text pixels": (lambda p: write_npz(p / "d.npz", X=np.full((100, 784), "x"),
                                        y=good_xy()[1]), "expected numbers, got pixels of type"),
    "complex pixels": (lambda p: write_npz(p / "d.npz", X=good_xy()[0] * 1j, y=good_xy()[1]),
                       "expected numbers, got pixels of type complex128"),
    "nan pixel": (lambda p: write_npz(p / "d.npz", X=np.where(np.eye(100, 784), np.nan, 0),
                                      y=good_xy()[1]), "pixel values must be finite numbers"),
    "pixel 256": (lambda p: write_npz(p / "d.npz", X=good_xy()[0] + 1, y=good_xy()[1]),
                  "pixels up to 256, more than 8-bit 0..255"),
    "standardised pixels": (lambda p: write_npz(p / "d.npz", X=good_xy()[0] / 255 - 0.5,
                                                y=good_xy()[1]),
                            "pixels from -0.5 to 0.5; negative values look standardised"),
    "empty CSV": (lambda p: csv_folder(p, ""), "mnist_train.csv: empty"),
    "ragged CSV": (lambda p: csv_folder(p, ROW * 3 + "3" + ",0" * 700 + "\n" + ROW),
                   "mnist_train.csv: line 4 has 701 values, the first row 785"),
    "text in CSV": (lambda p: csv_folder(p, "label" + ",px" * 784 + "\n" + ROW * 2 +
                                         "3,x" + ",0" * 783 + "\n"),
                    "mnist_train.csv: line 4 holds something that is not a number"),
}


@pytest.mark.parametrize("case", BAD_DATA)
def test_bad_data_files_get_one_line_naming_the_file_and_what_was_expected(case, tmp_path,
                                                                           capsys):
    make, expected = BAD_DATA[case]
    path = make(tmp_path)
    code, out, err = run_main(["--data", path, "--epochs", 1], capsys)
    assert code == 1 and err.count("\n") == 1 and err.startswith("error: ")
    assert expected in err and str(path) in err
    assert "epoch" not in out


@pytest.mark.parametrize("call, message", [
    (lambda X, y: nn.train(X[0], y), "X must be a 2-D array"),
    (lambda X, y: nn.train(X.astype(np.int64), y), "X must hold uint8 pixels (0..255) or floats"),
    (lambda X, y: nn.train(X.astype(float), y), "X holds floats from 0 to 255, raw pixels, which "
     "would switch off every ReLU: pass X / 255"),
    (lambda X, y: nn.predict_proba(nn.init_params([64, 8, 10], np.random.default_rng(0)),
                                   X.astype(np.float32)), "pass X / 255"),
    (lambda X, y: nn.train(X, y[:-1]), "X has 40 rows, y has shape (39,)"),
    (lambda X, y: nn.train(X, nn.one_hot(y)), "y is one-hot, shape (40, 10): pass the labels, "
     "y.argmax(axis=1)"),
    (lambda X, y: nn.train(X, y.astype(str).astype(object)), "y holds text labels ('5', '0', "
     "...), as fetch_openml gives them: pass y.astype(np.uint8)"),
    (lambda X, y: nn.train(X, y, optimizer="adamw"), "optimizer must be one of sgd, momentum, "
     "adam; got 'adamw'"),
    (lambda X, y: nn.train(X, y + 10), "integer labels from 0 to 9"),
    (lambda X, y: nn.train(X, y.astype(float)), "integer labels from 0 to 9"),
    (lambda X, y: nn.train(X[:0], y[:0]), "no examples"),
    (lambda X, y: nn.train(X, y, X[:, :10], y), "X has 10 features per row; the weights take 64"),
    (lambda X, y: nn.predict(nn.init_params([784, 8, 10], np.random.default_rng(0)), X),
     "X has 64 features per row; the weights take 784"),
    (lambda X, y: nn.predict(nn.init_params([64, 8, 10], np.random.default_rng(0)), X[0]),
     "X must be a 2-D array"),
])
def test_library_functions_say_what_is_wrong_in_a_value_error(call, message):
    X, y = digits()
    with pytest.raises(ValueError) as e:
        call(X[:40], y[:40])
    assert message in str(e.value)


def test_divergence_stops_at_once_with_a_clear_message(capsys):
    X, y = digits()
    with pytest.raises(nn.TrainingDiverged) as e:
        nn.train(X, y, lr=1e6, epochs=5, log=None)
    assert re.fullmatch(r"training diverged at epoch 1, batch \d+ \(loss=nan\); "
                        r"try a smaller --lr", str(e.value))


def test_a_diverged_run_exits_1_and_saves_nothing(tmp_path, capsys):
    code, out, err = run_main(["--dataset", "digits", "--lr", 1e6, "--save",
                               tmp_path / "m.npz"], capsys)
    assert code == 1 and err.startswith("error: training diverged at epoch 1")
    assert list(tmp_path.iterdir()) == []


def test_a_learning_rate_merely_too_high_is_not_an_error(capsys):
    # lr 50 with plain SGD kills every ReLU (accuracy ~10%) but nothing overflows
    code, out, err = run_main(["--dataset", "digits", "--optimizer", "sgd", "--lr", 50], capsys)
    assert code == 0 and err == ""
    assert float(out.splitlines()[-1].split()[-1][:-1]) < 30


def test_training_stops_after_the_current_batch_when_asked(monkeypatch):
    # what Ctrl-C does: train() finishes the step in progress, takes no other, and returns
    import threading
    X, y = digits()
    stop = threading.Event()
    steps = []
    real_train_step = nn.train_step

    def counting_step(*args):
        steps.append(1)
        if len(steps) == 11:  # epoch 2 (8 steps per epoch), batch 3
            stop.set()
        return real_train_step(*args)
    monkeypatch.setattr(nn, "train_step", counting_step)
    lines = []
    params, history = nn.train(X, y, epochs=50, log=lines.append, stop=stop)
    assert len(steps) == 11 and len(history) == 2
    assert lines[-1] == "interrupted in epoch 2 after batch 3 of 8"
    assert all(np.all(np.isfinite(P)) for P in params.values())


def test_ctrl_c_evaluates_saves_and_exits_130(tmp_path):
    # a real SIGINT to a real run: it finishes the batch, evaluates, saves, exits 130
    import signal
    model = tmp_path / "model.npz"
    proc = subprocess.Popen([sys.executable, str(HERE / "nn_from_scratch.py"), "--dataset",
                             "digits", "--epochs", "100000", "--save", str(model)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in proc.stdout:
        if line.startswith("epoch"):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert err == ""
    lines = out.splitlines()
    assert any(re.fullmatch(r"interrupted in epoch \d+ after batch \d of 6", l) for l in lines)
    assert "evaluating the weights learned so far" in lines
    assert f"saved weights to {model}" in lines and lines[-1].startswith("test accuracy: ")
    assert nn.load_params(model)[0]["W1"].shape == (64, 128)


def test_a_failed_save_keeps_the_previous_model_and_leaves_no_temporary_file(tmp_path,
                                                                             monkeypatch):
    params, *_ = tiny_problem(dtype=np.float32)
    nn.save_params(tmp_path / "m.npz", params)
    before = (tmp_path / "m.npz").read_bytes()

    def disk_full(file, **arrays):
        file.write(b"half a model")
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(nn.np, "savez", disk_full)
    with pytest.raises(OSError):
        nn.save_params(tmp_path / "m.npz", {k: P * 2 for k, P in params.items()},
                       activation="relu")
    assert (tmp_path / "m.npz").read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["m.npz"]


def test_non_finite_weights_are_never_saved(tmp_path):
    params, *_ = tiny_problem()
    params["W2"][0, 0] = np.nan
    with pytest.raises(ValueError, match="not finite"):
        nn.save_params(tmp_path / "m.npz", params)
    assert list(tmp_path.iterdir()) == []


def test_the_saved_file_records_the_layer_sizes_and_settings(tmp_path):
    params, *_ = tiny_problem()
    nn.save_params(tmp_path / "m.npz", params, {"lr": 0.3, "seed": 0})
    with np.load(tmp_path / "m.npz") as f:
        assert list(f["sizes"]) == [12, 7, 4]
        assert json.loads(str(f["settings"])) == {"lr": 0.3, "seed": 0}


def weights_file(tmp_path, change):
    params, *_ = tiny_problem()
    arrays = {**params, "sizes": np.array([12, 7, 4])}
    change(arrays)
    path = tmp_path / "m.npz"
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("change, message", [
    (lambda a: a.update(W1=np.array([{"code": "runs"}], dtype=object)), "pickled Python objects"),
    (lambda a: a.pop("b2"), "missing b2"),
    (lambda a: a.pop("sizes"), "missing sizes"),
    (lambda a: a.update(W1=a["W1"].T), "W1 is float64 (7, 12); a 12-7-4 network needs"),
    (lambda a: a.update(b1=a["b1"].astype(np.int64)), "b1 is int64 (7,)"),
    (lambda a: a.update(sizes=np.array([12, 7])), "sizes must be 3 positive integers"),
    (lambda a: a["W2"].__setitem__((0, 0), np.inf), "W2 holds inf or nan"),
])
def test_bad_weights_files_are_refused_and_nothing_is_unpickled(change, message, tmp_path):
    path = weights_file(tmp_path, change)
    with pytest.raises(nn.DataError) as e:
        nn.load_params(path)
    assert str(path) in str(e.value) and message in str(e.value)


def test_load_of_a_bad_file_is_one_line_and_exit_1(tmp_path, capsys):
    (tmp_path / "m.npz").write_bytes(b"not a zip")
    code, out, err = run_main(["--dataset", "digits", "--load", tmp_path / "m.npz"], capsys)
    assert code == 1 and err.startswith(f"error: {tmp_path / 'm.npz'}: not a weights file")
    code, out, err = run_main(["--dataset", "digits", "--load", tmp_path / "none.npz"], capsys)
    assert code == 1 and "no such file" in err


def test_weights_for_other_images_are_refused(tmp_path, capsys):
    params = nn.init_params([784, 8, 10], np.random.default_rng(0))
    nn.save_params(tmp_path / "m.npz", params)
    code, out, err = run_main(["--dataset", "digits", "--load", tmp_path / "m.npz"], capsys)
    assert code == 1 and "takes 784 pixels per image" in err and "has 64" in err


def test_cache_from_another_run_with_other_arrays_is_rebuilt(tmp_path, monkeypatch, capsys):
    import sklearn.datasets
    X, y = fake_mnist()
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", lambda *a, **k: (X, y))
    np.savez(tmp_path / nn.CACHE_NAME, X=np.zeros((100, 784), np.uint8), y=np.zeros(100, np.uint8))
    X2, y2 = nn.load_mnist(str(tmp_path))
    out = capsys.readouterr().out
    assert "are not MNIST's)" in out and "rebuilding it" in out
    assert X2.shape == (70000, 784) and nn.read_mnist_cache(str(tmp_path))[0].shape == X2.shape


def test_the_cache_is_written_under_another_name_then_renamed(tmp_path, monkeypatch):
    # a run reading the cache while another writes it sees the old file or the new one,
    # never half of one: during the write the real name does not exist yet
    seen = []
    real_savez = np.savez_compressed

    def spy(file, **arrays):
        seen.append(sorted(p.name for p in tmp_path.iterdir()))
        real_savez(file, **arrays)
    monkeypatch.setattr(nn.np, "savez_compressed", spy)
    X, y = fake_mnist()
    nn.write_mnist_cache(str(tmp_path), X.astype(np.uint8), y.astype(np.uint8))
    assert len(seen) == 1 and len(seen[0]) == 1 and seen[0][0] != nn.CACHE_NAME
    assert [p.name for p in tmp_path.iterdir()] == [nn.CACHE_NAME]


def test_a_half_downloaded_openml_file_is_deleted_and_fetched_again(tmp_path, monkeypatch,
                                                                    capsys):
    # scikit-learn deletes a corrupt download and fetches it again; offline that fails, so an
    # explicit MNIST run ends in one line and the next run with a network starts afresh
    copy_openml_download(tmp_path)
    arff = next(tmp_path.rglob("*.arff.gz"))
    arff.write_bytes(arff.read_bytes()[:100_000])
    no_network(monkeypatch)
    with warnings.catch_warnings():  # scikit-learn warns that it re-downloads; that is fine
        warnings.filterwarnings("ignore", message="Invalid cache", category=RuntimeWarning)
        code, out, err = run_main(["--data-home", tmp_path, "--dataset", "mnist"], capsys)
    assert code == 1 and err.startswith("error: cannot get MNIST")
    assert not arff.exists()


def test_an_unparseable_download_names_the_folder_to_delete(tmp_path, monkeypatch, capsys):
    import sklearn.datasets

    def broken(*args, **kwargs):
        raise ValueError("The md5 checksum of the file does not match")
    monkeypatch.setattr(sklearn.datasets, "fetch_openml", broken)
    code, out, err = run_main(["--data-home", tmp_path, "--dataset", "mnist"], capsys)
    assert code == 1 and err.count("\n") == 1
    assert f"delete {tmp_path / 'openml'} and run again" in err


# ----------------------------------------------------------------------------
# The benchmark: a tiny run, so that it cannot silently rot

@pytest.mark.parametrize("hidden, network", [([], "784-128-10"), (["32", "16"], "784-32-16-10")])
def test_benchmark_runs_and_prints_its_tables(hidden, network, mnist_home, tmp_path):
    # one epoch on 2,000 images for this project, scikit-learn (its SGD setting runs the same
    # code as its Adam one) and PyTorch, plain and tuned, if installed, else the note that it
    # is missing; for the default network and a deep one
    env = {**os.environ, "SCIKIT_LEARN_DATA": str(mnist_home)}
    done = subprocess.run([sys.executable, str(HERE / "benchmarks" / "compare.py"), "--seeds", "0",
                           "--epochs", "1", "--sklearn-epochs", "1", "--subset", "2000",
                           "--systems", "nn_from_scratch", "sklearn_adam", "pytorch",
                           "pytorch_tuned", "--markdown", str(tmp_path / "table.md")]
                          + (["--hidden", *hidden] if hidden else []),
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.search(rf"^network {network}; ", done.stdout, re.M), done.stdout  # the header
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    for system in ("nn_from_scratch", "sklearn_adam"):
        assert re.search(r"\d+ MiB$", rows[system]), rows.get(system)
    try:
        import torch  # noqa: F401
        assert "pytorch" in rows and "pytorch_tuned" in rows
        assert "x the tuned PyTorch's (target <= 1.0)" in done.stdout
        assert re.search(r"^the matrix products alone: NumPy's [\d.]+ s an epoch, PyTorch's",
                         done.stdout, re.M)
    except ImportError:
        assert "note: PyTorch is not installed" in done.stdout
        assert "pytorch" not in rows and "pytorch_tuned" not in rows
    assert "x the NumPy matmul floor" in done.stdout
    table = (tmp_path / "table.md").read_text()
    assert table.count("\n| ") >= 3 and "this project, default settings" in table
    assert table.startswith(f"network {network}; ")


def test_epoch_profile_takes_apart_the_epoch_that_train_runs(mnist_home):
    # the profile's epoch must end with train()'s weights, bit for bit, or it exits 1; it
    # names every part the matrix products of a two-hidden-layer network included
    env = {**os.environ, "SCIKIT_LEARN_DATA": str(mnist_home)}
    done = subprocess.run([sys.executable, str(HERE / "benchmarks" / "epoch_profile.py"),
                           "--subset", "2000", "--rounds", "1", "--hidden", "32", "16"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    for part in ("gather the batch", "shift", "scale to floats", "one-hot", "forward: X @ W1",
                 "forward: A1 @ W2", "forward: A2 @ W3", "backward: A2^T @ dZ3",
                 "backward: dZ3 @ W3^T", "backward: A1^T @ dZ2", "backward: dZ2 @ W2^T",
                 "backward: X^T @ dZ1", "ReLU (forward)", "ReLU slope", "softmax", "update",
                 "denormal flush", "layer-speed sampling"):
        assert re.search(rf"^  {re.escape(part)}.* ms ", done.stdout, re.M), part
    assert "backward: dZ1 @ W1^T" not in done.stdout  # training needs no gradient for X
    assert re.search(r"^the parts add up to [\d.]+ ms, [\d.]+ x train\(\)'s epoch$",
                     done.stdout, re.M)


def test_learning_rate_search_reads_the_validation_accuracy_of_each_run(tmp_path):
    # benchmarks/choose_lr.py runs the real command line and reads the last epoch's
    # validation accuracy from its --log; a run that diverges counts as no result
    import benchmarks.choose_lr as choose_lr
    accuracy = choose_lr.validation_accuracy("--dataset digits --epochs 3", 0.2, 0, str(tmp_path))
    assert 0.8 < accuracy <= 1
    assert choose_lr.validation_accuracy("--dataset digits --epochs 1", 1e9, 0,
                                         str(tmp_path)) is None


def test_experiments_sweep_runs_the_script_and_writes_its_table(tmp_path):
    # two rows of the sweep, one seed each: each runs the real command line and its row has
    # the measured accuracy and times; a failing run is a row with its error line
    import benchmarks.experiments as experiments
    done = subprocess.run([sys.executable, str(HERE / "benchmarks" / "experiments.py"),
                           "--only", "dataset digits", "--seeds", "1", "--markdown",
                           str(tmp_path / "table.md")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "table.md").read_text().splitlines()
    row = next(line for line in table if "--dataset digits" in line)
    assert re.search(r"\| 9\d\.\d\d% \| (\d+ ms|\d\.\d\d s) \| \d+\.\d s \|", row), row
    failed = experiments.summarise("--lr 0", "nothing", "a lesson",
                                   [experiments.run("--dataset digits --lr 0", 0, str(tmp_path))])
    assert "--lr must be a finite number > 0" in failed[2]


def test_docs_experiments_is_the_page_the_script_writes_and_the_readme_quotes_it():
    # docs/experiments.md is exactly what experiments.py's page() makes of its rows (so the
    # script, run again, writes it), every experiment has its row, and the README's dozen
    # rows are copied from it, word for word
    import benchmarks.experiments as experiments
    lines = (HERE / "docs" / "experiments.md").read_text().splitlines()
    start = lines.index("| " + " | ".join(experiments.HEADER) + " |")
    table = [line for line in lines[start + 2:] if line.startswith("| ")]
    rows = [line[2:-2].split(" | ") for line in table]
    machine = lines[start - 2].rsplit("; `python benchmarks/experiments.py`", 1)[0]
    assert experiments.page(rows, machine).splitlines() == lines
    assert [row[0] for row in rows] == [f"`{f'python nn_from_scratch.py {e[0]}'.strip()}`"
                                        for e in experiments.EXPERIMENTS]
    readme = [line for line in (HERE / "README.md").read_text().splitlines()
              if line.startswith("| `python nn_from_scratch.py")]
    assert 10 <= len(readme) <= 14 and set(readme) <= set(table)


# ----------------------------------------------------------------------------
# Looking inside: drawings, mistakes, your own digit, the gradient check, curves, the record

def test_draw_digit_uses_half_blocks_two_pixels_to_a_character():
    # top pixel inked -> upper half block, bottom -> lower, both -> full, 28x28 -> 14 lines
    image = np.zeros((28, 28), dtype=np.uint8)
    image[0, 0] = image[1, 1] = 255
    image[2:4, 2] = 255
    lines = nn.draw_digit(image.reshape(784))
    assert len(lines) == 14 and {len(line) for line in lines} == {28}
    assert lines[0][:3] == "▀▄ " and lines[1][2] == "█" and lines[5].strip() == ""
    plain = nn.draw_digit(image.reshape(784), ascii=True)
    assert plain[1][2] == "@" and plain[0][0] != " " and set("".join(plain)) <= set(" .:-=+*#%@")


def test_side_by_side_fits_in_80_columns():
    blocks = [[f"digit {i}"] + ["#" * 28] * 14 for i in range(5)]
    lines = nn.side_by_side(blocks)
    assert max(map(len, lines)) <= 80
    assert sum(line.count("digit") for line in lines) == 5
    assert lines[0].count("digit") == 2  # 28 + 3 + 28 = 59 fits, a third would not


def test_the_mistakes_shown_are_the_most_confident_wrong_answers():
    rng = np.random.default_rng(0)
    params = nn.init_params([784, 16, 10], rng)
    X = rng.integers(0, 256, (200, 784), dtype=np.uint8)
    y = rng.integers(0, 10, 200)
    lines = nn.show_mistakes(params, X, y, 4)
    shown = [int(m) for m in re.findall(r"#(\d+): true", "\n".join(lines))]
    P = nn.predict_proba(params, X)
    wrong = np.flatnonzero(P.argmax(axis=1) != y)
    confidence = P.max(axis=1)
    assert len(shown) == 4 and all(i in wrong for i in shown)
    assert confidence[shown].min() >= np.delete(confidence, shown)[np.isin(
        np.delete(np.arange(200), shown), wrong)].max()
    assert f"said {P[shown[0]].argmax()}" in "\n".join(lines)


def test_confused_pairs_lists_the_largest_off_diagonal_counts():
    C = np.diag(np.full(10, 100))
    C[4, 9], C[7, 2], C[3, 5] = 23, 11, 4
    assert nn.confused_pairs(C, top=2) == ["4 -> 9: 23 times", "7 -> 2: 11 times"]
    y = np.array([4, 4, 7])
    lines = nn.report(np.array([9, 9, 1]), y)
    assert lines[-2:] == ["most confused (true -> predicted):", "   4 -> 9: 2 times   7 -> 1: 1 time"]


def test_resize_averages_the_area_each_output_pixel_covers():
    image = np.array([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 0, 0], [0, 0, 0, 1.0]])
    assert np.allclose(nn.resize(image, 2, 2), [[1, 0], [0, 0.25]])
    assert np.allclose(nn.resize(np.full((7, 3), 5.0), 20, 9), 5)  # up-scaling keeps a constant
    assert np.isclose(nn.resize(np.eye(30), 20, 20).sum() * (30 / 20) ** 2, 30)  # mass kept


def off_centre_digit():
    """A dark, thick '7' on light paper, 60 x 40 pixels, in the top-left corner."""
    image = np.full((60, 40), 240.0)
    image[5:9, 3:20] = 10         # the bar
    image[5:35, 16:20] = 10       # the stem
    return image


def test_own_digit_is_prepared_like_mnist_centred_and_twenty_pixels_tall():
    # dark ink on light paper comes out as light ink on black, the longest side 20 pixels,
    # its centre of mass at the centre of the 28x28 image
    raw = nn.mnist_style(off_centre_digit())
    assert raw.dtype == np.uint8 and raw.shape == (784,)
    x = raw.reshape(28, 28).astype(float)
    assert x[0, 0] == 0 and x.max() == 255
    rows, cols = np.nonzero(x > 0)
    assert rows.max() - rows.min() + 1 == 20 and cols.max() - cols.min() + 1 < 20
    cy = (x.sum(axis=1) @ (np.arange(28) + 0.5)) / x.sum()
    cx = (x.sum(axis=0) @ (np.arange(28) + 0.5)) / x.sum()
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_a_blank_image_is_refused():
    with pytest.raises(nn.DataError, match="blank"):
        nn.mnist_style(np.full((28, 28), 7.0))


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


@pytest.fixture(scope="session")
def mnist_model(mnist):
    """Weights trained briefly on real MNIST (5 epochs, shifted batches: ~98% on test)."""
    X_train, y_train, _, _ = nn.split_mnist(*mnist)
    return nn.train(X_train, y_train, epochs=5, augment=True, log=None)[0]


def test_thin_and_thick_pens_give_the_same_mnist_style_digit():
    # a 2 px pen and a 30 px marker on a 280x280 pad come out with MNIST's stroke width:
    # the same amount of ink, the same picture (before the fix, a 2 px "7" kept 1/3 of
    # the ink of an MNIST digit and a 30 px one was a blob)
    for digit in (1, 4, 7, 8):
        images = [nn.mnist_style(255 * draw(digit, pen)).astype(float) for pen in (2, 8, 30)]
        ink = [im.sum() / 255 for im in images]
        assert max(ink) / min(ink) < 1.35, (digit, ink)
        for im in images[1:]:
            assert np.corrcoef(images[0], im)[0, 1] > 0.8, digit


@pytest.mark.parametrize("pen", [2, 4, 8, 16, 30])
def test_a_digit_drawn_with_any_pen_is_read_as_that_digit(pen, mnist_model):
    # every digit, drawn with each pen, white on black and black on white, is read right
    for digit in range(10):
        ink = 255 * draw(digit, pen)
        for image in (ink, 255 - ink):
            p = nn.predict_proba(mnist_model, nn.mnist_style(image)[None])[0]
            assert p.argmax() == digit, (digit, pen, nn.top_classes(p))


def test_own_digit_files_with_transparency_palettes_and_16_bits_are_read_right(tmp_path,
                                                                               mnist_model):
    # what drawing apps and canvases save: ink of any colour on a transparent background
    # (RGBA, LA, a palette with a transparent entry), 16-bit grayscale, plain RGB; before
    # the fix, the first four were blank and the 16-bit one all white
    Image = optional("PIL.Image", "pip install pillow")
    for digit in (2, 3, 7):
        ink = draw(digit, pen=6)
        alpha = np.rint(255 * ink).astype(np.uint8)
        files = {}
        for name, colour in (("black", (0, 0, 0)), ("red", (220, 30, 30))):
            rgba = np.zeros((280, 280, 4), dtype=np.uint8)
            rgba[..., :3], rgba[..., 3] = colour, alpha
            files[f"rgba-{name}.png"] = Image.fromarray(rgba, "RGBA")
        files["la.png"] = Image.fromarray(np.dstack([np.zeros_like(alpha), alpha]), "LA")
        palette = Image.fromarray(np.where(ink > 0.5, 1, 0).astype(np.uint8), "P")
        palette.putpalette([255, 255, 255, 0, 0, 255])  # 0: white (transparent), 1: blue
        palette.info["transparency"] = 0
        files["palette.png"] = palette
        # a 16-bit scan: dark ink on grey paper, far above 8 bits' 255 everywhere
        files["gray16.png"] = Image.fromarray(np.rint(40000 - 30000 * ink).astype(np.uint16))
        files["rgb.png"] = Image.fromarray(np.dstack([255 - alpha] * 3), "RGB")
        for name, picture in files.items():
            picture.save(tmp_path / name)
            with Image.open(tmp_path / name) as check:
                assert name[:3] != "gra" or check.mode.startswith("I")  # really 16-bit
            x = nn.mnist_style(nn.read_image(str(tmp_path / name)))[None]
            p = nn.predict_proba(mnist_model, x)[0]
            assert p.argmax() == digit, (name, digit, nn.top_classes(p))


def write_pgm(path, image, binary):
    h, w = image.shape
    if binary:
        Path(path).write_bytes(f"P5\n# a comment\n{w} {h}\n255\n".encode()
                               + image.astype(np.uint8).tobytes())
    else:
        body = "\n".join(" ".join(str(int(v)) for v in row) for row in image)
        Path(path).write_text(f"P2\n{w} {h}\n255\n{body}\n")


def test_read_image_reads_npy_csv_and_both_pgm_kinds_alike(tmp_path):
    image = np.rint(off_centre_digit())
    np.save(tmp_path / "a.npy", image)
    np.savetxt(tmp_path / "a.csv", image, fmt="%d", delimiter=",")
    write_pgm(tmp_path / "b.pgm", image, binary=True)
    write_pgm(tmp_path / "a.pgm", image, binary=False)
    for name in ("a.npy", "a.csv", "b.pgm", "a.pgm"):
        assert np.array_equal(nn.read_image(str(tmp_path / name)), image), name


@pytest.mark.parametrize("header", [b"P5\n28 28\n0\n", b"P5\n0 28\n255\n", b"P5\n28",
                                    b"P7\n28 28\n255\n"])
def test_a_broken_pgm_is_one_clear_error(header, tmp_path):
    (tmp_path / "d.pgm").write_bytes(header + bytes(784))
    with pytest.raises(nn.DataError, match="d.pgm: cannot read it as an image"):
        nn.read_image(str(tmp_path / "d.pgm"))


def test_png_without_pillow_says_that_pillow_is_needed(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "PIL", None)  # as if Pillow were not installed
    (tmp_path / "d.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    with pytest.raises(nn.DataError, match=r"needs Pillow \(pip install pillow\)"):
        nn.read_image(str(tmp_path / "d.png"))


def test_png_with_pillow_is_read_as_grayscale(tmp_path):
    Image = pytest.importorskip("PIL.Image", reason="Pillow is not installed")
    rgb = np.zeros((30, 20, 3), dtype=np.uint8)
    rgb[5:25, 8:12] = 255
    Image.fromarray(rgb).save(tmp_path / "d.png")
    gray = nn.read_image(str(tmp_path / "d.png"))
    assert gray.shape == (30, 20) and gray[10, 9] == 255 and gray[0, 0] == 0


def white_png(path, width, height):
    """A 1-bit all-white PNG written by hand, row by row, so that an image far too large to
    hold in memory costs the test a few hundred kilobytes (30000x30000: ~110 KB)."""
    def chunk(kind, data):
        return (len(data).to_bytes(4, "big") + kind + data
                + zlib.crc32(kind + data).to_bytes(4, "big"))
    packer, row = zlib.compressobj(9), b"\0" + b"\xff" * math.ceil(width / 8)
    data = b"".join(packer.compress(row * 1000) for _ in range(height // 1000))
    data += packer.compress(row * (height % 1000)) + packer.flush()
    header = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([1, 0, 0, 0, 0])
    Path(path).write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                           + chunk(b"IDAT", data) + chunk(b"IEND", b""))


def test_an_image_too_large_to_read_is_one_line(tmp_path):
    # a 0.1 MB PNG of 30000x30000 pixels, and one of 10000x10000 (over Pillow's limit, where
    # it only warns): each is refused in one line naming its size, exit code 1, before a
    # pixel is decoded (before the fix, Pillow's DecompressionBombError traceback)
    optional("PIL.Image", "pip install pillow")
    nn.save_params(tmp_path / "w.npz", nn.init_params([784, 16, 10], np.random.default_rng(0)))
    for side, pixels in ((30000, "900,000,000"), (10000, "100,000,000")):
        white_png(tmp_path / "big.png", side, side)
        run = run_cli("--load", tmp_path / "w.npz", "--predict", tmp_path / "big.png")
        assert run.returncode == 1 and run.stdout == "", run.stderr
        assert re.fullmatch(rf"error: \S*big.png: {pixels} pixels, more than the [\d,]+ read "
                            r"here .*: save a smaller copy.*\n", run.stderr), run.stderr


def test_a_photo_sized_image_is_reduced_while_it_is_read_and_reads_alike(tmp_path):
    # a digit as big as a photo (3365x3367) in each kind of file: it becomes an array under
    # 2 x READ_SIDE pixels a side, not a 90 MB float copy of the whole (before the fix, an
    # 8000x8000 PNG took 1.2 GB), and the digit prepared from it is the one prepared from
    # the whole image, give or take a grey level on its edges; a mistake in how one kind of
    # pixel is averaged (palette indices, 16 bits, opacity, 1 bit) would change the digit
    Image = optional("PIL.Image", "pip install pillow")
    ink = np.pad(np.kron(draw(3, pen=8), np.ones((12, 12))), ((5, 0), (0, 7)))  # not on k x k
    alpha = np.rint(255 * ink).astype(np.uint8)
    palette = Image.fromarray((ink > 0.5).astype(np.uint8), "P")
    palette.putpalette([255, 255, 255, 0, 0, 255])  # 0: white (transparent), 1: blue
    palette.info["transparency"] = 0
    files = {"gray.png": Image.fromarray(255 - alpha),
             "bilevel.png": Image.fromarray(alpha > 127).convert("1"),
             "rgba.png": Image.fromarray(np.dstack([np.zeros_like(alpha)] * 3 + [alpha]), "RGBA"),
             "gray16.png": Image.fromarray(np.rint(40000 - 30000 * ink).astype(np.uint16)),
             "palette.png": palette,
             "photo.jpg": Image.fromarray(np.dstack([255 - alpha] * 3), "RGB")}
    for name, picture in files.items():
        picture.save(tmp_path / name)
        image = nn.read_image(str(tmp_path / name))
        assert nn.READ_SIDE <= max(image.shape) < 2 * nn.READ_SIDE, (name, image.shape)
        with Image.open(tmp_path / name) as whole:
            expected = nn.mnist_style(nn.pillow_gray(whole)).astype(int)  # every pixel read
        difference = np.abs(nn.mnist_style(image).astype(int) - expected)
        assert difference.max() <= 32 and difference.mean() < 1, (name, difference.max())


def test_train_keeps_freed_memory_as_the_command_line_does():
    # a notebook that imports the file and calls train() gets the command line's speed:
    # train() itself asks glibc to keep freed memory (before the fix only main() did, and
    # the README's notebook example ran its epochs up to 2x slower). Seen in a fresh process
    # through glibc's own counters: after train(), a 20 MB array comes from the heap, where
    # without it glibc maps it afresh (and page-faults it in again the next time)
    probe = """if True:
        import ctypes, sys, numpy as np, nn_from_scratch as nn
        libc = ctypes.CDLL(None)
        class Mallinfo2(ctypes.Structure):
            _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks",
                        "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                        "keepcost")]
        libc.mallinfo2.restype = Mallinfo2
        if sys.argv[1] == "train":
            X = np.random.default_rng(0).integers(0, 256, (64, 16), dtype=np.uint8)
            nn.train(X, np.arange(64) % 10, epochs=1, log=None)
        before = libc.mallinfo2().hblkhd  # bytes in blocks that glibc mapped on their own
        block = np.ones(20 << 20, dtype=np.uint8)
        print(libc.mallinfo2().hblkhd - before)"""
    try:
        ctypes.CDLL(None).mallinfo2
    except (OSError, AttributeError):
        pytest.skip("glibc's mallinfo2 is not available here (not Linux with glibc >= 2.33)")
    mapped = {}
    for case in ("import", "train"):
        run = subprocess.run([sys.executable, "-c", probe, case], cwd=HERE, capture_output=True,
                             text=True, timeout=60)
        assert run.returncode == 0, run.stderr
        mapped[case] = int(run.stdout)
    assert mapped == {"import": pytest.approx(20 << 20, rel=0.01), "train": 0}, mapped


def test_train_runs_where_there_is_no_glibc_to_ask(monkeypatch):
    # keep_freed_memory() asks glibc only: off Linux, train() trains instead of failing on
    # a speed setting. Here ctypes.CDLL behaves as on Windows, where CDLL(None) raises a
    # TypeError (it looks for '/' in the name), and sys.platform is Windows's, then macOS's
    def windows_cdll(name, *args, **kwargs):
        return "/" in name or "\\" in name  # what CDLL.__init__ does on Windows
    monkeypatch.setattr(nn.ctypes, "CDLL", windows_cdll)
    X, y = np.random.default_rng(0).integers(0, 256, (64, 16), dtype=np.uint8), np.arange(64) % 10
    for platform in ("win32", "darwin"):
        monkeypatch.setattr(nn.sys, "platform", platform)
        params, history = nn.train(X, y, epochs=1, log=None)
        assert len(history) == 1 and params["W1"].shape == (16, nn.HIDDEN)


def test_predict_reads_your_own_digit_as_mnist_would(mnist, tmp_path, capsys):
    # an MNIST test digit, blown up 3x and printed dark on light as a PGM, is read back,
    # prepared and classified as its true label by a briefly trained model
    X_train, y_train, X_test, y_test = nn.split_mnist(*mnist)
    params, _ = nn.train(X_train[:20000], y_train[:20000], epochs=3, log=None)
    nn.save_params(tmp_path / "model.npz", params)
    P = nn.predict_proba(params, X_test[:100])
    i = int(np.argmax(P.max(axis=1) * (P.argmax(axis=1) == y_test[:100])))
    big = np.kron(X_test[i].reshape(28, 28), np.ones((3, 3)))
    write_pgm(tmp_path / "mine.pgm", 255 - big, binary=True)
    code, out, err = run_main(["--load", tmp_path / "model.npz", "--predict",
                               tmp_path / "mine.pgm", tmp_path / "mine.pgm"], capsys)
    assert code == 0, err
    assert out.count(f"mine.pgm: {y_test[i]}") == 2
    assert re.search(rf"{y_test[i]}: \d+\.\d%", out) and "█" in out


def test_predict_with_weights_for_other_images_or_a_bad_file_is_one_line(tmp_path, capsys):
    nn.save_params(tmp_path / "digits.npz", nn.init_params([64, 8, 10], np.random.default_rng(0)))
    code, out, err = run_main(["--load", tmp_path / "digits.npz", "--predict", "x.png"], capsys)
    assert code == 1 and "takes 64 pixels per image; your own digits are prepared as 28x28" in err
    nn.save_params(tmp_path / "m.npz", nn.init_params([784, 8, 10], np.random.default_rng(0)))
    code, out, err = run_main(["--load", tmp_path / "m.npz", "--predict", tmp_path / "no.pgm"],
                              capsys)
    assert code == 1 and err.startswith("error: ") and "no.pgm: cannot read it" in err
    np.save(tmp_path / "rgb.npy", np.zeros((28, 28, 3)))
    code, out, err = run_main(["--load", tmp_path / "m.npz", "--predict", tmp_path / "rgb.npy"],
                              capsys)
    assert code == 1 and "expected a 2-D grayscale image" in err


def test_predict_without_load_is_a_usage_error(capsys):
    code, out, err = run_main(["--predict", "mine.png"], capsys)
    assert code == 2 and "--predict needs --load" in err


def test_gradcheck_prints_a_passing_table(capsys):
    # the same check as the gradient test, from the command line: four rows, all pass
    code, out, err = run_main(["--gradcheck"], capsys)
    assert code == 0
    rows = [line for line in out.splitlines() if line.split()[0] in ("W1", "b1", "W2", "b2")]
    assert len(rows) == 4 and all(line.endswith("pass") for line in rows)


def test_gradcheck_fails_with_a_hint_when_backprop_is_wrong(capsys, monkeypatch):
    real = nn.backward_prop

    def wrong_db2(*args):  # the classic bug: one sum over the whole array for every bias
        grads = real(*args)
        grads["b2"] = np.full_like(grads["b2"], grads["b2"].sum())
        return grads
    monkeypatch.setattr(nn, "backward_prop", wrong_db2)
    code, out, err = run_main(["--gradcheck"], capsys)
    assert code == 1
    assert re.search(r"^b2 .*FAIL$", out, re.M) and "hint: db2 from backward_prop" in out


def test_show_mistakes_from_the_command_line(capsys):
    code, out, err = run_main(["--dataset", "digits", "--epochs", 3, "--show-mistakes", 3,
                               "--ascii"], capsys)
    assert code == 0 and "the 3 most confident mistakes of" in out
    assert out.count(", said ") == 3 and out.splitlines()[-1].startswith("test accuracy: ")


def test_plot_without_matplotlib_is_one_note_and_the_run_goes_on(tmp_path, capsys, monkeypatch):
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "matplotlib" else real_find_spec(name, *a))
    code, out, err = run_main(["--dataset", "digits", "--epochs", 2, "--plot",
                               tmp_path / "run.png"], capsys)
    assert code == 0 and out.startswith("note: --plot needs matplotlib (pip install matplotlib)")
    assert not (tmp_path / "run.png").exists()


def test_plot_with_matplotlib_writes_a_png(tmp_path, capsys):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    code, out, err = run_main(["--dataset", "digits", "--epochs", 2, "--plot",
                               tmp_path / "run.png"], capsys)
    assert code == 0, err
    assert (tmp_path / "run.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_draws_each_layers_speed_on_a_log_scale(tmp_path, capsys, monkeypatch):
    # a 3-hidden-layer run: the speed panel has one line per layer, the output's named, on a
    # log axis, and the numbers are the history's db_norm; the dead units' likewise
    optional("matplotlib", "pip install matplotlib")
    import matplotlib.figure
    figures, real_savefig = [], matplotlib.figure.Figure.savefig
    def keep(figure, *args, **kwargs):
        figures.append(figure)
        return real_savefig(figure, *args, **kwargs)
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", keep)
    code, out, err = run_main(["--dataset", "digits", "--epochs", 3, "--hidden", 16, 8, 8,
                               "--plot", tmp_path / "run.png", "--log", tmp_path / "run.json"],
                              capsys)
    assert code == 0, err
    history = json.loads((tmp_path / "run.json").read_text())["history"]
    speed = next(ax for ax in figures[0].axes if "how fast each layer learns" in ax.get_title())
    assert speed.get_yscale() == "log"
    assert [line.get_label() for line in speed.get_lines()] == [
        "layer 1", "layer 2", "layer 3", "layer 4 (output)"]
    for l, line in enumerate(speed.get_lines()):
        assert np.allclose(line.get_ydata(), [r["db_norm"][l] for r in history])
    # and the stuck panel one line per hidden layer: its share of dead units, from the history
    dead = next(ax for ax in figures[0].axes if "dead units" in ax.get_title())
    assert [line.get_label() for line in dead.get_lines()] == ["layer 1", "layer 2", "layer 3"]
    for l, line in enumerate(dead.get_lines()):
        assert np.allclose(line.get_ydata(), [100 * r["dead"][l] for r in history])


def test_log_records_settings_data_hash_versions_history_and_result(tmp_path, capsys):
    for name in ("a.json", "b.json"):
        code, out, err = run_main(["--dataset", "digits", "--epochs", 3, "--log",
                                   tmp_path / name], capsys)
        assert code == 0, err
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a["settings"]["epochs"] == 3 and a["seed"] == 0 and len(a["history"]) == 3
    assert a["training_examples"] == 1295  # the images trained on: 1,797 less test and validation
    assert re.fullmatch(r"[0-9a-f]{64}", a["training_data_sha256"])
    assert a["training_data_sha256"] == b["training_data_sha256"]
    assert set(a["versions"]) == {"python", "numpy", "scikit-learn"}
    assert out.splitlines()[-1] == f"test accuracy: {100 * a['test_accuracy']:.2f}%"


# ----------------------------------------------------------------------------
# The drawing page: --serve, its POST /predict, and the page in a real browser

@contextlib.contextmanager
def lab_server(lab):
    """The real server for a Lab on a free port of 127.0.0.1, in a thread; yields its port."""
    server = nn.make_server(lab, "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        lab.stop_all()  # a run still training ends after its batch
        server.shutdown()
        server.server_close()


def page_server(params, activation="relu"):
    """The server for finished weights, as --load model.npz --serve shows them: run 1."""
    args = nn.parse_args(["--load", "model.npz", "--activation", activation])
    lab = nn.Lab(args)
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


def pad_body(image):
    """The JSON a 280x280 pad sends: its gray bytes, row by row, in base64."""
    image = np.asarray(image, dtype=np.uint8)
    return json.dumps({"width": image.shape[1], "height": image.shape[0],
                       "pixels": base64.b64encode(image.tobytes()).decode()}).encode()


def untrained():
    return nn.init_params([784, 16, 10], np.random.default_rng(0))


def test_the_page_reads_real_mnist_digits_blown_up_to_a_280_pixel_pad(mnist, mnist_model):
    # MNIST test digits the model reads right, blown up 10x to 280x280 and sent as a pad
    # would (half of them dark on light), come back read right, with the 28x28 image the
    # network saw and the hidden layer's activations
    X_test, y_test = mnist[0][60000:60200], mnist[1][60000:60200]
    P = nn.predict_proba(mnist_model, X_test)
    sure = np.flatnonzero((P.argmax(axis=1) == y_test) & (P.max(axis=1) > 0.9))[:20]
    assert len(sure) == 20
    with page_server(mnist_model) as port:
        for n, i in enumerate(sure):
            big = np.kron(X_test[i].reshape(28, 28), np.ones((10, 10)))
            status, answer = request(port, "POST", "/predict",
                                     pad_body(255 - big if n % 2 else big))
            assert status == 200 and answer["label"] == y_test[i], (i, answer.get("label"))
            assert len(answer["probabilities"]) == 10
            assert math.isclose(sum(answer["probabilities"]), 1, rel_tol=1e-5)
            assert np.array_equal(answer["image"], nn.mnist_style(big))
            assert len(answer["hidden"]) == 128 and min(answer["hidden"]) >= 0


def test_the_page_and_its_model_are_served_and_nothing_else():
    # GET / is the page (nothing in it fetched from elsewhere), GET /model the weights the
    # hidden-unit panel draws, the favicon an empty 204; no other path, and no file on disk
    params = untrained()
    with page_server(params) as port:
        status, page = request(port, "GET", "/")
        assert status == 200
        page = page.decode()
        for part in ('<canvas id="pad"', 'id="clear"', 'id="prediction"', 'rel="icon"'):
            assert part in page
        assert not re.search(r"(src|href)=\"(?!data:|/|#)", page) and "http" not in page
        status, model = request(port, "GET", "/model")
        templates = templates_of(model)
        assert status == 200 and templates.shape == (16, 784) and model["units"] == 16
        assert np.abs(templates).max(axis=1).tolist() == [100] * 16  # each on its own scale
        assert np.array_equal(np.sign(templates), np.sign(np.rint(
            100 * params["W1"] / np.abs(params["W1"]).max(axis=0))).T)
        assert np.allclose(model["outgoing"], params["W2"], atol=1e-4)
        status, progress = request(port, "GET", "/progress")  # weights that are done
        assert status == 200 and progress["done"] and not progress["training"]
        assert request(port, "GET", "/favicon.ico")[0] == 204
        for path in ("/nn_from_scratch.py", "/../nn_from_scratch.py", "/README.md", "/runs/x"):
            status, answer = request(port, "GET", path)
            assert status == 404 and "GET /runs, POST /runs" in answer["error"]
            assert "GET [/runs/N]/progress" in answer["error"]
        assert request(port, "GET", "/predict")[1] == {"error": "/predict takes POST"}


def test_the_page_shows_which_pixels_decide_fools_the_digit_and_dreams(mnist, mnist_model):
    # /predict adds the saliency |dloss/dx| of the answer it gives (brightest 255) and, when
    # asked, the smallest eps of 0.01..0.5 that changes it, with the fooled image within eps
    # of the one it read; GET /dreams gives ten images, each read as its digit, p >= 0.99
    X_test, y_test = mnist[0][60000:60100], mnist[1][60000:60100]
    i = int(np.flatnonzero(nn.predict(mnist_model, X_test) == y_test)[0])
    big = np.kron(X_test[i].reshape(28, 28), np.ones((10, 10)))
    with page_server(mnist_model) as port:
        status, plain = request(port, "POST", "/predict", pad_body(big))
        assert status == 200 and "fooled" not in plain
        saliency = np.array(plain["saliency"])
        assert saliency.shape == (784,) and saliency.min() >= 0 and saliency.max() == 255
        x = nn.scale_pixels(np.array(plain["image"], np.uint8)[None], np.float32)
        g = np.abs(nn.input_gradient(mnist_model, x, nn.one_hot([plain["label"]]), "relu"))[0]
        assert np.array_equal(saliency, np.rint(255 * g / g.max()).astype(int))
        body = json.loads(pad_body(big))
        status, answer = request(port, "POST", "/predict", json.dumps({**body, "fool": True}))
        fooled = answer["fooled"]
        assert status == 200 and 0 < fooled["eps"] <= 0.5 and fooled["label"] != answer["label"]
        image = np.array(fooled["image"])
        assert image.min() >= 0 and image.max() <= 255
        assert np.abs(image - np.array(answer["image"])).max() <= 255 * fooled["eps"] + 1
        assert nn.predict(mnist_model, image.astype(np.uint8)[None])[0] == fooled["label"]
        less = nn.fool(mnist_model, x, [answer["label"]], fooled["eps"] - 0.01)
        assert nn.predict(mnist_model, less)[0] == answer["label"]  # the smallest that works
        status, dreams = request(port, "GET", "/dreams")
        images = np.array(dreams["images"])
        assert status == 200 and images.shape == (10, 784) and min(dreams["p"]) >= 0.99
        assert np.array_equal(nn.predict(mnist_model, images.astype(np.uint8)), np.arange(10))


GOOD = pad_body(np.kron(np.eye(28, dtype=np.uint8) * 255, np.ones((10, 10), np.uint8)))


def test_before_the_first_step_the_weights_pages_say_so_in_one_line():
    # a page opened while the data still loads: /model, /dreams and /predict answer 503
    # with one line, and /progress already answers
    lab = nn.Lab(nn.parse_args([]))
    lab.runs[1] = nn.Run(1, nn.parse_args([]))  # queued, and never started
    with lab_server(lab) as port:
        for method, path, body in (("GET", "/model", b""), ("GET", "/dreams", b""),
                                   ("POST", "/predict", GOOD)):
            status, answer = request(port, method, path, body)
            assert status == 503 and "first step" in answer["error"]
            assert "\n" not in answer["error"]
        assert request(port, "GET", "/progress")[0] == 200


def templates_of(model):
    """GET /model's templates, base64 of (units, 784) int8, as an array."""
    return np.frombuffer(base64.b64decode(model["templates"]), np.int8).reshape(
        model["units"], 784)


@pytest.mark.parametrize("method, path, body, headers, status, reason", [
    ("POST", "/predict", pad_body(np.zeros((280, 280))), {}, 422, "the image is blank"),
    ("POST", "/predict", pad_body(np.full((280, 280), 255)), {}, 422, "the image is blank"),
    ("POST", "/predict", b"{not json", {}, 400, "the body is not JSON"),
    ("POST", "/predict", b"\xff\xfe", {}, 400, "the body is not JSON"),
    ("POST", "/predict", b"[1, 2]", {}, 400, "expected a JSON object"),
    ("POST", "/predict", b'{"width": 2, "height": 2}', {}, 400, "missing pixels"),
    ("POST", "/predict", b'{"pixels": "AAAA"}', {}, 400, "missing width, height"),
    ("POST", "/predict", b'{"width": 2.5, "height": 2, "pixels": "AAAA"}', {}, 400,
     "positive whole numbers"),
    ("POST", "/predict", b'{"width": -2, "height": -2, "pixels": "AAAA"}', {}, 400,
     "positive whole numbers"),
    ("POST", "/predict", b'{"width": true, "height": 3, "pixels": "AAAA"}', {}, 400,
     "positive whole numbers"),
    ("POST", "/predict", b'{"width": 100000, "height": 100000, "pixels": ""}', {}, 400,
     "a 100000x100000 pad is more than 1,000,000 pixels"),
    ("POST", "/predict", b'{"width": 2, "height": 2, "pixels": "AAA="}', {}, 400,
     "a 2x2 pad has 4 pixels; pixels holds 2 bytes"),
    ("POST", "/predict", b'{"width": 2, "height": 1, "pixels": "AAA"}', {}, 400,
     "pixels must be a base64 string"),
    ("POST", "/predict", b'{"width": 2, "height": 1, "pixels": "A*=="}', {}, 400,
     "pixels must be a base64 string"),
    ("POST", "/predict", b'{"width": 2, "height": 1, "pixels": 12}', {}, 400,
     "pixels must be a base64 string"),
    ("POST", "/other", GOOD, {}, 404, "no page /other"),
    ("POST", "/predict", GOOD, {"Host": "evil.example:8000"}, 403,
     "Host 'evil.example:8000' is not this server's address"),
    ("GET", "/", b"", {"Host": "rebound.example"}, 403, "is not this server's address"),
    ("GET", "/", b"", {"Host": "[::1].rebound.example:80"}, 403, "is not this server's address"),
])
def test_a_bad_request_gets_its_4xx_and_one_line_and_the_server_goes_on(method, path, body,
                                                                        headers, status, reason,
                                                                        capfd):
    with page_server(untrained()) as port:
        got, answer = request(port, method, path, body, headers)
        assert got == status and reason in answer["error"] and "\n" not in answer["error"]
        assert request(port, "POST", "/predict", GOOD)[0] == 200
    out, err = capfd.readouterr()
    assert "Traceback" not in out + err


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.1:8000", "localhost:8000", "LOCALHOST",
                                  "[::1]:8000", "[::1]", "192.168.1.20:8000"])
def test_a_host_header_naming_an_address_or_localhost_is_ours(host):
    # what a browser sends for http://127.0.0.1:8000/, http://localhost/, http://[::1]/ or
    # this machine's LAN address: an IP address cannot be rebound to another site
    with page_server(untrained()) as port:
        assert request(port, "GET", "/", headers={"Host": host})[0] == 200


def test_a_fault_while_answering_is_a_500_in_one_line_and_the_server_goes_on(monkeypatch,
                                                                            capfd):
    real = nn.mnist_style
    monkeypatch.setattr(nn, "mnist_style", lambda image: 1 / 0)
    with page_server(untrained()) as port:
        status, answer = request(port, "POST", "/predict", GOOD)
        assert status == 500 and answer == {
            "error": "the server failed to read this pad (ZeroDivisionError)"}
        monkeypatch.setattr(nn, "mnist_style", real)
        assert request(port, "POST", "/predict", GOOD)[0] == 200
    assert "Traceback" not in "".join(capfd.readouterr())


def test_a_body_over_the_limit_is_refused_before_it_is_read_and_no_length_is_411():
    with page_server(untrained()) as port, socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(5)
        s.sendall(b"POST /predict HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n"
                  b"\r\n")  # and not a byte of the 100 MB
        reply = b"".join(iter(lambda: s.recv(4096), b"")).decode()  # until the server hangs up
        assert reply.startswith("HTTP/1.0 413") and "at most 2,000,000" in reply
        status, answer = request(port, "POST", "/predict", GOOD, {"Content-Length": "x"})
        assert status == 411 and "Content-Length" in answer["error"]


def test_a_client_that_sends_nothing_blocks_nobody_and_is_dropped(monkeypatch):
    monkeypatch.setattr(nn.PageHandler, "timeout", 1)
    with page_server(untrained()) as port, socket.create_connection(("127.0.0.1", port)) as s:
        assert request(port, "POST", "/predict", GOOD, timeout=3)[0] == 200  # meanwhile
        s.settimeout(5)
        assert s.recv(100) == b""  # the server hung up on the silent client


def test_many_concurrent_requests_are_all_answered_alike():
    with page_server(untrained()) as port, \
            concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: request(port, "POST", "/predict", GOOD), range(64)))
    assert all(a == answers[0] for a in answers) and answers[0][0] == 200


def start_cli(*args):
    """The script run as a user would, reading its output until the page's URL."""
    process = subprocess.Popen([sys.executable, str(HERE / "nn_from_scratch.py"),
                                *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    return process, read_until(process, "http://")


def read_until(process, start):
    """The process's next lines of output, up to the first that starts with start."""
    lines = []
    for line in process.stdout:
        lines.append(line)
        if line.startswith(start):
            break
    return lines


def test_serve_prints_the_url_on_its_own_line_and_ctrl_c_ends_it_with_exit_0(tmp_path):
    nn.save_params(tmp_path / "model.npz", untrained())
    process, lines = start_cli("--load", tmp_path / "model.npz", "--serve", "--port", 0)
    url = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\n", lines[-1])
    assert url, lines
    assert request(int(url[1]), "POST", "/predict", GOOD)[0] == 200
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0 and err == "" and out == "stopped\n"


def test_the_page_serves_a_deep_network_layer_by_layer(tmp_path):
    # a saved 784-16-8-10 tanh network behind --load --serve: /model gives its sizes and no
    # weights out to the digits (W2 leads to layer 2); /predict gives the first hidden
    # layer's activations and the second's, computed with tanh
    params = nn.init_params([784, 16, 8, 10], np.random.default_rng(0), activation="tanh")
    nn.save_params(tmp_path / "deep.npz", params, activation="tanh")
    process, lines = start_cli("--load", tmp_path / "deep.npz", "--serve", "--port", 0)
    try:
        port = int(lines[-1].rsplit(":", 1)[1].strip("/\n"))
        status, model = request(port, "GET", "/model")
        assert status == 200 and model["sizes"] == [784, 16, 8, 10]
        assert model["activation"] == "tanh" and model["outgoing"] is None
        assert templates_of(model).shape == (16, 784)
        status, answer = request(port, "POST", "/predict", GOOD)
        x = nn.mnist_style(np.frombuffer(base64.b64decode(json.loads(GOOD)["pixels"]),
                                         np.uint8).reshape(280, 280).astype(float))
        cache = nn.forward_prop(params, x[None] / np.float32(255), "tanh")
        assert status == 200 and np.allclose(answer["hidden"], cache[1][0], atol=1e-6)
        assert len(answer["deeper"]) == 1 and np.allclose(answer["deeper"][0], cache[3][0],
                                                          atol=1e-6)
        assert np.allclose(answer["probabilities"], cache[-1][0], atol=1e-6)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)


def test_serve_after_training_serves_the_weights_just_trained(tmp_path):
    X_train, y_train, X_test, y_test = small_mnist_like()
    np.savez(tmp_path / "d.npz", x_train=X_train, y_train=y_train, x_test=X_test, y_test=y_test)
    process, lines = start_cli("--data", tmp_path / "d.npz", "--epochs", 1, "--hidden", 8,
                               "--serve", "--port", 0)
    port = int(lines[-1].rsplit(":", 1)[1].strip("/\n"))
    lines = read_until(process, "test accuracy:")
    status, model = request(port, "GET", "/model")
    assert status == 200 and model["units"] == 8
    assert request(port, "GET", "/progress")[1]["done"]
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=10)
    assert process.returncode == 0


# ----------------------------------------------------------------------------
# Watching it learn: --serve while the network trains

def url_port(lines):
    return int(re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\n", lines[-1])[1])


def epoch_lines(lines):
    """(loss, train %, val %) of each epoch line the terminal printed."""
    return [tuple(map(float, m.groups())) for m in (re.search(
        r"\| loss (\d+\.\d+) \| train +(\d+\.\d+)% \| val +(\d+\.\d+)%", line)
        for line in lines if line.startswith("epoch")) if m]


def test_a_snapshot_is_a_copy_taken_a_few_times_a_second_at_most():
    # the training loop's calls publish copies of every layer, at most every 0.25 s, and at
    # every epoch's end; changing the weights afterwards changes no snapshot
    params = nn.init_params([784, 16, 8, 10], np.random.default_rng(0))
    live = nn.Live(activation="relu")
    live.start(epochs=2, batches=1000)
    assert live.snapshot["params"] is None  # no step yet: /predict says so
    start = time.perf_counter()
    batch = 0
    while time.perf_counter() - start < 1.0:
        batch += 1
        live(params, 1, batch, 0.5)
        time.sleep(0.001)
    assert 2 <= live.version <= 6, live.version  # 4 a second, and the first
    snapshot = live.snapshot
    assert all(snapshot["params"][k] is not params[k] for k in params)
    before = {k: P.copy() for k, P in snapshot["params"].items()}
    for P in params.values():
        P += 1  # the next steps
    assert all(np.array_equal(snapshot["params"][k], before[k]) for k in params)
    record = {"epoch": 1, "loss": 0.5, "train_acc": 0.9, "val_acc": 0.9, "lr": 0.1,
              "seconds": 1.0, "db_norm": [1, 1, 1]}
    live(params, 1, batch + 1, 0.5, record)  # an epoch's end is always published
    progress = json.loads(live.snapshot["progress"])
    assert progress["history"] == [record] and progress["epoch"] == 1
    assert progress["losses"][-1][0] == batch + 1 and not progress["done"]


@needs_mnist
def test_the_page_follows_a_real_run_over_http(tmp_path):
    # --serve during a short run: the address comes before the first epoch; /progress grows
    # epoch by epoch to the terminal's figures; /predict answers while it trains; at the end
    # test_accuracy is the terminal's, --save and --log are written, and it goes on serving.
    # 50,000 images, so that an epoch takes longer than Live.EVERY and a snapshot falls
    # within one (at 20,000, epochs of 0.2 s published only at their ends)
    process, lines = start_cli("--data", MNIST_NPZ, "--subset", 50000, "--epochs", 4,
                               "--batch-size", 32, "--serve", "--port", 0,
                               "--save", tmp_path / "m.npz", "--log", tmp_path / "run.json")
    try:
        port = url_port(lines)
        assert lines[-2] == "watch it learn at (Ctrl-C to stop):\n"
        assert not any(line.startswith("epoch") for line in lines)
        records, answered, batches, deadline = [], [], set(), time.time() + 120
        while time.time() < deadline:
            status, p = request(port, "GET", "/progress")
            assert status == 200 and p["training"]
            assert p["epoch"] == 0 or (p["epochs"], p["batches"]) == (4, 1563)  # once it starts
            records.append(len(p["history"]))
            batches.add(p["batch"])
            if p["done"]:
                break
            status, answer = request(port, "POST", "/predict", GOOD)
            if status == 200:
                answered.append(p["epoch"])
            time.sleep(0.05)
        assert p["done"] and p["interrupted"] is None
        assert records == sorted(records) and records[-1] == 4 and len(set(records)) >= 3
        assert answered and min(answered) <= 2  # while it was training
        assert any(0 < b < 1563 for b in batches)  # snapshots within an epoch, not only at its end
        out = lines + read_until(process, "test accuracy:")
        assert [(round(r["loss"], 4), round(100 * r["train_acc"], 2), round(100 * r["val_acc"], 2))
                for r in p["history"]] == epoch_lines(out)
        terminal = float(re.search(r"test accuracy: (\d+\.\d+)%", out[-1])[1])
        assert f"{100 * p['test_accuracy']:.2f}" == f"{terminal:.2f}"
        assert p["result"]["test_accuracy"] == p["test_accuracy"]
        assert np.array(p["result"]["confusion"]).sum() == 10000
        assert len(p["result"]["mistakes"]) == 8
        assert (tmp_path / "m.npz").exists() and (tmp_path / "run.json").exists()
        assert request(port, "POST", "/predict", GOOD)[0] == 200  # still serving
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0 and err == "" and out.endswith("stopped\n")


@needs_mnist
def test_ctrl_c_while_the_page_watches_stops_training_and_a_second_one_the_page(tmp_path):
    # the first Ctrl-C: the batch finishes, the weights are evaluated and saved, and the
    # page says where it stopped, as the terminal does, and goes on serving; the second exits
    process, lines = start_cli("--data", MNIST_NPZ, "--epochs", 20, "--serve", "--port", 0,
                               "--save", tmp_path / "m.npz")
    try:
        port = url_port(lines)
        deadline = time.time() + 60
        while request(port, "GET", "/progress")[1]["epoch"] < 2 and time.time() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        out = read_until(process, "test accuracy:")
        stopped = next(line.strip() for line in out if line.startswith("interrupted in epoch"))
        p = request(port, "GET", "/progress")[1]
        assert p["done"] and p["interrupted"] == stopped and p["test_accuracy"] is not None
        assert (tmp_path / "m.npz").exists()
        assert request(port, "POST", "/predict", GOOD)[0] == 200
    finally:
        process.send_signal(signal.SIGINT)
        rest, err = process.communicate(timeout=20)
    assert process.returncode == 130 and err == "" and rest.endswith("stopped\n")


@needs_mnist
def test_stuck_clients_do_not_hold_up_the_training_or_the_page(tmp_path):
    # clients that connect and send nothing, or ask for /model and never read it, while the
    # network trains: the run still finishes, and other requests are still answered at once
    process, lines = start_cli("--data", MNIST_NPZ, "--subset", 20000, "--epochs", 3,
                               "--serve", "--port", 0)
    stuck = []
    try:
        port = url_port(lines)
        for n in range(8):
            client = socket.create_connection(("127.0.0.1", port))
            client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
            if n % 2:
                client.sendall(b"GET /model HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" * 50)
            stuck.append(client)
        started = time.perf_counter()
        assert request(port, "GET", "/progress", timeout=5)[0] == 200
        assert time.perf_counter() - started < 2
        out = read_until(process, "test accuracy:")
        assert sum(line.startswith("epoch") for line in out) == 3
    finally:
        for client in stuck:
            client.close()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)


def test_serve_on_another_address_warns_and_a_busy_port_is_one_line(tmp_path, capsys):
    nn.save_params(tmp_path / "model.npz", untrained())
    process, lines = start_cli("--load", tmp_path / "model.npz", "--serve", "--port", 0,
                               "--host", "0.0.0.0")
    assert lines[0].startswith("warning: serving on 0.0.0.0: anyone who can reach this")
    process.send_signal(signal.SIGINT)
    process.communicate(timeout=10)
    assert process.returncode == 0
    with page_server(untrained()) as port:
        code, out, err = run_main(["--load", tmp_path / "model.npz", "--serve", "--port", port],
                                  capsys)
    assert code == 1 and err.count("\n") == 1
    assert f"cannot listen on 127.0.0.1:{port}" in err and "--port 0" in err


def test_serve_takes_weights_for_28x28_digits_only(tmp_path, capsys):
    nn.save_params(tmp_path / "digits.npz", nn.init_params([64, 8, 10], np.random.default_rng(0)))
    code, out, err = run_main(["--load", tmp_path / "digits.npz", "--serve"], capsys)
    assert code == 1 and "your own digits are prepared as 28x28 images" in err
    code, out, err = run_main(["--dataset", "digits", "--epochs", 1, "--serve"], capsys)
    assert code == 1 and "--serve draws 28x28 digits" in err
    assert "epoch" not in out  # refused before training, not after
    code, out, err = run_main(["--load", tmp_path / "digits.npz", "--serve", "--port", 70000],
                              capsys)
    assert code == 2 and "--port must be from 0 to 65535" in err


# ----------------------------------------------------------------------------
# The lab: runs started from the page, queued, trained one at a time, compared

def post_json(port, path, value, headers=None):
    """A write as the page sends it: JSON, with its Content-Type."""
    return request(port, "POST", path, json.dumps(value).encode(),
                   {"Content-Type": "application/json", **(headers or {})})


def wait_for(port, run_id, states=("done", "stopped", "failed"), timeout=120):
    """GET /runs until run run_id is in one of states; returns its row."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        row = next((r for r in request(port, "GET", "/runs")[1] if r["id"] == run_id), None)
        if row and row["state"] in states:
            return row
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} is not {' or '.join(states)} after {timeout} s: {row}")


def lines_of_run(out, run_id):
    """The terminal's lines of run run_id in a server's output: from its 'run N:' line to
    its test accuracy."""
    start = out.index(next(line for line in out if line.startswith(f"run {run_id}: ")))
    end = next(i for i in range(start, len(out)) if out[i].startswith("test accuracy:"))
    return out[start:end + 1]


def without_seconds(value):
    """A --log record with the times left out: what two runs of one command share."""
    if isinstance(value, dict):
        return {k: without_seconds(v) for k, v in value.items() if k != "seconds"}
    return [without_seconds(v) for v in value] if isinstance(value, list) else value


@needs_mnist
def test_runs_started_from_the_page_are_the_command_lines_runs_digit_for_digit(tmp_path):
    # --serve with its own flags as run 1, then two runs queued over HTTP while it trains:
    # they train in turn, and each run's record and terminal lines are those of its command,
    # shown on the page, typed into a terminal (with --log): the same losses, accuracies and
    # data hash, digit for digit
    process, lines = start_cli("--data", MNIST_NPZ, "--serve", "--port", 0, "--subset", 3000,
                               "--epochs", 2)
    try:
        port = url_port(lines)
        started = [post_json(port, "/runs", {"flags": flags}) for flags in
                   ("--init normal --subset 2000 --epochs 3", "--epochs 2 --subset 2000 --hidden 32 16 --optimizer adam --dropout 0.2")]
        assert [status for status, _ in started] == [201, 201]
        assert [answer["id"] for _, answer in started] == [2, 3]
        rows = [wait_for(port, n) for n in (1, 2, 3)]
        assert [row["state"] for row in rows] == ["done"] * 3
        assert rows[1]["name"] == "--init normal --epochs 3 --subset 2000"
        assert rows[1]["loss_before"] > 30  # N(0, 1) weights: confident nonsense
        out = lines + read_until(process, "test accuracy:")  # run 1's
        for _ in range(2):
            out += read_until(process, "test accuracy:")
        for (_, answer), row in zip(started, rows[1:]):
            command = shlex.split(answer["command"])
            assert command[:2] == ["python", "nn_from_scratch.py"] and row["command"] == answer["command"]
            assert command[command.index("--data") + 1] == str(MNIST_NPZ)  # the server's
            status, record = request(port, "GET", f"/runs/{answer['id']}")
            assert status == 200 and row["test_accuracy"] == record["test_accuracy"]
            typed = run_cli(*command[2:], "--log", tmp_path / "typed.json")
            assert typed.returncode == 0, typed.stderr
            assert without_seconds(record) == without_seconds(
                json.loads((tmp_path / "typed.json").read_text()))
            page_lines = lines_of_run(out, answer["id"])
            assert page_lines[0] == f"run {answer['id']}: {answer['command']}\n"
            same = [re.sub(r"\d+\.\ds$", "", line) for line in typed.stdout.splitlines()
                    if not line.startswith(("saved", "trained in"))]
            assert same == [re.sub(r"\d+\.\ds$", "", line.rstrip("\n")) for line in page_lines[1:]
                            if not line.startswith("trained in")]
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)
    assert process.returncode == 0


def lab_with(path):
    """A Lab as `--data path --serve` makes it, with the data loaded."""
    args = nn.parse_args(["--data", str(path)])
    return nn.Lab(args, nn.load_dataset(args))


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """28x28 images to train on in a blink, 1,000 to train and 200 to test, as a .npz."""
    X_train, y_train, X_test, y_test = small_mnist_like(1000, 200)
    path = tmp_path_factory.mktemp("small") / "small.npz"
    np.savez(path, x_train=X_train, y_train=y_train, x_test=X_test, y_test=y_test)
    return path


@pytest.mark.parametrize("flags", ["--hidden 0", "--hidden 100001", "--lr -1", "--epochs x",
                                   "--optimizer rmsprop", "--dropout 1", "--momentum 1",
                                   "--nonsense", "--subset 999999", "--batch-size 5000",
                                   "--hidden 10000 10000 10000"])
def test_a_bad_flag_from_the_page_gets_a_400_with_the_command_lines_own_line(flags, small_data):
    typed = run_cli("--data", small_data, *flags.split())
    assert typed.returncode == 2 and typed.stderr.count("\n") == 1
    with lab_server(lab_with(small_data)) as port:
        status, answer = post_json(port, "/runs", {"flags": flags})
        assert status == 400 and answer == {"error": typed.stderr.strip()}
        assert request(port, "GET", "/runs")[1] == []  # nothing queued


@pytest.mark.parametrize("flags, refused", [
    ("--save {tmp}/m.npz", "--save"), ("--log {tmp}/r.json", "--log"),
    ("--plot {tmp}/p.png", "--plot"), ("--load {tmp}/m.npz", "--load"),
    ("--predict {tmp}/x.png", "--predict"), ("--dream {tmp}/d.npy", "--dream FILE"),
    ("--data {tmp}", "--data"), ("--dataset digits", "--dataset"),
    ("--data-home {tmp}", "--data-home"), ("--serve", "--serve"), ("--port 1", "--port"),
    ("--host 0.0.0.0", "--host"), ("--gradcheck", "--gradcheck"), ("--sav {tmp}/m.npz", "--save"),
    ("--help", "unrecognized arguments: --help")])
def test_a_flag_that_reads_or_writes_a_file_or_changes_the_server_is_refused(flags, refused,
                                                                              small_data, tmp_path):
    # no request makes the server read or write a path: the flags that would are refused in
    # one line, before anything is queued, and nothing is written
    with lab_server(lab_with(small_data)) as port:
        status, answer = post_json(port, "/runs", {"flags": flags.format(tmp=tmp_path)})
        assert status == 400 and refused in answer["error"] and "\n" not in answer["error"]
        assert request(port, "GET", "/runs")[1] == []
    assert list(tmp_path.iterdir()) == []


def test_a_page_on_another_site_cannot_start_stop_or_remove_runs(small_data):
    # a POST or DELETE whose Origin is another site is refused, and so is a write that is not
    # JSON (what a form elsewhere can send unasked); this server's own Origin, or none (a
    # script), is let through
    lab = lab_with(small_data)
    with lab_server(lab) as port:
        ours = {"Origin": f"http://127.0.0.1:{port}", "Host": f"127.0.0.1:{port}"}
        status, answer = post_json(port, "/runs", {"flags": "--epochs 1"}, ours)
        assert status == 201
        wait_for(port, answer["id"])
        for origin in ("http://evil.example", "null", f"http://127.0.0.1:{port + 1}",
                       f"https://127.0.0.1:{port}"):
            theirs = {"Origin": origin, "Host": f"127.0.0.1:{port}"}
            for method, path, body in (("POST", "/runs", b'{"flags": ""}'),
                                       ("POST", "/runs/1/stop", b"{}"), ("DELETE", "/runs/1", b""),
                                       ("POST", "/predict", GOOD)):
                status, answer = request(port, method, path, body,
                                         {"Content-Type": "application/json", **theirs})
                assert status == 403 and "another site" in answer["error"], (origin, path)
        for kind in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            status, answer = request(port, "POST", "/runs", b'{"flags": ""}', {"Content-Type": kind})
            assert status == 415 and "application/json" in answer["error"]
            status, answer = request(port, "POST", "/runs/1/stop", b"{}", {"Content-Type": kind})
            assert status == 415
        assert [r["id"] for r in request(port, "GET", "/runs")[1]] == [1]  # nothing started
        assert request(port, "DELETE", "/runs/1", headers=ours)[0] == 204
        assert request(port, "GET", "/runs")[1] == []


def test_the_queue_is_bounded_and_a_run_can_be_stopped_queued_or_training_and_removed(small_data):
    lab = lab_with(small_data)
    with lab_server(lab) as port:
        long = post_json(port, "/runs", {"flags": "--epochs 100000"})[1]["id"]
        wait_for(port, long, ("training",))
        waiting = [post_json(port, "/runs", {"flags": f"--seed {n}"})[1]["id"]
                   for n in range(nn.Lab.MAX_QUEUED)]
        status, answer = post_json(port, "/runs", {"flags": "--seed 99"})
        assert status == 429 and f"{nn.Lab.MAX_QUEUED} runs are waiting" in answer["error"]
        states = {r["id"]: r["state"] for r in request(port, "GET", "/runs")[1]}
        assert states == {long: "training", **{n: "queued" for n in waiting}}
        assert request(port, "DELETE", f"/runs/{long}")[0] == 409  # stop it first
        for n in waiting[:-1]:  # queued: stopped at once, never trained
            assert post_json(port, f"/runs/{n}/stop", {})[1]["state"] == "stopped"
        assert request(port, "GET", f"/runs/{waiting[0]}")[0] == 409  # no record
        assert post_json(port, f"/runs/{long}/stop", {})[0] == 200  # after its batch
        row = wait_for(port, long)
        assert row["state"] == "stopped" and 0 < row["epochs_done"] < 100000
        status, record = request(port, "GET", f"/runs/{long}")  # evaluated, as Ctrl-C does
        assert status == 200 and record["test_accuracy"] == row["test_accuracy"]
        p = request(port, "GET", f"/runs/{long}/progress")[1]
        assert p["interrupted"].startswith(f"interrupted in epoch {row['epochs_done']}")
        assert wait_for(port, waiting[-1])["state"] == "done"  # the next one then trained
        assert request(port, "DELETE", f"/runs/{long}")[0] == 204
        assert request(port, "GET", f"/runs/{long}")[0] == 404
        assert long not in [r["id"] for r in request(port, "GET", "/runs")[1]]


def test_a_diverging_run_fails_alone_with_the_terminals_line_and_the_next_one_trains(
        small_data, capfd):
    lab = lab_with(small_data)
    with lab_server(lab) as port:
        bad = post_json(port, "/runs", {"flags": "--optimizer sgd --lr 1e6"})[1]["id"]
        good = post_json(port, "/runs", {"flags": "--epochs 2"})[1]["id"]
        row = wait_for(port, bad)
        assert row["state"] == "failed" and re.fullmatch(
            r"error: training diverged at epoch \d+, batch \d+ \(loss=(nan|inf)\); try a "
            r"smaller --lr", row["error"])
        assert wait_for(port, good)["state"] == "done"
        assert request(port, "GET", f"/runs/{bad}")[0] == 409
    out, err = capfd.readouterr()
    assert err == row["error"] + "\n"  # the terminal's one line, and no warning


def test_todays_routes_answer_for_the_newest_run_and_runs_routes_for_each(small_data):
    # /progress, /model, /dreams and /predict are the newest started run's; /runs/N/... that
    # run's, with its own weights
    lab = lab_with(small_data)
    with lab_server(lab) as port:
        first = post_json(port, "/runs", {"flags": "--epochs 1 --hidden 8"})[1]["id"]
        second = post_json(port, "/runs", {"flags": "--epochs 1 --hidden 12"})[1]["id"]
        wait_for(port, second)
        assert request(port, "GET", "/model")[1]["units"] == 12
        assert request(port, "GET", f"/runs/{first}/model")[1]["units"] == 8
        assert len(post_json(port, f"/runs/{first}/predict", json.loads(GOOD))[1]["hidden"]) == 8
        assert len(request(port, "POST", "/predict", GOOD)[1]["hidden"]) == 12
        assert request(port, "GET", "/progress")[1] == request(port, "GET",
                                                                f"/runs/{second}/progress")[1]
        assert request(port, "GET", f"/runs/{first}/dreams")[0] == 200
        assert request(port, "GET", "/runs/99/progress")[0] == 404


def test_a_run_with_its_own_seed_splits_x_and_y_as_the_command_line_does(tmp_path):
    # a .npz of X and y is split at random by --seed: a run with another seed than the
    # server's gets the command line's split, and so its numbers
    X, y = small_mnist_like(600, 0)[:2]
    np.savez(tmp_path / "xy.npz", X=X.reshape(600, 784), y=y)
    lab = lab_with(tmp_path / "xy.npz")
    with lab_server(lab) as port:
        run = post_json(port, "/runs", {"flags": "--seed 3 --epochs 2"})[1]
        assert wait_for(port, run["id"])["state"] == "done"
        record = request(port, "GET", f"/runs/{run['id']}")[1]
    typed = run_cli(*shlex.split(run["command"])[2:], "--log", tmp_path / "typed.json")
    assert typed.returncode == 0, typed.stderr
    assert without_seconds(record) == without_seconds(json.loads((tmp_path / "typed.json")
                                                                 .read_text()))


def test_finished_runs_are_bounded_oldest_out_and_memory_stays_flat(small_data):
    # after 50 runs started and finished, the lab holds what it held after 12: the
    # MAX_FINISHED newest runs, and (tracemalloc, which counts NumPy's arrays too) the same
    # memory, not four times as much
    import gc
    import tracemalloc
    lab = lab_with(small_data)

    def runs(n):
        for _ in range(n):
            lab.start(lab.parse("--epochs 1 --hidden 16"))
            while not lab.idle():
                time.sleep(0.01)
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    tracemalloc.start()
    try:
        runs(2)  # what the first runs allocate once (imports, caches)
        after_12 = runs(10)
        after_50 = runs(38)
    finally:
        tracemalloc.stop()
    assert list(lab.runs) == list(range(41, 51))  # the 10 newest
    assert all(run.state == "done" for run in lab.runs.values())
    assert after_50 < 1.05 * after_12, (after_12, after_50)


def test_the_form_is_the_parsers_flags_and_a_new_flag_appears_on_the_page(monkeypatch):
    # every flag of the parser but those the page refuses and the views is in the form,
    # with its choices, default and help; a flag added to the parser is there with no change
    # to the page
    fields = {f["flag"]: f for f in nn.form_fields()}
    assert list(fields) == ["--hidden", "--activation", "--init", "--loss", "--dropout",
                            "--epochs", "--batch-size", "--lr", "--optimizer", "--schedule",
                            "--momentum", "--weight-decay", "--augment", "--dtype", "--seed",
                            "--subset"]
    assert fields["--optimizer"]["choices"] == ["sgd", "momentum", "adam"]
    assert fields["--optimizer"]["default"] == "momentum" and fields["--augment"]["kind"] == "bool"
    assert fields["--epochs"]["help"] == "passes over the training set (default: 20)"
    make_parser = nn.make_parser

    def with_a_new_flag(add_help=True):
        p = make_parser(add_help)
        p.add_argument("--label-smoothing", type=float, default=0.0, help="a new flag")
        return p
    monkeypatch.setattr(nn, "make_parser", with_a_new_flag)
    with page_server(untrained()) as port:
        page = request(port, "GET", "/")[1].decode()
    lab = json.loads(re.search(r"const LAB = (\{.*?\});  //", page)[1])
    assert {"flag": "--label-smoothing", "kind": "number", "choices": None, "default": "0.0",
            "help": "a new flag"} in lab["fields"]
    assert [key for key, _, _ in lab["lessons"]] == ["zeros", "mse", "dropout", "vanishing",
                                                    "adam-lr"]


def test_every_lessons_flags_are_accepted_by_the_parser():
    lab = nn.Lab(nn.parse_args([]))
    for key, title, runs in nn.LESSONS:
        assert len(runs) >= 2
        names = [nn.Run(1, lab.parse(flags)).name for flags in runs]
        assert len(set(names)) == len(runs), (key, names)  # each run differs


def test_load_serve_shows_the_saved_weights_as_a_run_and_reads_data_only_for_a_run(
        tmp_path, small_data):
    nn.save_params(tmp_path / "m.npz", untrained())
    data = tmp_path / "later.npz"  # not there yet when the server starts
    process, lines = start_cli("--load", tmp_path / "m.npz", "--serve", "--port", 0,
                               "--data", data)
    try:
        port = url_port(lines)
        [row] = request(port, "GET", "/runs")[1]
        assert row["state"] == "done" and row["name"] == f"--load {tmp_path / 'm.npz'}"
        assert request(port, "POST", "/predict", GOOD)[0] == 200
        shutil.copy(small_data, data)
        run = post_json(port, "/runs", {"flags": "--epochs 1"})[1]["id"]
        assert wait_for(port, run)["state"] == "done"
        assert request(port, "GET", "/progress")[1]["done"]
    finally:
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0 and err == "" and out.endswith("stopped\n")


CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")


@pytest.fixture(scope="session")
def browser():
    """selenium and Debian's Chromium, or the test is skipped saying how to install them (in
    CI it fails). A browser test names this fixture first, so that the check comes before
    any other fixture's work and before the test's own selenium imports."""
    optional("selenium", "pip install selenium")
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        missing("Chromium", "apt-get install chromium chromium-driver")


@contextlib.contextmanager
def headless_chromium():
    """Debian's Chromium driven by selenium, offline: the binaries are named outright, so
    that selenium's driver manager never tries to download one. Needs the browser fixture."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--no-first-run",
                 "--disable-sync", "--disable-quic", "--hide-scrollbars"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    with tempfile.TemporaryDirectory() as profile:
        options.add_argument(f"--user-data-dir={profile}")
        driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        try:
            yield driver
        finally:
            driver.quit()


def draw_on_pad(driver, digit, kind):
    """Draw the digit's strokes on #pad with real pointer events of one kind (mouse, pen,
    touch), as a hand would: down, a move to each point, up."""
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By
    pad = driver.find_element(By.ID, "pad")
    width, height = pad.size["width"], pad.size["height"]
    actions = ActionBuilder(driver, mouse=PointerInput(kind, kind), duration=5)
    for stroke in STROKES[digit]:
        for n, (x, y) in enumerate(stroke):
            actions.pointer_action.move_to(pad, round((x - 0.5) * width * 0.9),
                                           round((y - 0.5) * height * 0.9))
            if n == 0:
                actions.pointer_action.pointer_down()
        actions.pointer_action.pointer_up()
    actions.perform()


@pytest.mark.parametrize("cached", [False, True], ids=["MNIST not fetched", "MNIST cached"])
def test_without_selenium_the_browser_tests_are_skipped_with_the_reason_and_fail_in_ci(
        cached, tmp_path, request):
    # the README's test command where selenium is not installed, by a user who has run the
    # script once (MNIST cached) and by one who has not: every browser test is skipped saying
    # how to install selenium, not failed by its own "from selenium import ..." (before that
    # fix, a ModuleNotFoundError) nor skipped for MNIST first (before that one, three of four);
    # an MNIST test says what to run. Where CI is set, each errs with its reason instead
    if cached:
        request.getfixturevalue("mnist")
    browser_tests = [name for name in globals() if name.startswith("test_in_a_real_browser")]
    mnist_test = "test_learns_real_mnist_to_98_point_2_percent_with_the_defaults"
    chosen = "test_in_a_real_browser" + ("" if cached else f" or {mnist_test}")
    hide_selenium = ("import sys; sys.modules['selenium'] = None; import pytest; sys.exit("
                     "pytest.main(['-q', '-rsE', '-p', 'no:cacheprovider', '-k', "
                     f"'{chosen}', 'test_nn.py']))")
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"SCIKIT_LEARN_DATA": str(DATA_HOME)}
    if not cached:
        env = {k: v for k, v in env.items() if k != "NN_SHARED_DATA"} | {
            "SCIKIT_LEARN_DATA": str(tmp_path)}
    tests = len(browser_tests) + (not cached)
    for ci, outcome in ((None, "skipped"), ("true", "errors")):
        run = subprocess.run([sys.executable, "-c", hide_selenium], cwd=HERE, text=True,
                             capture_output=True, env=env | ({"CI": ci} if ci else {}),
                             timeout=120)
        out = run.stdout + run.stderr
        assert f"{tests} {outcome}" in out and " passed" not in out, out[-2000:]
        assert " failed" not in out and "ModuleNotFoundError" not in out, out[-2000:]
        reasons = re.findall(r"^(?:SKIPPED \[1\] test_nn\.py:\d+|ERROR test_nn\.py::\w+ - Failed)"
                             r": (.*)$", out, re.M)
        assert len(reasons) == tests, out[-2000:]
        assert reasons.count("selenium is not installed (pip install selenium)") == \
            len(browser_tests)
        assert reasons.count(f"real MNIST is not in {tmp_path}: run `python nn_from_scratch.py` "
                             "once, to fetch it") == (not cached), out[-2000:]


def test_in_a_real_browser_digits_drawn_on_the_pad_are_read_right(browser, mnist_model):
    # Chromium loads the page, a mouse, a pen and a finger draw each digit on #pad, and
    # #prediction shows it; Clear empties it; pointing at a hidden unit shows what it looks
    # for; the console shows no error. With NN_SCREENSHOTS=DIR it saves the README's
    # screenshots there, in a wide and a narrow window.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.support.ui import WebDriverWait
    with page_server(mnist_model) as port, headless_chromium() as driver:
        driver.set_window_size(1300, 1000)
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 10)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#hidden div")) == 128)
        prediction = driver.find_element(By.ID, "prediction")
        assert prediction.text == "?"
        for digit in range(10):
            kind = ("mouse", "pen", "touch")[digit % 3]
            draw_on_pad(driver, digit, kind)
            wait.until(lambda d: prediction.text == str(digit), f"{digit} ({kind}): "
                       f"read as {prediction.text}")
            time.sleep(0.3)  # any answer still on its way has arrived
            assert prediction.text == str(digit), (digit, kind)
            if digit < 9:
                driver.find_element(By.ID, "clear").click()
                wait.until(lambda d: prediction.text == "?")
        seen = driver.execute_script("return Array.from(document.getElementById('seen')"
                                     ".getContext('2d').getImageData(0, 0, 28, 28).data)")
        assert max(seen) == 255  # the digit as the network sees it is drawn
        cells = driver.find_elements(By.CSS_SELECTOR, "#hidden div")
        brightest = [cell.value_of_css_property("background-color") for cell in cells].index(
            "rgba(255, 255, 255, 1)")  # the unit that fires most for this "9"
        ActionChains(driver).move_to_element(cells[brightest]).perform()
        title = driver.find_element(By.ID, "unit").text
        assert re.fullmatch(rf"Unit {brightest}: fires \d+\.\d\d", title) and "0.00" not in title
        assert "picked" in cells[brightest].get_attribute("class")
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        folder = os.environ.get("NN_SCREENSHOTS")
        if folder:
            driver.save_screenshot(os.path.join(folder, "page-wide.png"))
            driver.set_window_size(400, 2200)
            driver.save_screenshot(os.path.join(folder, "page-narrow.png"))


def test_in_a_real_browser_the_page_fools_the_drawn_digit_and_shows_the_dreams(browser,
                                                                               mnist_model):
    # a drawn 3 shows its saliency; "Fool it" shows the image, moved by the least eps, that
    # it reads as another digit, and says so; "Dream" draws the ten dreams, each p >= 0.99;
    # the console shows no error. With NN_SCREENSHOTS=DIR it saves a wide and a narrow view
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    painted = ("return Array.from(arguments[0].getContext('2d').getImageData(0, 0, 28, 28)"
               ".data).filter((v, i) => i % 4 == 0 && v > 0).length")
    with page_server(mnist_model) as port, headless_chromium() as driver:
        driver.set_window_size(1300, 1000)
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 10)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#hidden div")) == 128)
        draw_on_pad(driver, 3, "mouse")
        prediction = driver.find_element(By.ID, "prediction")
        wait.until(lambda d: prediction.text == "3")
        saliency = driver.find_element(By.ID, "saliency")
        wait.until(lambda d: d.execute_script(painted, saliency) > 20)
        fooled = driver.find_element(By.ID, "fooled")
        assert not fooled.is_displayed()
        driver.find_element(By.ID, "fool").click()
        note = driver.find_element(By.ID, "fool-note")
        wait.until(lambda d: note.text.startswith("Every pixel moved by"))
        eps, label = re.fullmatch(r"Every pixel moved by (\S+): now it reads (\d)\.", note.text).groups()
        assert 0 < float(eps) <= 0.5 and label != "3" and fooled.is_displayed()
        assert driver.execute_script(painted, fooled) > 100  # the faint change shows everywhere
        driver.find_element(By.ID, "dream").click()
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#dreamt figure")) == 10)
        captions = [f.text for f in driver.find_elements(By.CSS_SELECTOR, "#dreamt figure")]
        assert [c.split(":")[0] for c in captions] == list("0123456789")
        assert min(float(c.split("= ")[1]) for c in captions) >= 0.99
        driver.find_element(By.ID, "clear").click()
        wait.until(lambda d: not fooled.is_displayed() and prediction.text == "?")
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        folder = os.environ.get("NN_SCREENSHOTS")
        if folder:
            draw_on_pad(driver, 3, "mouse")
            driver.find_element(By.ID, "fool").click()
            wait.until(lambda d: note.text.startswith("Every pixel moved by"))
            driver.set_window_size(1300, 2000)
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(os.path.join(folder, "inside-wide.png"))
            driver.set_window_size(400, 2600)
            driver.execute_script("document.getElementById('inside').scrollIntoView()")
            driver.save_screenshot(os.path.join(folder, "inside-narrow.png"))


def test_in_a_real_browser_the_prediction_updates_while_the_pen_is_still_down(browser, mnist_model):
    # half a "1", the mouse button still held: the page has already asked and shows an
    # answer; the rest of the stroke and the release then give the final "1"
    from selenium.webdriver.common.actions.action_builder import ActionBuilder
    from selenium.webdriver.common.actions.pointer_input import PointerInput
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    with page_server(mnist_model) as port, headless_chromium() as driver:
        driver.get(f"http://127.0.0.1:{port}/")
        pad = driver.find_element(By.ID, "pad")
        prediction = driver.find_element(By.ID, "prediction")
        height = pad.size["height"]
        down = ActionBuilder(driver, mouse=PointerInput("mouse", "mouse"), duration=5)
        down.pointer_action.move_to(pad, 0, -height * 2 // 5).pointer_down()
        for y in range(-height * 2 // 5, 0, 10):
            down.pointer_action.move_to(pad, 0, y)
        down.perform()
        WebDriverWait(driver, 5).until(lambda d: prediction.text != "?", "no answer while drawing")
        up = ActionBuilder(driver, mouse=PointerInput("mouse", "mouse"), duration=5)
        for y in range(0, height * 2 // 5, 10):
            up.pointer_action.move_to(pad, 0, y)
        up.pointer_action.pointer_up()
        up.perform()
        WebDriverWait(driver, 5).until(lambda d: prediction.text == "1")


def test_in_a_real_browser_a_deep_network_shows_each_hidden_layer(browser):
    # a 784-32-24-16-10 network: the unit panel keeps the first layer's 32 units, a grid per
    # deeper layer (24 and 16 cells) lights up when a digit is drawn, and the bars of
    # weights out to the digits, which a deep network's first layer does not have, are gone
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    params = nn.init_params([784, 32, 24, 16, 10], np.random.default_rng(0))
    with page_server(params) as port, headless_chromium() as driver:
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 10)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#hidden div")) == 32)
        grids = driver.find_elements(By.CSS_SELECTOR, "#layers .units")
        assert [len(g.find_elements(By.TAG_NAME, "div")) for g in grids] == [24, 16]
        assert driver.find_element(By.ID, "deeper").is_displayed()
        assert not driver.find_element(By.ID, "outgoing").is_displayed()
        draw_on_pad(driver, 3, "mouse")
        lit = "#layers .units div:not([style*='rgb(0, 0, 0)'])"
        wait.until(lambda d: d.find_element(By.ID, "prediction").text != "?")
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, lit)) > 0)
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []


def test_in_a_real_browser_the_page_shows_the_network_learning(browser, mnist, tmp_path):
    # a real run watched in Chromium: #progress moves, #curves gain points, the templates'
    # pixels change between two moments, a digit drawn mid-training and again at the end
    # gets an answer both times, and #result shows the terminal's test accuracy; no console
    # error. With NN_SCREENSHOTS=DIR it saves the README's pictures there.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    process, lines = start_cli("--data", MNIST_NPZ, "--subset", 50000, "--epochs", 6,
                               "--batch-size", 32, "--serve", "--port", 0)  # epochs of ~0.5 s
    folder = os.environ.get("NN_SCREENSHOTS")
    try:
        port = url_port(lines)
        with headless_chromium() as driver:
            driver.set_window_size(1300, 3200)  # the templates on screen: they are fetched
            driver.get(f"http://127.0.0.1:{port}/")  # again while they are in view
            wait = WebDriverWait(driver, 30)
            status = driver.find_element(By.ID, "status")
            shown = lambda text: int((re.match(r"epoch (\d+) of", text) or [0, 0])[1])  # noqa: E731
            wait.until(lambda d: 1 <= shown(status.text) < 6)  # 1 unless the browser was slow
            if folder:
                driver.set_window_size(1300, 1200)
                driver.find_element(By.ID, "templates").screenshot(
                    os.path.join(folder, "templates-start.png"))
            templates = "return document.querySelector('#templates canvas').toDataURL()"
            points = ("return [...document.querySelectorAll('#curves polyline')].map("
                      "line => line.points.length).reduce((a, b) => a + b, 0)")
            first, text, dots = driver.execute_script(templates), status.text, \
                driver.execute_script(points)
            prediction = driver.find_element(By.ID, "prediction")
            draw_on_pad(driver, 3, "mouse")
            wait.until(lambda d: prediction.text in "0123456789" and prediction.text != "")
            wait.until(lambda d: shown(status.text) > shown(text))  # or later: drawing is slow
            if folder:
                driver.save_screenshot(os.path.join(folder, "live-epoch-2.png"))
                driver.find_element(By.ID, "templates").screenshot(
                    os.path.join(folder, "templates-epoch-1.png"))
            assert status.text != text
            assert driver.execute_script(points) > dots
            assert driver.execute_script(templates) != first
            wait.until(lambda d: d.find_element(By.ID, "result").is_displayed())
            out = lines + read_until(process, "test accuracy:")
            terminal = out[-1].strip()
            wait.until(lambda d: d.find_element(By.ID, "accuracy").text == terminal)
            driver.find_element(By.ID, "clear").click()
            wait.until(lambda d: prediction.text == "?")
            draw_on_pad(driver, 7, "pen")
            wait.until(lambda d: prediction.text == "7")
            assert len(driver.find_elements(By.CSS_SELECTOR, "#mistakes figure")) == 8
            assert len(driver.find_elements(By.CSS_SELECTOR, "#confusion td")) == 100
            if folder:
                driver.set_window_size(1300, 2800)
                driver.save_screenshot(os.path.join(folder, "live-end.png"))
                driver.find_element(By.ID, "templates").screenshot(
                    os.path.join(folder, "templates-end.png"))
                driver.set_window_size(400, 3400)
                driver.save_screenshot(os.path.join(folder, "live-phone.png"))
            errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
            assert errors == []
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)


def test_in_a_real_browser_the_lab_starts_runs_and_shows_them_side_by_side(browser, mnist):
    # a lesson's link fills the form and starts nothing; the form, filled from a #flags= link
    # and by hand, starts runs, and a bad flag is said beside it in the command line's words;
    # two runs get a row each, their curves on both charts and a legend entry each, which
    # hides and shows them; pointing at a point names its run and value; selecting a run
    # points the pad at its weights; no console error. With NN_SCREENSHOTS=DIR it saves
    # lab-phone.png there (400 pixels wide), and with NN_SCREENSHOTS_LESSON=1 too it runs
    # the lesson "why not zeros" at its full size and saves lab.png, the README's picture
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    lab = nn.Lab(nn.parse_args([]), (*nn.split_mnist(*mnist), "MNIST"))  # as --serve has it
    folder = os.environ.get("NN_SCREENSHOTS")
    with lab_server(lab) as port, headless_chromium() as driver:
        driver.set_window_size(1400, 1100)
        driver.get(f"http://127.0.0.1:{port}/#lesson=zeros")
        wait = WebDriverWait(driver, 60)
        field = lambda flag: driver.find_element(  # noqa: E731
            By.XPATH, f"//form[@id='settings']//label[span='{flag}']/*[2]")
        wait.until(lambda d: field("--init").get_attribute("value") == "zeros")
        assert "chosen" in driver.find_element(By.ID, "lesson-zeros").get_attribute("class")
        assert driver.find_element(By.ID, "compare-title").text == nn.LESSONS[0][1]
        assert request(port, "GET", "/runs")[1] == []  # nothing starts until a click
        driver.get(f"http://127.0.0.1:{port}/#lesson=dropout")
        driver.refresh()
        wait.until(lambda d: field("--hidden").get_attribute("value") == "800")
        assert [field(f).get_attribute("value") for f in ("--subset", "--epochs", "--augment",
                                                          "--init")] == ["1000", "200", "off", ""]
        driver.get(f"http://127.0.0.1:{port}/#flags=--subset%2020000%20--epochs%203")
        driver.refresh()
        wait.until(lambda d: field("--epochs").get_attribute("value") == "3")
        assert field("--init").get_attribute("value") == ""
        command = driver.find_element(By.ID, "command")
        assert command.text == "python nn_from_scratch.py --epochs 3 --subset 20000"
        driver.find_element(By.ID, "start").click()
        rows = lambda: driver.find_elements(By.CSS_SELECTOR, "#runs tr")  # noqa: E731
        wait.until(lambda d: len(rows()) == 1 and rows()[0].get_attribute("data-run-id") == "1")
        field("--epochs").clear()
        field("--epochs").send_keys("0")
        driver.find_element(By.ID, "start").click()
        error = driver.find_element(By.ID, "settings-error")
        wait.until(lambda d: error.is_displayed())
        assert error.text == ("nn_from_scratch.py: error: --epochs must be a whole number >= 1 "
                              "(got 0) (see --help)")
        field("--epochs").clear()
        field("--epochs").send_keys("3")
        field("--init").send_keys("zeros")
        assert command.text == "python nn_from_scratch.py --init zeros --epochs 3 --subset 20000"
        driver.find_element(By.ID, "start").click()
        wait.until(lambda d: [r.get_attribute("data-state") for r in rows()] == ["done", "done"])
        assert not error.is_displayed()
        assert "2: --init zeros --epochs 3 --subset 20000" in rows()[1].text
        polylines = lambda chart: len(driver.find_elements(  # noqa: E731
            By.CSS_SELECTOR, f"#{chart} polyline"))
        wait.until(lambda d: polylines("compare-loss") == 2 and polylines("compare-acc") == 2)
        legend = driver.find_elements(By.CSS_SELECTOR, "#legend button")
        assert [b.text for b in legend] == ["1: --epochs 3 --subset 20000",
                                            "2: --init zeros --epochs 3 --subset 20000"]
        legend[0].click()
        assert polylines("compare-loss") == 1 and "off" in legend[0].get_attribute("class")
        legend[0].click()
        assert polylines("compare-loss") == 2
        point = driver.find_elements(By.CSS_SELECTOR, "#compare-acc circle[r='3']")[2]  # run 1's
        ActionChains(driver).move_to_element(point).perform()
        hover = driver.find_element(By.CSS_SELECTOR, "#compare-acc .hover text")
        accuracy = 100 * lab.runs[1].live.history[-1]["val_acc"]
        wait.until(lambda d: hover.text == f"1: --epochs 3 --subset 20000: {accuracy:g}% at "
                                           "epoch 3", f"hover says {hover.text!r}")
        prediction = driver.find_element(By.ID, "prediction")
        draw_on_pad(driver, 3, "mouse")  # read by the newest run, the all-zero one
        wait.until(lambda d: prediction.text not in ("?", ""))
        zeros = prediction.text
        rows()[0].click()  # run 1 now reads it
        wait.until(lambda d: prediction.text == "3", f"run 1 reads {prediction.text}")
        assert zeros != "3" and "selected" in rows()[0].get_attribute("class")
        assert driver.find_element(By.ID, "training-title").text.startswith("Run 1:")
        errors = [entry["message"] for entry in driver.get_log("browser")
                  if entry["level"] == "SEVERE"]
        assert errors == [f"http://127.0.0.1:{port}/runs - Failed to load resource: the server "
                          "responded with a status of 400 (Bad Request)"]  # --epochs 0's
        if folder:
            driver.set_window_size(400, 3000)
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(os.path.join(folder, "lab-phone.png"))
        if folder and os.environ.get("NN_SCREENSHOTS_LESSON"):
            driver.set_window_size(1400, 1200)
            for button in driver.find_elements(By.CSS_SELECTOR, "#runs button"):
                button.click()  # remove both
            wait.until(lambda d: rows() == [])
            driver.execute_script("fillForm('')")
            driver.find_element(By.CSS_SELECTOR, "#lesson-zeros button").click()
            WebDriverWait(driver, 300).until(lambda d: [r.get_attribute("data-state")
                                                        for r in rows()] == ["done"] * 3)
            time.sleep(1)
            driver.set_window_size(1400, 1480)
            driver.execute_script("window.scrollTo(0, 0)")
            driver.save_screenshot(os.path.join(folder, "lab.png"))
            for key in ("zeros", "mse", "dropout"):  # each lesson's charts, for its picture
                if key != "zeros":
                    for button in driver.find_elements(By.CSS_SELECTOR, "#runs button"):
                        button.click()
                    wait.until(lambda d: rows() == [])
                    driver.find_element(By.CSS_SELECTOR, f"#lesson-{key} button").click()
                    runs = len(dict((k, r) for k, _, r in nn.LESSONS)[key])
                    WebDriverWait(driver, 300).until(lambda d: [r.get_attribute(
                        "data-state") for r in rows()] == ["done"] * runs)
                    time.sleep(1)
                driver.find_element(By.ID, "compare").screenshot(
                    os.path.join(folder, f"lesson-{key}.png"))


# ----------------------------------------------------------------------------
# The notebook: run in a real Jupyter kernel, alone and beside the file, and committed with
# the outputs of its code as it is

NOTEBOOK = HERE / "nn_from_scratch.ipynb"


def notebook_tools():
    """tools/notebook.py, and nbformat for reading notebooks, once nbclient, ipykernel and
    matplotlib (which the notebook draws with) are known to be here; else skipped, saying so."""
    for module in ("nbclient", "nbformat", "ipykernel", "matplotlib"):
        optional(module, "pip install nbclient nbformat ipykernel matplotlib")
    import nbformat
    return load_tool("tools/notebook.py"), nbformat


def load_tool(path):
    """A script of tools/ or benchmarks/, imported as a module."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, HERE / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outputs_text(cell):
    """What a code cell printed, as one string (in a notebook's JSON, a list of lines)."""
    return "".join("".join(out.get("text", "")) for out in cell.get("outputs", []))


@pytest.mark.parametrize("module", ["nbclient", "ipykernel", "matplotlib"])
def test_without_jupyter_or_matplotlib_the_notebooks_tests_skip_saying_so(module, monkeypatch):
    # a missing nbclient, ipykernel or matplotlib skips a notebook test with how to install
    # it, instead of an ImportError; where CI is set, it fails instead
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delenv("CI", raising=False)
    reason = f"{module} is not installed (pip install nbclient nbformat ipykernel matplotlib)"
    with pytest.raises(pytest.skip.Exception, match=re.escape(reason)):
        notebook_tools()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=re.escape(reason)):
        notebook_tools()


def test_the_committed_notebook_carries_the_outputs_of_its_code_as_it_is():
    # the code cells hash to what tools/notebook.py recorded when it ran them, every code
    # cell has run, in order, without an error, and the pictures are there: the post's (a
    # digit, ReLU) and those it never reached (the loss curve, the confusion matrix, the
    # mistakes, the weights). Reads the JSON itself: needs no Jupyter
    notebook = json.loads(NOTEBOOK.read_text())
    code_hash = load_tool("tools/notebook.py").code_hash
    assert notebook["metadata"]["nn_from_scratch"]["code_hash"] == code_hash(notebook), \
        "a code cell changed after the outputs were made: run python tools/notebook.py"
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1))
    outputs = [out for c in cells for out in c["outputs"]]
    assert not [out for out in outputs if out["output_type"] == "error"]
    assert sum("image/png" in out.get("data", {}) for out in outputs) >= 6
    assert "bit for bit" in "".join(map(outputs_text, cells))  # made beside the file


def run_notebook(folder, cells=None):
    """Copy the notebook into folder and run it there in a fresh kernel (its first `cells`
    cells, or all), with MNIST wherever $SCIKIT_LEARN_DATA says; the executed notebook."""
    tool, nbformat = notebook_tools()
    shutil.copyfile(NOTEBOOK, folder / NOTEBOOK.name)
    notebook = nbformat.read(folder / NOTEBOOK.name, as_version=4)
    return tool.run(notebook, str(folder), cells)


def test_the_notebook_runs_alone_in_an_empty_folder_to_975_percent(mnist_home, tmp_path,
                                                                    monkeypatch):
    # top to bottom in a fresh Jupyter kernel, with nothing beside it and MNIST where the
    # file caches it: its own asserts hold (the gradient check, 97.5% on the test images),
    # the drift cell says there is no file to compare with, and the training loop's figure
    # was redrawn in place (one picture, the last epoch's)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(mnist_home))
    notebook = run_notebook(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [NOTEBOOK.name]
    text = "".join(outputs_text(c) for c in notebook.cells if c.cell_type == "code")
    assert "gradient check passed" in text and "nothing to compare with" in text
    assert float(re.search(r"test accuracy: ([\d.]+)%", text)[1]) >= 97.5
    loop = next(c for c in notebook.cells if "shown.update(figure)" in c.source)
    assert [out.output_type for out in loop.outputs] == ["display_data"]
    assert "epoch 10 of 10" not in outputs_text(loop)  # said in the picture, not printed


def test_the_notebooks_drift_cell_fails_when_the_files_backward_pass_changes(mnist_home,
                                                                            tmp_path,
                                                                            monkeypatch):
    # beside nn_from_scratch.py the drift cell finds the file's forward pass, gradients and
    # update equal to the notebook's, bit for bit; with one bias gradient changed by a part
    # in a million, it fails, naming it
    from nbclient.exceptions import CellExecutionError
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(mnist_home))
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    drift = next(i for i, c in enumerate(cells) if "drift" in c["metadata"].get("tags", []))
    source = (HERE / "nn_from_scratch.py").read_text()
    for folder, changed in [(tmp_path / "same", source), (tmp_path / "changed", source.replace(
            'grads[f"b{l}"] = dZ.sum(axis=0)', 'grads[f"b{l}"] = dZ.sum(axis=0) * (1 + 1e-6)'))]:
        folder.mkdir()
        (folder / "nn_from_scratch.py").write_text(changed)
        if changed == source:
            notebook = run_notebook(folder, drift + 1)
            assert "bit for bit" in outputs_text(notebook.cells[drift])
        else:
            with pytest.raises(CellExecutionError, match="the gradients differ: b1, b2"):
                run_notebook(folder, drift + 1)


def test_the_notebook_reads_mnist_from_openml_where_the_file_has_cached_nothing(tmp_path,
                                                                               monkeypatch):
    # the data cell, in a data folder holding fetch_openml's download and no cache of the
    # file's: it reads MNIST through fetch_openml, 70,000 images of 784 pixels, text labels
    copy_openml_download(tmp_path / "data")
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "data"))
    (tmp_path / "run").mkdir()
    notebook = run_notebook(tmp_path / "run", 4)
    assert "(70000, 784) float64 pixels from 0.0 to 255.0 | the first labels: ['5' '0' '4'" in \
        outputs_text(notebook.cells[3])


def test_the_notebooks_last_cell_calls_the_file_as_it_is():
    # every nn.name(...) call that the notebook's last cell points to names a function of the
    # file, with arguments its signature takes
    last = "".join(json.loads(NOTEBOOK.read_text())["cells"][-1]["source"])
    block = re.search(r"```python\n(.*?)```", last, re.S)[1]
    calls = [node for node in ast.walk(ast.parse(block)) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "nn"]
    assert {c.func.attr for c in calls} >= {"train", "predict", "accuracy", "gradient_check", "main"}
    for call in calls:
        inspect.signature(getattr(nn, call.func.attr)).bind(
            *call.args, **{k.arg: k.value for k in call.keywords})
    assert nn.parse_args(["--serve"]).serve


# ----------------------------------------------------------------------------
# The README and docs/: what they show runs, and what they link to is there

DOCS = [HERE / "README.md", *sorted((HERE / "docs").glob("*.md"))]


def python_examples():
    """Every fenced python block of README.md and docs/*.md that starts with its imports, as
    a pytest param named file:line. The walk-through's fragments (Z1 = X @ ...) do not."""
    examples = []
    for path in DOCS:
        text = path.read_text()
        for block in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
            if re.match(r"(import|from) ", block[1]):
                line = text.count("\n", 0, block.start()) + 1
                examples.append(pytest.param(block[1], id=f"{path.name}:{line}"))
    return examples


def test_the_readme_and_docs_have_their_library_and_api_examples_to_run():
    # the test below has something to run: the README's library example and docs/page.md's
    # POST /predict and lab scripts are found
    found = [(p.id.split(":")[0], p.values[0]) for p in python_examples()]
    assert any(file == "README.md" and "nn.train(" in code for file, code in found)
    assert any(file == "page.md" and "/predict" in code for file, code in found)
    assert any(file == "page.md" and "/runs" in code for file, code in found)


@pytest.mark.parametrize("code", python_examples())
def test_every_complete_python_example_in_the_readme_and_docs_runs_as_shown(code, mnist_home,
                                                                           mnist, mnist_model,
                                                                           tmp_path):
    # pasted into a fresh Python with MNIST cached, each example runs without a warning or an
    # error and prints what the text beside it says: the notebook two test accuracies, the
    # API example the "1" it sends (to a real server of trained weights; only the port is
    # changed, to the free one the server got), the lab's script Adam at 0.2 well behind
    # Adam at its own rate (to a lab on MNIST), the stroke-width measurement 0.100
    env = os.environ | {"SCIKIT_LEARN_DATA": str(mnist_home), "PYTHONPATH": str(HERE)}
    with contextlib.ExitStack() as stack:
        if "127.0.0.1:8000" in code:
            lab = nn.Lab(nn.parse_args([]), (*nn.split_mnist(*mnist), "MNIST"))
            port = stack.enter_context(lab_server(lab) if "/runs" in code
                                       else page_server(mnist_model))
            code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        run = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    if "/runs" in code:
        lines = [line.rsplit(" ", 2) for line in run.stdout.splitlines()]
        assert [(name, state) for name, state, _ in lines] == [
            ("--epochs 5 --lr 0.2 --optimizer adam", "done"), ("--epochs 5 --optimizer adam", "done")]
        assert float(lines[0][2]) < float(lines[1][2]) - 0.02, lines  # 0.2 is SGD's rate
    elif "urlopen" in code:
        label, probability = run.stdout.split()
        assert label == "1" and float(probability) > 0.5
    elif "stroke_width" in code:
        assert run.stdout == "0.100\n"
    else:
        assert "nn.train(" in code, "a new example: say here what it prints"
        accuracies = [float(line) for line in run.stdout.splitlines()
                      if re.fullmatch(r"0\.\d+", line)]
        assert len(accuracies) == 2 and min(accuracies) > 0.95, run.stdout


def github_anchor(heading):
    """The #fragment GitHub gives a Markdown heading: lower case, punctuation dropped."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_every_link_between_the_readme_and_docs_leads_somewhere():
    # each relative link and image in README.md and docs/*.md names a file that exists and,
    # after a #, a heading of that file
    broken = []
    for path in DOCS:
        text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)  # not code
        for target in re.findall(r"\]\(([^)\s]+)\)|src=\"([^\"]+)\"", text):
            target = target[0] or target[1]
            if re.match(r"https?:", target):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                broken.append(f"{path.name}: {target}")
            elif anchor:
                headings = re.findall(r"^#+ (.*)$", re.sub(r"^```.*?^```", "", linked.read_text(),
                                                          flags=re.S | re.M), re.M)
                if anchor not in map(github_anchor, headings):
                    broken.append(f"{path.name}: {target}")
    assert broken == []


def test_ci_runs_the_readmes_two_commands_as_a_user_would():
    # .ci/run ends with the README's two commands, as written and in order, so that CI tests
    # what a reader runs; it runs them in a fresh home folder, without $NN_SHARED_DATA, so
    # that the tests find MNIST only where the first command put it
    readme = (HERE / "README.md").read_text()
    commands = re.findall(r"^(pip install -r requirements.txt && python [^#\n]*?)\s*#", readme,
                          re.M)
    assert commands == ["pip install -r requirements.txt && python nn_from_scratch.py",
                        "pip install -r requirements.txt && python -m pytest -q test_nn.py"]
    lines = (HERE / ".ci" / "run").read_text().strip().splitlines()
    assert lines[-2:] == commands
    assert "unset NN_SHARED_DATA SCIKIT_LEARN_DATA" in lines and 'HOME="$(mktemp -d)"' in \
        "\n".join(lines) and "export HOME" in lines