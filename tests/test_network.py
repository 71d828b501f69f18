"""The network beyond the card's checks: any depth, the optimisers and schedules, shifted
batches, the classic lessons (zeros, squared error, dropout, stuck units), the input
gradient's attack and dreams, and the library's checks and defaults."""

import copy
import math
import pickle
import re

import numpy as np
import pytest

import nn_from_scratch as nn
from helpers import ROOT, fake_mnist, needs_mnist
from test_nn import MNIST_NPZ, digits, run_main, tiny_problem

pytestmark = pytest.mark.filterwarnings("error")  # any warning fails its test


class FixedOffset:
    """Stands in for the generator in shift_images: always the offset (dy, dx)."""
    def __init__(self, dy, dx):
        self.offset = np.array([dy, dx])

    def integers(self, low, high, size):
        return self.offset


@pytest.fixture(scope="module")
def digits_model():
    X_train, y_train, X_test, y_test, _ = nn.load_digits_data(seed=0)
    params, _ = nn.train(X_train, y_train, hidden=64, epochs=30, batch_size=32, log=None)
    return params, X_test, y_test


@pytest.mark.parametrize("hidden", [0, -3, 2.5, "64", True, (64, 0)])
def test_a_width_that_is_not_a_whole_number_of_at_least_1_is_refused(hidden):
    X, y = digits()
    with pytest.raises(ValueError, match=r"one width per hidden layer, each a whole number >= 1"):
        nn.train(X[:100], y[:100], hidden=hidden, epochs=1, log=None)


def test_an_unknown_activation_is_refused_in_one_line():
    X, y = digits()
    with pytest.raises(ValueError, match=r"activation must be one of relu, sigmoid, tanh; got"):
        nn.train(X[:100], y[:100], activation="softplus", epochs=1, log=None)


def test_the_initialisation_follows_the_activation():
    # He, std sqrt(2 / fan_in), for ReLU; Glorot, sqrt(2 / (fan_in + fan_out)), for sigmoid
    # and tanh; biases 0
    for activation, fan in (("relu", 400), ("sigmoid", 600), ("tanh", 600)):
        params = nn.init_params([400, 200, 10], np.random.default_rng(0),
                                activation=activation)
        assert abs(params["W1"].std() / math.sqrt(2 / fan) - 1) < 0.02, activation
        assert not params["b1"].any() and not params["b2"].any()


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


def test_the_core_above_the_plumbing_banner_runs_on_its_own(monkeypatch):
    # pasted into a notebook on its own, the text up to the Plumbing banner defines all it
    # uses: it fetches MNIST (fetch_openml stood in for), trains a two-hidden-layer network
    # on the bundled digits, checks its input and its gradients, and evaluates
    import sklearn.datasets
    from sklearn.datasets import load_digits
    text = (ROOT / "nn_from_scratch.py").read_text()
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
    assert list(params) == ["activation", "W1", "b1", "W2", "b2", "W3", "b3"]
    assert accuracy(predict(params, X[1600:]), y[1600:]) > 0.9
    assert namespace["report"](predict(params, X[1600:]), y[1600:])[1].startswith("confusion")
    assert all(r["ok"] for r in namespace["gradient_check"](sizes=(10, 6, 4, 10),
                                                            activation="sigmoid"))
    with pytest.raises(ValueError, match="not standardised to mean 0"):
        train(X - 0.5, y, epochs=1, log=None)
    with pytest.raises(namespace["TrainingDiverged"]):
        train(X, y, lr=1e6, epochs=1, log=None)


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
    # what train() returns is a plain dict that names its activation: predict and
    # predict_proba run it as tanh (before, as ReLU, with no word: 55% instead of 97% for
    # the README's tanh network), save_params and load_params keep it, and so does every
    # copy; weights that name no activation, or one there is not, are one line each
    X_train, y_train, X_test, y_test, _ = nn.load_digits_data(seed=0)
    params, _ = nn.train(X_train, y_train, hidden=(32, 16), activation="tanh", epochs=10,
                         batch_size=32, log=None)
    assert type(params) is dict and params["activation"] == "tanh" and len(params) == 7
    as_tanh = nn.forward_prop(params, nn.scale_pixels(X_test))[-1]
    assert np.array_equal(nn.predict_proba(params, X_test), as_tanh)
    assert nn.accuracy(nn.predict(params, X_test), y_test) > 0.9
    assert not np.allclose(nn.predict_proba({**params, "activation": "relu"}, X_test), as_tanh)
    for weights, named in ((nn.arrays(params), "None"), ({**params, "activation": "swish"},
                                                         "'swish'")):
        for call in (nn.predict, nn.predict_proba):
            with pytest.raises(ValueError, match=rf"^params\['activation'\] must name the hidden "
                                                 rf"layers' activation, one of relu, sigmoid, "
                                                 rf"tanh; got {named}$"):
                call(weights, X_test)
    nn.save_params(tmp_path / "m.npz", params)
    loaded = nn.load_params(tmp_path / "m.npz")
    assert loaded["activation"] == "tanh"
    assert np.array_equal(nn.predict_proba(loaded, X_test), as_tanh)
    for clone in (pickle.loads(pickle.dumps(params)), copy.deepcopy(params), params.copy()):
        assert clone["activation"] == "tanh" and np.array_equal(clone["W3"], params["W3"])


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
    before = copy.deepcopy(params)
    zero = {k: np.zeros_like(P) for k, P in nn.arrays(params).items()}
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
    for key, P in nn.arrays(params).items():
        assert np.count_nonzero((P != 0) & (np.abs(P) < tiny)) == 0, key
    assert np.count_nonzero(params["W1"] == 0) > 1000  # the flush did happen


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
    params = {"W1": np.eye(2), "b1": np.zeros(2), "W2": 20 * np.eye(2), "b2": np.zeros(2),
              "activation": "relu"}
    X, Y = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])  # sure of class 0; it is class 1
    cache = nn.forward_prop(params, X)
    assert cache[-1][0, 0] > 0.999
    push = {loss: np.abs(nn.backward_prop(params, X, Y, cache, loss=loss)["b2"]).max()
            for loss in nn.LOSSES}
    assert push["cross-entropy"] > 0.99 and push["mse"] < 0.01


def test_the_gradient_check_fails_where_backprop_forgets_the_mask(monkeypatch):
    # the check is not fooled: a backward pass that ignores dropout's masks is caught
    real = nn.backward_prop
    monkeypatch.setattr(nn, "backward_prop", lambda params, X, Y, cache, loss, masks, **kw:
                        real(params, X, Y, cache, loss, masks=None, **kw))
    rows = nn.gradient_check(sizes=(20, 7, 5, 10), dropout=0.5)
    assert [r["name"] for r in rows if not r["ok"]] == ["W1", "b1", "W2", "b2", "X"]


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
    assert np.array_equal(P, nn.forward_prop(runs[0], nn.scale_pixels(X_test))[-1])
    assert nn.accuracy(P.argmax(axis=1), y_test) > 0.9
    with pytest.raises(ValueError, match=r"^dropout must be >= 0 and < 1, the share of hidden "
                                         r"units dropped \(got 1\)$"):
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


def test_train_on_mnist_prints_the_command_lines_numbers(mnist_home, capsys):
    # nn.train(X, y) on MNIST's split and seed is the command line's run: the same loss
    # before training, the same epoch lines (shifted batches included) and the same test
    # accuracy, digit for digit; only the times differ
    code, out, err = run_main(["--data-home", mnist_home, "--epochs", 2], capsys)
    assert code == 0, err
    X, y = nn.load_mnist(mnist_home)
    X_train, y_train, X_test, y_test = nn.split_mnist(X, y)
    X_train, y_train, X_val, y_val = nn.hold_out(X_train, y_train, nn.VAL_SIZE,
                                                 np.random.default_rng(nn.SEED))
    lines = []
    params, _ = nn.train(X_train, y_train, X_val, y_val, epochs=2, log=lines.append)
    lines.append(f"test accuracy: {100 * nn.accuracy(nn.predict(params, X_test), y_test):.2f}%")
    untimed = lambda text: [re.sub(r"\| [\d.]+s$", "", line) for line in text]  # noqa: E731
    printed = [line for line in out.splitlines() if line.startswith(("loss before", "epoch",
                                                                     "test accuracy"))]
    assert len(printed) == 4 and untimed(printed) == untimed(lines)


def test_a_default_changed_on_the_module_is_seen_by_train_and_main_alike(monkeypatch, capsys):
    # the config block is read when train() and main() are called, not when the file is
    # imported: nn.EPOCHS = 2 and nn.HIDDEN = 16 change a notebook's train() and main() alike
    monkeypatch.setattr(nn, "EPOCHS", 2)
    monkeypatch.setattr(nn, "HIDDEN", 16)
    X, y = digits()
    params, history = nn.train(X, y, log=None)
    assert len(history) == 2 and params["W1"].shape == (64, 16)
    code, out, err = run_main(["--dataset", "digits"], capsys)
    assert code == 0 and "network 64-16-10" in out and ", 2 epochs," in out
    assert sum(line.startswith("epoch") for line in out.splitlines()) == 2
