"""The command line as a user runs it: its flags and their checks, the data it reads
(MNIST's cache, .npz, IDX and CSV files), weights on disk, bad input, faults and Ctrl-C."""

import gzip
import json
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import nn_from_scratch as nn
from helpers import ROOT, copy_openml_download, draw, fake_mnist, run_cli, small_mnist_like
from test_nn import digits, run_main, tiny_problem

pytestmark = pytest.mark.filterwarnings("error")  # any warning fails its test


def deep_weights_file(tmp_path, change):
    params = nn.init_params([12, 7, 5, 4], np.random.default_rng(0))
    arrays = {**nn.arrays(params), "sizes": np.array([12, 7, 5, 4]), "activation": np.array("tanh")}
    change(arrays)
    np.savez(tmp_path / "deep.npz", **arrays)
    return tmp_path / "deep.npz"


def no_network(monkeypatch):
    """Make every download fail the way it fails offline, without reaching for the network."""
    from urllib.error import URLError

    import sklearn.datasets._openml as openml

    def offline(*args, **kwargs):
        raise URLError("simulated: no network")
    monkeypatch.setattr(openml, "urlopen", offline)
    monkeypatch.setattr(openml.time, "sleep", lambda s: None)  # skip the retry delays


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


def train_spy(monkeypatch):
    """Replace nn.train with one that records the arguments each call gets, then trains."""
    calls, real_train = [], nn.train
    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_train(*args, **kwargs)
    monkeypatch.setattr(nn, "train", spy)
    return calls


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
                       "(train): y must hold one label per row of X: X has 50 rows, y has shape (49,)"),
    "X and y of different lengths": (lambda p: write_npz(p / "d.npz", X=np.zeros((2000, 784)),
                                                         y=np.zeros(1500, int)),
                                     "X holds 2,000 images and y 1,500 labels"),
    "labels of shape (n, 3)": (lambda p: write_npz(p / "d.npz", X=good_xy()[0],
                                                   y=np.zeros((100, 3), int)),
                               "X has 80 rows, y has shape (80, 3)"),
    "label 10": (lambda p: write_npz(p / "d.npz", X=good_xy()[0], y=np.full(100, 10)),
                 "y must hold integer labels from 0 to 9"),
    "label 1.5": (lambda p: write_npz(p / "d.npz", X=good_xy()[0], y=np.full(100, 1.5)),
                  "y must hold integer labels from 0 to 9"),
    "label 'cat'": (lambda p: write_npz(p / "d.npz", X=good_xy()[0], y=np.full(100, "cat")),
                    "y must hold the labels 0 to 9; got 'cat'"),
    "text pixels": (lambda p: write_npz(p / "d.npz", X=np.full((100, 784), "x"),
                                        y=good_xy()[1]), "X must be a 2-D array of pixels, numbers 0..255 or 0..1, one row per example; got <U1"),
    "complex pixels": (lambda p: write_npz(p / "d.npz", X=good_xy()[0] * 1j, y=good_xy()[1]),
                       "X must be a 2-D array of pixels, numbers 0..255 or 0..1, one row per example; got complex128"),
    "nan pixel": (lambda p: write_npz(p / "d.npz", X=np.where(np.eye(100, 784), np.nan, 0),
                                      y=good_xy()[1]), "(train): X holds pixels from nan to nan"),
    "pixel 256": (lambda p: write_npz(p / "d.npz", X=good_xy()[0] + 1, y=good_xy()[1]),
                  "X holds pixels from 1 to 256: pass them as 0..255 or as 0..1 (not standardised to mean 0, nor 16-bit)"),
    "standardised pixels": (lambda p: write_npz(p / "d.npz", X=good_xy()[0] / 255 - 0.5,
                                                y=good_xy()[1]),
                            "X holds pixels from -0.5 to 0.5: pass them as 0..255 or as 0..1"),
    "empty CSV": (lambda p: csv_folder(p, ""), "mnist_train.csv: empty"),
    "ragged CSV": (lambda p: csv_folder(p, ROW * 3 + "3" + ",0" * 700 + "\n" + ROW),
                   "mnist_train.csv: line 4 has 701 values, the first row 785"),
    "text in CSV": (lambda p: csv_folder(p, "label" + ",px" * 784 + "\n" + ROW * 2 +
                                         "3,x" + ",0" * 783 + "\n"),
                    "mnist_train.csv: line 4 holds something that is not a number"),
}


def weights_file(tmp_path, change):
    params, *_ = tiny_problem()
    arrays = {**nn.arrays(params), "sizes": np.array([12, 7, 4])}
    change(arrays)
    path = tmp_path / "m.npz"
    np.savez(path, **arrays)
    return path


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


def test_a_deep_tanh_network_saves_loads_and_shows_its_mistakes(tmp_path, capsys):
    # --save keeps every layer and the activation, and --load evaluates the same network:
    # the same test accuracy (a file read back as ReLU would score otherwise)
    model = tmp_path / "deep.npz"
    code, out, err = run_main(["--dataset", "digits", "--epochs", 5, "--hidden", 32, 16,
                               "--activation", "tanh", "--save", model], capsys)
    assert code == 0, err
    trained = out.splitlines()[-1]
    params = nn.load_params(model)
    assert list(params) == ["activation", "W1", "b1", "W2", "b2", "W3", "b3"]
    assert params["activation"] == "tanh"
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
    nn.save_params(tmp_path / "m.npz", params)
    image = 255 * draw(7, pen=8)
    np.save(tmp_path / "seven.npy", image)
    code, out, err = run_main(["--load", tmp_path / "m.npz", "--predict",
                               tmp_path / "seven.npy"], capsys)
    p = nn.predict_proba(params, nn.mnist_style(image)[None])[0]
    assert code == 0 and f"seven.npy: {p.argmax()}" in out and nn.top_classes(p) in out


def test_weights_saved_before_networks_had_depth_still_load(tmp_path):
    # what --save wrote before: W1, b1, W2, b2 and sizes, no activation; read as ReLU
    params, *_ = tiny_problem()
    np.savez(tmp_path / "old.npz", **nn.arrays(params), sizes=np.array([12, 7, 4]),
             settings=np.array(json.dumps({"hidden": 7})))
    loaded = nn.load_params(tmp_path / "old.npz")
    assert list(loaded) == ["activation", "W1", "b1", "W2", "b2"]
    assert loaded["activation"] == "relu"
    assert all(np.array_equal(loaded[key], params[key]) for key in nn.arrays(params))


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


def test_dtype_flag_trains_in_float64(capsys, monkeypatch):
    calls = train_spy(monkeypatch)
    code, out, err = run_main(["--dataset", "digits", "--epochs", 1, "--dtype", "float64"],
                              capsys)
    assert code == 0, err
    assert calls[-1]["dtype"] == "float64" and ", float64" in out.splitlines()[1]


def test_gradcheck_on_the_command_line_takes_the_loss_and_dropout(capsys):
    code, out, err = run_main(["--gradcheck", "--hidden", 7, 5, "--activation", "tanh",
                               "--loss", "mse", "--dropout", 0.3], capsys)
    assert code == 0 and out.startswith("gradient check: network 20-7-5-10, tanh, mse, "
                                        "dropout 0.3 (one fixed mask), float64")
    assert sum(line.endswith("pass") for line in out.splitlines()) == 7  # and X


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
    np.savez(tmp_path / "old.npz", **nn.arrays(params), sizes=np.array([64, 128, 10]),
             activation=np.array("relu"), settings=np.array(json.dumps(old)))
    loaded = nn.load_params(tmp_path / "old.npz")
    assert loaded["activation"] == "relu" and np.array_equal(nn.predict(loaded, X_test),
                                                   nn.predict(params, X_test))
    code, out, err = run_main(["--dataset", "digits", "--load", tmp_path / "old.npz"], capsys)
    assert code == 0, err
    run_main(["--dataset", "digits", "--epochs", 1, "--dropout", 0.2, "--loss", "mse",
              "--init", "glorot", "--save", tmp_path / "new.npz"], capsys)
    with np.load(tmp_path / "new.npz") as f:
        settings = json.loads(str(f["settings"]))
    assert (settings["init"], settings["loss"], settings["dropout"]) == ("glorot", "mse", 0.2)


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


def test_save_and_load_round_trip(tmp_path):
    # every array comes back bit for bit, with its dtype, and predicts the same
    params, X, y, Y = tiny_problem(dtype=np.float32)
    nn.save_params(tmp_path / "model.npz", params)
    loaded = nn.load_params(tmp_path / "model.npz")
    assert loaded.keys() == params.keys() and loaded["activation"] == "relu"
    for key in nn.arrays(params):
        assert loaded[key].dtype == params[key].dtype
        assert np.array_equal(loaded[key], params[key])
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]  # no temporary file left


def test_importing_the_script_does_nothing_but_define(tmp_path):
    # no output, no training, and no scikit-learn import (it alone takes ~1 s)
    code = "import sys, nn_from_scratch; print('sklearn' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
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
    (["--dropout", 1], "--dropout", ">= 0 and < 1, the share of hidden units dropped (got 1.0)"),
    (["--dropout", -0.1], "--dropout", ">= 0 and < 1, the share of hidden units dropped (got -0.1)"),
    (["--dropout", "nan"], "--dropout", ">= 0 and < 1, the share of hidden units dropped (got nan)"),
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
    _, history = nn.train(X[:50], y[:50], epochs=1, schedule="constant", log=None)
    assert history[0]["lr"] == 0.2  # all 50 images in one batch, as unset: no noise


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


def test_shifted_batches_are_the_default_for_28x28_images_in_train_and_on_the_command_line(
        tmp_path, capsys, monkeypatch):
    # AUGMENT was chosen on MNIST: the command line and train() alike shift the batches of
    # 28x28 images unless told not to, and never those of other sizes (8x8 digits)
    X = np.zeros((2000, 784), dtype=np.uint8)
    rng = np.random.default_rng(0)
    X[:, rng.integers(0, 784, 50)] = 255
    y = (np.arange(2000) % 10).astype(np.uint8)
    np.savez(tmp_path / "other.npz", X=X, y=y)
    calls = train_spy(monkeypatch)
    common = ["--subset", 500, "--epochs", 1, "--hidden", 8]
    code, out, err = run_main(["--data", tmp_path / "other.npz", *common], capsys)
    assert code == 0, err
    assert calls[-1]["augment"] is True and "batches shifted by up to 1 pixel" in out
    run_main(["--data", tmp_path / "other.npz", "--no-augment", *common], capsys)
    assert calls[-1]["augment"] is False
    run_main(["--dataset", "digits", "--epochs", 1], capsys)
    assert calls[-1]["augment"] is False
    shifts = []
    monkeypatch.setattr(nn, "shift_images", lambda X, rng: shifts.append(len(X)) or X)
    nn.train(X, y, epochs=1, log=None)
    assert shifts == [256] * 7 + [2000 - 7 * 256]
    shifts.clear()
    nn.train(*digits(), epochs=1, log=None)
    nn.train(X, y, epochs=1, augment=False, log=None)
    assert shifts == []


def test_save_to_a_folder_that_does_not_exist_is_refused_before_training(tmp_path, capsys):
    code, out, err = run_main(["--dataset", "digits", "--save", tmp_path / "no" / "m.npz"],
                              capsys)
    assert code == 2 and "--save" in err and out == ""


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
    (lambda X, y: nn.train(X * 1j, y), "X must be a 2-D array of pixels, numbers 0..255 or 0..1, one row per example; got complex"),
    (lambda X, y: nn.train(X / 255 - 0.5, y), "X holds pixels from -0.5 to 0.5: pass them as 0..255 or "
     "as 0..1 (not standardised to mean 0, nor 16-bit)"),
    (lambda X, y: nn.train(X * 256.0, y), "X holds pixels from 0 to 65280: pass them"),
    (lambda X, y: nn.predict_proba(nn.init_params([64, 8, 10], np.random.default_rng(0)),
                                   np.where(X > 100, np.nan, X / 255)), "from nan to nan"),
    (lambda X, y: nn.train(X, y[:-1]), "X has 40 rows, y has shape (39,)"),
    (lambda X, y: nn.train(X, np.zeros((40, 3))), "y must hold one label per row of X"),
    (lambda X, y: nn.train(X, np.full(40, "cat")), "y must hold the labels 0 to 9; got 'cat'"),
    (lambda X, y: nn.train(X, y, optimizer="adamw"), "optimizer must be one of sgd, momentum, "
     "adam; got 'adamw'"),
    (lambda X, y: nn.train(X, y, schedule="linear"), "schedule must be one of cosine, step, "
     "constant; got 'linear'"),
    (lambda X, y: nn.train(X, y, epochs=0), "epochs must be a whole number >= 1 (got 0)"),
    (lambda X, y: nn.train(X, y, batch_size=41), "batch_size must be from 1 to 40, the number "
     "of training images (got 41)"),
    (lambda X, y: nn.train(X, y, momentum=1.0), "momentum must be >= 0 and < 1 (got 1.0)"),
    (lambda X, y: nn.train(X, y, learning_rate=0.1), "train() has no setting learning_rate; it "
     "takes hidden, activation"),
    (lambda X, y: nn.train(X, y + 10), "integer labels from 0 to 9"),
    (lambda X, y: nn.train(X, y + 0.5), "integer labels from 0 to 9"),
    (lambda X, y: nn.train(X[:0], y[:0]), "no examples"),
    (lambda X, y: nn.train(X, y, X[:, :10], y), "X has 10 features per row; the weights take 64"),
    (lambda X, y: nn.predict(nn.init_params([784, 8, 10], np.random.default_rng(0)), X),
     "X has 64 features per row; the weights take 784"),
    (lambda X, y: nn.predict(nn.init_params([64, 8, 10], np.random.default_rng(0)), X[0]),
     "X must be a 2-D array"),
])
def test_library_functions_say_what_is_wrong_in_a_value_error(call, message):
    X, y = digits()
    with pytest.raises((ValueError, TypeError)) as e:
        call(X[:40], y[:40])
    assert message in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("unusual", [
    lambda X, y: (X.astype(np.int64), y),               # pixels as another integer type
    lambda X, y: (X.astype(np.float64), y),             # raw pixels as floats, fetch_openml's
    lambda X, y: (X.reshape(-1, 8, 8), y),              # images, not rows
    lambda X, y: (X, nn.one_hot(y)),                    # one-hot labels
    lambda X, y: (X, y.astype(str).astype(object)),     # text labels, fetch_openml's
    lambda X, y: (X, y.astype(np.float64)),             # whole numbers as floats
    lambda X, y: (list(X), list(y)),                    # lists
])
def test_unusual_data_trains_exactly_as_the_usual_does(unusual):
    # input that is merely unusual is taken as meant: the same weights, bit for bit, as from
    # uint8 pixels and integer labels (train() and the command line's data files share this)
    X, y = digits()
    usual, _ = nn.train(X[:300], y[:300], hidden=16, epochs=2, log=None)
    params, _ = nn.train(*unusual(X[:300], y[:300]), hidden=16, epochs=2, log=None)
    assert all(np.array_equal(usual[key], params[key]) for key in nn.arrays(usual))


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
    assert all(np.all(np.isfinite(P)) for P in nn.arrays(params).values())


def test_ctrl_c_evaluates_saves_and_exits_130(tmp_path):
    # a real SIGINT to a real run: it finishes the batch, evaluates, saves, exits 130
    import signal
    model = tmp_path / "model.npz"
    proc = subprocess.Popen([sys.executable, str(ROOT / "nn_from_scratch.py"), "--dataset",
                             "digits", "--epochs", "100000", "--save", str(model)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if line.startswith("epoch"):
                proc.send_signal(signal.SIGINT)
                break
        out, err = proc.communicate(timeout=60)
    finally:  # a run that ignored Ctrl-C would train on after the test: it is stopped
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    assert err == ""
    lines = out.splitlines()
    assert any(re.fullmatch(r"interrupted in epoch \d+ after batch \d of 6", l) for l in lines)
    assert "evaluating the weights learned so far" in lines
    assert f"saved weights to {model}" in lines and lines[-1].startswith("test accuracy: ")
    assert nn.load_params(model)["W1"].shape == (64, 128)


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
        nn.save_params(tmp_path / "m.npz", {**params, "W1": 2 * params["W1"]})
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
