"""The convolutional network from the command line: its flags and their bad values, saving
and loading, every way of looking inside, digits moved off centre, and its accuracy."""

import json
import re

import numpy as np
import pytest

import nn_from_scratch as nn
from test_nn import run_main

pytestmark = pytest.mark.filterwarnings("error")  # any warning fails its test


@pytest.mark.parametrize("flags, says", [
    (["--conv", "0"], "--conv must be a whole number >= 1 for each conv layer's channels"),
    (["--conv", "8", "-2"], "--conv must be a whole number >= 1"),
    (["--conv", "300"], "--conv channels must be from 1 to 256"),
    (["--conv", "2", "2", "2", "2", "--dataset", "digits"],
     "layer 4's 2x2 pooling cannot halve 1x1 maps: give at most 3 channel counts"),
    (["--gradcheck", "--conv", "2", "2", "2", "2"], "cannot halve 1x1 maps"),
])
def test_a_bad_conv_flag_is_one_line_and_exit_2(capsys, flags, says):
    code, out, err = run_main(flags, capsys)
    assert code == 2 and says in err and len(err.strip().splitlines()) == 1, err


def test_conv_layers_on_images_that_are_not_square_are_refused():
    # rows of 30 pixels are no square image (the data files take 28x28 images only, so this
    # is the library's case): one line, before any training
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="rows of 30 pixels are not square: leave out conv"):
        nn.train(rng.random((20, 30)), np.arange(20) % 10, conv=[4], log=None)
    with pytest.raises(ValueError, match="conv must be a whole number >= 1"):
        nn.train(rng.random((20, 64)), np.arange(20) % 10, conv=(4, 0), log=None)
    with pytest.raises(ValueError, match="layer 3's 2x2 pooling cannot halve 7x7 maps"):
        nn.train(rng.random((20, 784)), np.arange(20) % 10, conv=(2, 2, 2), log=None)


def test_a_saved_conv_network_loads_as_one_and_a_broken_one_says_what_is_wrong(tmp_path,
                                                                               capsys):
    X_train, y_train, X_test, y_test, _ = nn.load_digits_data(seed=0)
    params, _ = nn.train(X_train, y_train, conv=8, hidden=32, epochs=3, log=None)
    path = tmp_path / "conv.npz"
    nn.save_params(path, params)
    loaded = nn.load_params(path)
    assert list(nn.arrays(loaded)) == ["K1", "k1", "W1", "b1", "W2", "b2"]
    assert np.array_equal(nn.predict_proba(loaded, X_test), nn.predict_proba(params, X_test))
    stored = dict(np.load(path))
    for change, says in [(lambda d: d.pop("k1"), "conv layer 1: K1 and k1 must be 3x3 kernels"),
                         (lambda d: d.update(K1=d["K1"][:, :2]), "conv layer 1"),
                         (lambda d: d.update(K1=d["K1"][:4], k1=d["k1"][:4]),
                          "W1 takes 128 inputs, not the 4 square maps")]:
        broken = dict(stored)
        change(broken)
        np.savez(tmp_path / "broken.npz", **broken)
        with pytest.raises(nn.DataError, match=re.escape(says)):
            nn.load_params(tmp_path / "broken.npz")
        code, out, err = run_main(["--load", str(tmp_path / "broken.npz"), "--dataset",
                                   "digits"], capsys)
        assert code == 1 and says in err and len(err.strip().splitlines()) == 1


def test_move_images_moves_each_image_and_blanks_what_it_uncovers():
    X = np.arange(1, 37, dtype=np.float32).reshape(1, 36)               # one 6x6 image
    image = X.reshape(6, 6)
    for dy, dx in [(0, 0), (2, 0), (-1, 0), (0, 3), (0, -2), (1, -1), (-3, 4)]:
        moved = nn.move_images(X, dy, dx).reshape(6, 6)
        expected = np.zeros((6, 6), np.float32)
        ys, xs = slice(max(dy, 0), 6 + min(dy, 0)), slice(max(dx, 0), 6 + min(dx, 0))
        expected[ys, xs] = image[max(-dy, 0):6 + min(-dy, 0), max(-dx, 0):6 + min(-dx, 0)]
        assert np.array_equal(moved, expected), (dy, dx)


def test_the_moved_accuracy_is_the_mean_over_four_directions():
    X_train, y_train, X_test, y_test, _ = nn.load_digits_data(seed=0)
    params, _ = nn.train(X_train, y_train, hidden=32, epochs=10, log=None)
    four = [nn.accuracy(nn.predict(params, nn.move_images(X_test, dy, dx)), y_test)
            for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1))]
    assert nn.moved_accuracy(params, X_test, y_test, 1) == pytest.approx(np.mean(four))
    assert nn.moved_accuracy(params, X_test, y_test, 0) == \
        nn.accuracy(nn.predict(params, X_test), y_test)
    assert nn.moved_accuracy(params, X_test, y_test, 3) < nn.moved_accuracy(params, X_test,
                                                                              y_test, 0)


def test_the_conv_gradient_check_from_the_command_line(capsys):
    code, out, err = run_main(["--gradcheck", "--conv", "2", "3", "--hidden", "5"], capsys)
    assert code == 0 and "network conv 2-3 on 8x8 images, 12-5-10, relu" in out
    rows = re.findall(r"^(\w+) +(\(.*?\)) .* (pass|FAIL)$", out, re.M)
    assert [name for name, _, _ in rows] == ["K1", "k1", "K2", "k2", "W1", "b1", "W2", "b2",
                                             "X"]
    assert rows[2][1] == "(3, 3, 3, 2)" and all(result == "pass" for *_, result in rows)


def test_a_conv_network_goes_everywhere_an_mlp_goes(mnist, mnist_home, tmp_path, capsys):
    # trained on MNIST, saved, moved digits, attacked, dreamt, its mistakes drawn, logged;
    # then loaded again: the same test accuracy, and it reads a digit of one's own
    model, log = tmp_path / "conv.npz", tmp_path / "run.json"
    home = ["--data-home", str(mnist_home)]
    code, out, err = run_main([*home, "--conv", "4", "8", "--hidden", "32", "--subset", "5000",
                               "--epochs", "2", "--save", str(model), "--log", str(log),
                               "--moved", "0", "3", "--attack", "0.1", "--dream",
                               "--show-mistakes", "2"], capsys)
    assert code == 0, err
    assert "network conv 4-8 (3x3, 2x2 pools) 392-32-10, 13,242 parameters" in out
    test = float(re.search(r"^test accuracy: ([\d.]+)%", out, re.M)[1])
    moved = dict(re.findall(r"^test digits moved (\d) px \(up, down, left, right\): ([\d.]+)%",
                            out, re.M))
    assert test > 80 and float(moved["0"]) == test and float(moved["3"]) < test
    assert re.search(r"^attack eps 0.10: test accuracy", out, re.M)
    assert "what each digit looks like to the network" in out
    assert "most confident mistakes" in out
    record = json.loads(log.read_text())
    assert record["settings"]["conv"] == [4, 8] and len(record["history"]) == 2
    code, again, err = run_main([*home, "--load", str(model)], capsys)
    assert code == 0 and f"test accuracy: {test:.2f}%" in again
    assert "network conv 4-8 (3x3, 2x2 pools) 392-32-10" in again
    X_test = nn.split_mnist(*mnist)[2]
    np.save(tmp_path / "digit.npy", X_test[0].reshape(28, 28))
    code, mine, err = run_main(["--load", str(model), "--predict", str(tmp_path / "digit.npy")],
                               capsys)
    assert code == 0 and re.search(r"digit\.npy: \d", mine), mine + err


def test_a_conv_network_reads_98_percent_of_mnist_after_two_epochs(mnist):
    # conv 8 16 (103,018 parameters, as many as the MLP's 101,770), batch 128, 2 epochs:
    # 98.26% for seed 0 here; the recipe in the README trains longer for 99.1%
    X_train, y_train, X_test, y_test = nn.split_mnist(*mnist)
    params, history = nn.train(X_train, y_train, conv=(8, 16), batch_size=128, epochs=2,
                               log=None)
    assert nn.accuracy(nn.predict(params, X_test), y_test) >= 0.98
