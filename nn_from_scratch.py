"""
nn_from_scratch.py: a neural network that learns to read handwritten digits (MNIST),
written with nothing but NumPy. One file, read top to bottom: data, model, backprop,
training loop, evaluation, gradient check. Everything after that is plumbing.

    pip install -r requirements.txt
    python nn_from_scratch.py                        # 784-128-10 on MNIST, ~98.5% test accuracy
    python nn_from_scratch.py --subset 5000 --epochs 5   # a seconds-long experiment
    python nn_from_scratch.py --hidden 256 128       # two hidden layers: 784-256-128-10
    python nn_from_scratch.py --hidden 30 30 30 30 --activation sigmoid  # watch layer 1 stall
    python nn_from_scratch.py --init zeros           # why not start every weight at 0?
    python nn_from_scratch.py --loss mse             # why cross-entropy, not squared error?
    python nn_from_scratch.py --subset 1000 --hidden 800 --epochs 200 --no-augment --dropout 0.5
    python nn_from_scratch.py --dataset digits       # scikit-learn's 8x8 digits, no download
    python nn_from_scratch.py --conv 8 16 --batch-size 128 --epochs 6  # conv network: 99.2%
    python nn_from_scratch.py --save model.npz --show-mistakes 6
    python nn_from_scratch.py --load model.npz --predict my_digit.png
    python nn_from_scratch.py --load model.npz --attack 0.05 0.1 0.2 --dream  # what fools it
    python nn_from_scratch.py --serve                # watch it learn in your browser
    python nn_from_scratch.py --gradcheck --hidden 7 5 3 --activation tanh
    python -m pytest -q test_nn.py                   # the checks: shapes, gradients, accuracy

The network, one row per example (n examples in a mini-batch):

    X  (n, 784)   pixels scaled to [0, 1]              y  (n,)  labels 0..9
    Y  (n, 10)    one-hot labels: Y[i, y[i]] = 1
    Z1 = X @ W1 + b1      (n, 128)   hidden pre-activation      W1 (784, 128)  b1 (128,)
    A1 = ReLU(Z1)         (n, 128)   hidden activation
    Z2 = A1 @ W2 + b2     (n, 10)    logits                     W2 (128, 10)   b2 (10,)
    A2 = softmax(Z2)      (n, 10)    class probabilities
    loss = -(1/n) sum_i log A2[i, y[i]]                mean cross-entropy

That is L = 2 layers of sizes = [784, 128, 10] units. With more hidden layers (--hidden
256 128: sizes [784, 256, 128, 10], L = 3), the hidden lines repeat: Z_l = A_(l-1) @ W_l
+ b_l, (n, sizes[l]), and A_l = ReLU(Z_l) for l = 1..L-1, with A_0 = X; the last layer's
A_L = softmax(Z_L) are the probabilities. The parameters are a plain dict of W1, b1, ..., WL,
bL and "activation", the name of the hidden layers' activation, so that they run as trained.
dW1 means d loss / dW1, an array of the same shape as W1; likewise dZ1, db2, ...
"""

import argparse
import contextlib
import gzip
import importlib.util
import json
import math
import os
import re
import signal
import sys
import tempfile
import threading
import time
import warnings
from types import SimpleNamespace

import numpy as np

# ----------------------------------------------------------------------------
# Default configuration: every value is a command-line flag (python nn_from_scratch.py --help).
# Chosen by validation accuracy over seeds 0..7, never by test accuracy (docs/defaults.md).

HIDDEN = 128           # hidden units, as in the original write-up; (256, 128) for two layers
ACTIVATION = "relu"    # the hidden layers': "relu" (the write-up's), "sigmoid" or "tanh"
EPOCHS = 20            # passes over the 55,000 training images (a fifth of a second each)
BATCH_SIZE = 256       # examples per gradient step; 128 was no more accurate and 25% slower
OPTIMIZER = "momentum"  # "sgd" (textbook), "momentum" or "adam"
LR = {"sgd": 0.5, "momentum": 0.2, "adam": 0.005}  # each optimiser's own peak learning
                       # rate for one ReLU layer, decayed to 0 along a cosine over the run
LR_ACTIVATION = {"relu": 1, "tanh": 2, "sigmoid": 2.5}  # times LR for the other activations:
                       # their slopes are smaller than ReLU's 1, so are their gradients
LR_MSE = {"sgd": 2.5, "momentum": 0.5, "adam": 0.005}  # their rates for --loss mse: its
                       # gradient carries the softmax's slope, under 1/4, so SGD steps further
SCHEDULE = "cosine"    # "cosine", "step" (x0.1 at 50% and 75% of the run) or "constant"
MOMENTUM = 0.9         # for "momentum"; Adam uses beta1 = 0.9, beta2 = 0.999
WEIGHT_DECAY = 2e-4    # L2 penalty on the weights (not the biases); ~0.1% better on validation
AUGMENT = True         # on MNIST, move each mini-batch by up to a pixel: ~0.5% better, for
                       # free (off for other data: it was chosen on MNIST alone)
DTYPE = np.float32     # what the network computes in; float64 is slower and no more accurate
VAL_SIZE = 5000        # training images held out to watch progress; the test set is used once
INIT = None            # None: matched to the activation (He for ReLU, Glorot's otherwise)
LOSS = "cross-entropy"  # or "mse", squared error on the probabilities: the lesson of why not
DROPOUT = 0.0          # share of hidden units dropped at each training step (0: none)
SEED = 0               # one seed drives the split, the initial weights and the shuffling
NUM_CLASSES = 10


# ----------------------------------------------------------------------------
# 1. Data: 70,000 28x28 grayscale digits, fetched from OpenML by scikit-learn

def fetch_mnist(data_home=None):
    """MNIST as X (70000, 784) uint8 pixels 0..255 and y (70000,) uint8 labels 0..9, from
    OpenML: downloaded once (about 15 MB) into data_home (scikit-learn's data folder by
    default), and parsed on every call (about 20 s, 1 GB); load_mnist() keeps the result."""
    from sklearn.datasets import fetch_openml  # imported here: importing scikit-learn takes ~1 s
    where = data_home or "scikit-learn's data folder"
    print(f"fetching MNIST from OpenML into {where} (a one-off: ~15 MB, ~20 s to parse)...",
          flush=True)
    with warnings.catch_warnings():  # offline, one line from us says more than its retries do
        warnings.filterwarnings("ignore", message="A network error occurred")
        X, y = fetch_openml("mnist_784", version=1, as_frame=False, return_X_y=True,
                            parser="liac-arff", data_home=data_home)  # liac-arff: needs no pandas
    X = X.astype(np.uint8, order="C")  # (70000, 784) float64 0..255 -> uint8: 55 MB instead of 440
    y = y.astype(np.uint8)             # (70000,) the labels arrive as the strings '0'..'9'
    return X, y


def scale_pixels(X, dtype=DTYPE):
    """(n, d) uint8 pixels 0..255 -> (n, d) floats in [0, 1]. Float input is taken as scaled."""
    if X.dtype == np.uint8:
        # The images stay in memory as uint8 (55 MB for MNIST instead of 220 MB as float32);
        # each mini-batch is scaled just before it is used, which costs next to nothing.
        X = X.astype(dtype)       # (n, d), a new array ...
        X *= X.dtype.type(1 / 255)  # ... scaled in place, without another copy
    return X.astype(dtype, copy=False)


def one_hot(y, num_classes=NUM_CLASSES, dtype=np.float32):
    """(n,) integer labels -> (n, num_classes) rows with a single 1 at the label."""
    Y = np.zeros((len(y), num_classes), dtype=dtype)
    Y[np.arange(len(y)), y] = 1
    return Y


def shift_images(X, rng):
    """Move every image of the batch X (B, side * side) by the same random offset of -1, 0
    or +1 pixel down and right (9 offsets), filling the edge it uncovers with 0 (blank).
    A digit one pixel off is the same digit: showing the network such copies teaches it
    that, and gains ~0.5% test accuracy at the cost of one copy of the batch."""
    return move_images(X, *rng.integers(-1, 2, size=2))


def move_images(X, dy, dx):
    """X (n, side * side) with every image moved dy pixels down and dx right, blank behind."""
    side = math.isqrt(X.shape[1])
    s = side * dy + dx  # in a flattened image, dy rows down and dx right is s places on
    moved = np.zeros_like(X)
    moved[:, max(s, 0):X.shape[1] + min(s, 0)] = X[:, max(-s, 0):X.shape[1] + min(-s, 0)]
    if dx:  # except that pixels pushed off one side of a row land on the next row's other side
        moved.reshape(-1, side, side)[:, :, slice(0, dx) if dx > 0 else slice(dx, None)] = 0
    return moved


def split_mnist(X, y):
    """The standard MNIST split: the first 60,000 images train, the last 10,000 test."""
    return X[:60000], y[:60000], X[60000:], y[60000:]


def hold_out(X, y, size, rng):
    """Set aside `size` random training rows for validation: (X_train, y_train, X_val, y_val)."""
    order = rng.permutation(len(y))
    val, train = np.sort(order[:size]), np.sort(order[size:])
    return X[train], y[train], X[val], y[val]


# ----------------------------------------------------------------------------
# 2. The model: 784 -> 128 ReLU -> 10 softmax, or as many hidden layers as you like

INITS = ("he", "glorot", "zeros", "normal")


def default_init(activation):
    """The initialisation that suits the activation: He's for ReLU, Glorot's otherwise."""
    return "he" if activation == "relu" else "glorot"


def init_params(sizes, rng, dtype=np.float32, activation=ACTIVATION, init=INIT, conv=()):
    """Weights and biases for layers of the given sizes, e.g. [784, 128, 10]: W1 (784, 128),
    b1 (128,), W2 (128, 10), b2 (10,), and so on up to WL, bL for L = len(sizes) - 1.
    The weights are random, so that the units of a layer differ, and scaled so that the
    activations keep roughly the same size from layer to layer: He initialisation,
    N(0, 2 / fan_in), for ReLU, which zeroes about half of what goes in; Glorot's,
    N(0, 2 / (fan_in + fan_out)), for sigmoid and tanh. The biases start at 0.
    init: None matches the activation; "he" or "glorot" picks one; and two classic mistakes
    to learn from: "zeros", every weight 0, so that every unit of a layer computes the same
    thing and gets the same gradient, and nothing tells them apart; "normal", N(0, 1), far
    too large for 784 inputs: ReLU outputs of ~10 and saturated sigmoids. params names its
    activation too, an entry that every copy keeps: forward_prop applies it. conv: the
    channels of conv layers (2b) before them, 3x3 kernels K1 (conv[0], 3, 3, 1), ..., each
    seeing 9 pixels of every input map; sizes[0] is then what the last one gives."""
    params = {"activation": activation}
    init = init or default_init(activation)

    def draw(shape, fan_in, fan_out):
        variance = {"he": 2 / fan_in, "glorot": 2 / (fan_in + fan_out), "normal": 1,
                    "zeros": 0}[init]  # (zeros draws too: the same seed, the same shuffles)
        return (rng.standard_normal(shape) * np.sqrt(variance)).astype(dtype)
    for l, (C, F) in enumerate(zip((1, *conv), conv), 1):
        params[f"K{l}"] = draw((F, 3, 3, C), 9 * C, 9 * F)            # (F, 3, 3, C)
        params[f"k{l}"] = np.zeros(F, dtype=dtype)                    # (F,)
    for l in range(1, len(sizes)):
        params[f"W{l}"] = draw((sizes[l - 1], sizes[l]), sizes[l - 1], sizes[l])
        params[f"b{l}"] = np.zeros(sizes[l], dtype=dtype)             # (sizes[l],)
    return params


def depth(params):
    """L, the number of layers: the weights W1, ..., WL."""
    return sum(key.startswith("W") for key in params)


def arrays(params):
    """The weights and biases of params, {W1: ..., b1: ..., ..., bL: ...}, without the name of
    its activation: what gradient descent changes."""
    return {key: P for key, P in params.items() if key != "activation"}


def layer_sizes(n_in, hidden, n_out, conv=()):
    """[784, 128, 10] for hidden=128, [784, 256, 128, 10] for hidden=(256, 128). After conv
    layers (2b) the first is what the last of them gives: 16 maps of 7x7 for conv=(8, 16)."""
    widths = [hidden] if np.ndim(hidden) == 0 else list(hidden)
    for width in widths:
        if isinstance(width, (bool, np.bool_)) or not isinstance(width, (int, np.integer)) \
                or width < 1:
            raise ValueError(f"hidden takes one width per hidden layer, each a whole number "
                             f">= 1; got {width!r}")
    if len(conv):
        n_in = conv[-1] * (conv_sides(n_in, conv)[-1] // 2) ** 2
    return [n_in, *map(int, widths), n_out]


# Each activation beside its derivative. The derivative decides how much of the gradient
# gets back through a layer: at most 1/4 of it through a sigmoid, all of it through a
# ReLU that is on. That is why deep sigmoid networks learn slowly in their first layers.

def ReLU(Z):
    return np.maximum(Z, 0)


def ReLU_deriv(Z):
    # The slope of max(z, 0) is 1 for z > 0 and 0 for z < 0. At z = 0 it is undefined;
    # we take 0 (any value in [0, 1] is a valid subgradient, and it almost never happens).
    return (Z > 0).astype(Z.dtype)


def sigmoid(Z):
    """1 / (1 + e^-z), written with e^-|z| (at most 1) so that exp() cannot overflow."""
    E = np.exp(-np.abs(Z))
    return np.where(Z >= 0, 1, E) / (1 + E)


def sigmoid_deriv(Z):
    S = sigmoid(Z)
    return S * (1 - S)  # sigmoid'(z) = sigmoid(z) (1 - sigmoid(z)), at most 1/4 (at z = 0)


def tanh(Z):
    return np.tanh(Z)


def tanh_deriv(Z):
    return 1 - np.tanh(Z) ** 2  # tanh'(z) = 1 - tanh(z)^2, at most 1 (at z = 0)


ACTIVATIONS = {"relu": (ReLU, ReLU_deriv), "sigmoid": (sigmoid, sigmoid_deriv),
               "tanh": (tanh, tanh_deriv)}


def softmax(Z):
    """Row-wise softmax of (n, k) logits -> (n, k) probabilities, each row summing to 1."""
    Z = Z - Z.max(axis=1, keepdims=True)  # shift so exp() cannot overflow; the result is unchanged
    E = np.exp(Z)
    return E / E.sum(axis=1, keepdims=True)


def forward_prop(params, X, masks=None):
    """Run X (n, 784) through the layers l = 1..L. Returns the cache [Z1, A1, ..., ZL, AL]
    that backward_prop needs (after a conv network's own, 2b); the last, AL (n, 10), holds
    the class probabilities. masks: in training with dropout, one per hidden layer
    (dropout_masks), else None."""
    g = ACTIVATIONS[params["activation"]][0]   # the hidden layers' activation
    L = depth(params)                          # W1, b1, ..., WL, bL
    A, cache = X, []                           # A0 = X, the input (n, 784)
    if "K1" in params:                         # a conv network: its conv layers first (2b)
        A, cache = conv_forward(params, X)     # A0 (n, F h w), and their cache
    for l in range(1, L + 1):
        Z = A @ params[f"W{l}"] + params[f"b{l}"]  # (n, sizes[l]) pre-activation
        A = g(Z) if l < L else softmax(Z)          # (n, sizes[l]); the last: probabilities
        if masks and l < L:
            A = A * masks[l - 1]                   # dropout: some units' outputs set to 0
        cache += [Z, A]
    return cache


def dropout_masks(params, n, p, rng):
    """Inverted dropout's masks for a batch of n: one (n, sizes[l]) array per hidden layer, 0
    with probability p (the unit is dropped for that example) and 1 / (1 - p) otherwise, so
    that a unit's expected output is unchanged: predict() uses the whole network as it is."""
    L, dtype = depth(params), params["W1"].dtype
    return [(rng.random((n, len(params[f"b{l}"])), dtype=np.float32) >= p)
            * dtype.type(1 / (1 - p)) for l in range(1, L)]


def cross_entropy(AL, Y):
    """Mean cross-entropy loss = -(1/n) sum_i sum_j Y[i, j] log AL[i, j]."""
    # A probability can underflow to exactly 0; clipping at the smallest positive float
    # keeps log() finite (at most ~87 in float32) without changing any other value.
    tiny = np.finfo(AL.dtype).tiny
    return -np.sum(Y * np.log(np.maximum(AL, tiny))) / len(AL)


def squared_error(AL, Y):
    """Mean squared error on the probabilities, loss = (1/2n) sum_i sum_j (AL[i,j] - Y[i,j])^2:
    the loss of a regression, here to show why classification uses cross-entropy."""
    return np.sum((AL - Y) ** 2) / (2 * len(AL))


LOSSES = {"cross-entropy": cross_entropy, "mse": squared_error}


def backward_prop(params, X, Y, cache, loss=LOSS, masks=None, into_input=False):
    """Gradients of the mean loss with respect to every weight and bias (same keys and
    shapes), by the chain rule from the last layer back to the first. cache: forward_prop's
    [Z1, A1, ..., ZL, AL]; masks: the dropout masks forward_prop applied, M[l] (n, sizes[l])
    for l = 1..L-1, or None. into_input: go one layer further, through W1 into the pixels,
    and return (grads, dloss/dX)."""
    g_deriv = ACTIVATIONS[params["activation"]][1]
    L = depth(params)
    conv = cache[:-2 * L]                      # the conv layers' entries, if any (2b)
    Z = [None] + cache[-2 * L::2]              # Z[l] (n, sizes[l]), for l = 1..L
    A = [X] + cache[-2 * L + 1::2]             # A[l] (n, sizes[l]); A[0] = X
    if conv:                                   # ... or the conv layers' maps in a row
        A[0] = conv[-1].transpose(1, 0, 2, 3).reshape(len(X), -1)
    n = len(X)
    grads = {}
    if loss == "cross-entropy":
        # Into the last layer: softmax followed by cross-entropy has the famously simple
        # gradient AL - Y; the 1/n is there because the loss is the mean over the batch.
        dZ = (A[L] - Y) / n                    # (n, 10)
    else:
        # Squared error: dloss/dAL = (AL - Y) / n, then back through the softmax, whose
        # slope is dAL_j/dZ_k = AL_j (delta_jk - AL_k), so dZ_k = AL_k (dA_k - sum_j dA_j AL_j).
        # Every term has a factor AL_k: a confidently wrong answer (AL_k ~ 0 for the true
        # class) gets almost no gradient, where cross-entropy's AL - Y is largest.
        dA = (A[L] - Y) / n                    # (n, 10)
        dZ = A[L] * (dA - np.sum(dA * A[L], axis=1, keepdims=True))  # (n, 10)
    for l in range(L, 0, -1):
        # into the layer's weights and biases (each example adds to the bias it passed through)
        grads[f"W{l}"] = A[l - 1].T @ dZ       # (sizes[l-1], sizes[l])
        grads[f"b{l}"] = dZ.sum(axis=0)        # (sizes[l],)
        if l > 1 or into_input or conv:        # (training needs no gradient for X, the data)
            # back through the weights, into the previous layer's output A[l-1] ...
            dA = dZ @ params[f"W{l}"].T        # (n, sizes[l-1]); for l = 1, dloss/dX
        if l > 1:
            if masks:                          # ... through dropout: to the units kept ...
                dA *= masks[l - 2]             # (M[l-1], the mask of the forward pass)
            # ... and back through its activation: for ReLU, only where the unit was on
            dZ = dA * g_deriv(Z[l - 1])        # (n, sizes[l-1])
    if conv:                                   # on through the conv layers (2b)
        dA = conv_backward(params, dA, conv, grads, into_input)
    grads = {key: grads[key] for key in arrays(params)}  # in the order W1, b1, W2, ...
    return (grads, dA) if into_input else grads


def input_gradient(params, X, Y):
    """dloss/dX (n, 784) for the one-hot answers Y (n, 10): the chain rule taken one layer
    further, through W1. A step of eps along its sign raises the loss the most of any change
    of at most eps a pixel (a fooling image); a step against it raises the probability of Y
    (a dream); its size shows which pixels decide (saliency)."""
    cache = forward_prop(params, X)
    return backward_prop(params, X, Y, cache, into_input=True)[1]


# ----------------------------------------------------------------------------
# 2b. A convolutional network: small filters slid over the image, before the dense layers
#
# A conv layer (--conv 8 16) learns F filters of 3x3 pixels over its C input maps and
# applies each at every position of the image, then keeps the largest of each 2x2 square
# (max-pooling): the same detector everywhere, and half the width and height. The maps are
# channel-major, A (C, n, h, w): one image per channel per example, which makes each of a
# filter's 9 taps one contiguous slice of memory, and the whole layer one matrix product.
#   A0 = X as (1, n, 28, 28)                                       one channel: grey
#   Z_l  = K_l * A_(l-1) + k_l  (F, n, h, w)   3x3 'same' conv     K_l (F, 3, 3, C)  k_l (F,)
#   A_l  = g(maxpool(Z_l))      (F, n, h/2, w/2)
# and the last A_l, each example's maps in a row (n, F h/2 w/2), is the dense layers' A_0.

def conv_depth(params):
    """Lc, the number of conv layers: the kernels K1, ..., KLc (0 for the MLP)."""
    return sum(key.startswith("K") for key in params)


def channels(params):
    """Each conv layer's number of channels: [8, 16] for --conv 8 16, [] for the MLP."""
    return [len(params[f"k{l}"]) for l in range(1, conv_depth(params) + 1)]


def n_inputs(params):
    """d, the pixels of an image params takes: W1's rows; for a conv network the last conv
    layer's map in W1's rows per channel, times 4 for each 2x2 pooling that made it."""
    Lc = conv_depth(params)
    return params["W1"].shape[0] // (len(params[f"k{Lc}"]) if Lc else 1) * 4 ** Lc


def conv_sides(n_features, conv):
    """The maps' side at each conv layer's input for square images of n_features pixels
    ([28, 14] for --conv 8 16), or a ValueError if they are not square or a pooling
    cannot halve one (28 -> 14 -> 7: a third layer would pool 7x7 maps)."""
    side = math.isqrt(n_features)
    if side * side != n_features:
        raise ValueError(f"conv layers take square images; rows of {n_features} pixels are "
                         "not square: leave out conv")
    sides = [side >> l for l in range(len(conv))]
    if any(s % 2 for s in sides):
        l = next(l for l, s in enumerate(sides) if s % 2)
        raise ValueError(f"conv: {len(conv)} layers on {side}x{side} images, but layer "
                         f"{l + 1}'s 2x2 pooling cannot halve {sides[l]}x{sides[l]} maps: "
                         f"give at most {l} channel count{'s' if l != 1 else ''}")
    return sides


def conv_forward(params, X):
    """The conv layers of params on X (n, side * side). Returns the dense layers' input,
    (n, F h w) for the last layer's F maps of h x w, and the cache [(cols_1, Z_1, P_1), A_1,
    ..., A_Lc] that conv_backward needs."""
    g = ACTIVATIONS[params["activation"]][0]
    n, side = len(X), math.isqrt(X.shape[1])
    A, cache = X.reshape(1, n, side, side), []     # (1, n, 28, 28): one channel, grey
    for l in range(1, conv_depth(params) + 1):
        Z, cols = convolve(A, params[f"K{l}"], params[f"k{l}"])  # (F, n, h + 2, w + 2)
        P = max_pool(Z)                            # (F, n, h/2, w/2): each square's largest
        A = g(P)      # (F, n, h/2, w/2); = maxpool(g(Z)), as g rises, on a quarter of the work
        cache += [(cols, Z, P), A]
    return A.transpose(1, 0, 2, 3).reshape(n, -1), cache  # (n, F h/2 w/2): maps in a row


def convolve(A, K, k):
    """The 'same' 3x3 convolution of maps A (C, n, h, w), zero outside each image, with
    kernels K (F, 3, 3, C) and biases k (F,): Z[f, i, y, x] = k[f] + sum over dy, dx, c of
    K[f, dy, dx, c] A[c, i, y + dy - 1, x + dx - 1]. Each map is framed by zeros and the
    frames laid end to end, so that tap (dy, dx) of every position is the same slice moved
    by (dy - 1) rows and (dx - 1) columns; the 9 slices stacked (im2col) make one product.
    Returns Z (F, n, h + 2, w + 2), valid inside its frame, and the slices cols."""
    C, n, h, w = A.shape
    H, W = h + 2, w + 2                           # the framed map
    N, m = n * H * W, W + 1                       # its positions; m: room for the moves
    flat = np.zeros((C, m + N + m), A.dtype)      # (C, N + 2m), zeros around each map
    flat[:, m:m + N].reshape(C, n, H, W)[:, :, 1:-1, 1:-1] = A
    cols = np.empty((3, 3, C, N), A.dtype)        # (3, 3, C, N): tap (dy, dx) of every position
    for dy, dx in np.ndindex(3, 3):
        start = m + (dy - 1) * W + (dx - 1)
        cols[dy, dx] = flat[:, start:start + N]   # A moved by (dy - 1, dx - 1)
    Z = K.reshape(len(K), -1) @ cols.reshape(-1, N) + k[:, None]  # (F, 9C) @ (9C, N) -> (F, N)
    return Z.reshape(-1, n, H, W), cols


def quarters(Z):
    """The four (F, n, h/2, w/2) views of a framed map's inside: the top-left, top-right,
    bottom-left and bottom-right pixel of each 2x2 square."""
    inside = Z[:, :, 1:-1, 1:-1]                  # (F, n, h, w)
    return [inside[:, :, dy::2, dx::2] for dy in (0, 1) for dx in (0, 1)]


def max_pool(Z):
    """2x2 max-pooling of Z (F, n, h + 2, w + 2) -> (F, n, h/2, w/2)."""
    a, b, c, d = quarters(Z)
    return np.maximum(np.maximum(a, b), np.maximum(c, d))


def conv_backward(params, dA, cache, grads, into_input=False):
    """From dloss/dA0 of the dense layers (n, F h w) back through the conv layers Lc..1,
    adding dK_l (F, 3, 3, C) and dk_l (F,) to grads. into_input: go on into the pixels and
    return dloss/dX (n, side * side)."""
    g_deriv = ACTIVATIONS[params["activation"]][1]
    Lc = conv_depth(params)
    F, n, h, w = cache[-1].shape
    dA = dA.reshape(n, F, h, w).transpose(1, 0, 2, 3)  # (F, n, h, w): back into maps
    for l in range(Lc, 0, -1):
        (cols, Z, P), K = cache[2 * l - 2], params[f"K{l}"]
        dP = dA * g_deriv(P)               # (F, n, h/2, w/2): back through the activation
        dZ = unpool(dP, Z, P).reshape(len(K), -1)  # (F, N): to each square's largest, only
        dK = cols.reshape(-1, dZ.shape[1]) @ dZ.T  # (9C, N) @ (N, F): as fast as BLAS goes
        grads[f"K{l}"] = dK.T.reshape(K.shape)     # (F, 3, 3, C)
        grads[f"k{l}"] = dZ.sum(axis=1)    # (F,): every position used the bias
        if l > 1 or into_input:            # dA_(l-1) (C, n, h, w): each tap's share, moved back
            dA = unconvolve(K.reshape(len(K), -1).T @ dZ, Z.shape)   # (9C, F) @ (F, N)
    return dA.reshape(n, -1) if into_input else None


def unpool(dP, Z, P):
    """max_pool's gradient: dP (F, n, h/2, w/2) to the first largest pixel of each 2x2 square
    of Z, in reading order, as PyTorch does; 0 elsewhere and on the frame. (F, n, h+2, w+2)"""
    dZ = np.zeros(Z.shape, dP.dtype)              # (F, n, h + 2, w + 2)
    taken = np.zeros(P.shape, bool)               # (F, n, h/2, w/2): a square's max found
    for z, dz in zip(quarters(Z), quarters(dZ)):
        first = (z == P) & ~taken                 # a tie (a blank square) goes to one pixel
        taken |= first
        np.multiply(dP, first, out=dz)
    return dZ


def unconvolve(dcols, shape):
    """convolve's im2col backwards: dcols (9C, N), the gradient of each tap's slice, added
    back to where each slice was read. shape: Z's (F, n, H, W). Returns (C, n, H-2, W-2)."""
    _, n, H, W = shape
    N, m = n * H * W, W + 1
    dcols = dcols.reshape(3, 3, -1, N)            # (3, 3, C, N)
    dflat = np.zeros((dcols.shape[2], m + N + m), dcols.dtype)   # (C, N + 2m)
    for dy, dx in np.ndindex(3, 3):
        start = m + (dy - 1) * W + (dx - 1)
        dflat[:, start:start + N] += dcols[dy, dx]
    return dflat[:, m:m + N].reshape(-1, n, H, W)[:, :, 1:-1, 1:-1]  # (C, n, h, w)


# ----------------------------------------------------------------------------
# 3. Gradient descent: plain SGD, SGD with momentum, Adam

def init_optimizer(params, optimizer):
    """Per-parameter state: nothing for SGD, a velocity for momentum, two moments for Adam."""
    zeros = {key: np.zeros_like(P) for key, P in arrays(params).items()}
    if optimizer == "momentum":
        return {"v": zeros, "t": 0}
    if optimizer == "adam":
        return {"m": zeros, "v": {key: np.zeros_like(P) for key, P in zeros.items()}, "t": 0}
    return {"t": 0}


def update_params(params, grads, state, lr, optimizer=OPTIMIZER, momentum=MOMENTUM,
                  weight_decay=WEIGHT_DECAY, beta1=0.9, beta2=0.999, eps=1e-8):
    """One step downhill, P <- P - step, with lr this step's learning rate. P - step is
    written over step and replaces P in params, not written into P (P -= step): the BLAS
    threads of the forward pass have just read P on the other core, and writing into it
    took, at times, 3x as long (docs/speed.md). The optimiser's state changes in place."""
    state["t"] += 1
    t = state["t"]
    for key, g in grads.items():
        P = params[key]
        if weight_decay and key[0] in "WK":          # the weights and kernels, not the biases
            g = g + weight_decay * P                 # gradient of (weight_decay / 2) * sum(W**2)
        if optimizer == "sgd":
            step = lr * g                            # P <- P - lr g
        elif optimizer == "momentum":
            v = state["v"][key]
            v *= momentum                            # v <- momentum v + g   (a running sum of
            v += g                                   #   past gradients that damps zig-zags)
            step = lr * v                            # P <- P - lr v
        else:
            m, s = state["m"][key], state["v"][key]
            m += (1 - beta1) * (g - m)               # m <- beta1 m + (1 - beta1) g
            s += (1 - beta2) * (g * g - s)           # s <- beta2 s + (1 - beta2) g^2
            m_hat = m / (1 - beta1 ** t)             # undo the bias of starting m and s at 0
            s_hat = s / (1 - beta2 ** t)
            step = lr * m_hat / (np.sqrt(s_hat) + eps)  # P <- P - lr m^ / (sqrt(s^) + eps)
        params[key] = np.subtract(P, step, out=step)  # P - step, written over step: see above


def default_lr(optimizer, momentum=MOMENTUM, batch_size=BATCH_SIZE, n_train=None, depth=1,
               activation=ACTIVATION, loss=LOSS):
    """The optimiser's own peak learning rate, LR[optimizer], chosen at batch 256, momentum
    0.9 and one hidden ReLU layer, adapted to the rest (validation accuracy, docs/defaults.md):
    - a batch of B has gradient noise ~ 1 / sqrt(B): below 256 the rate shrinks by
      sqrt(B / 256) (momentum at batch 16: 98.8% instead of 64%), unless B is all the data;
    - momentum's steps add up to 1 / (1 - momentum) single ones: above 0.9 the rate shrinks
      by as much (momentum 0.99: 98.4% instead of 93.2%);
    - tanh and sigmoid take LR_ACTIVATION times the rate: a sigmoid's slope is at most 1/4;
    - ReLU and tanh layers pass the gradient back whole, so past two the steps add up and
      the rate shrinks as 2 / depth (four layers of 128: 98.54% at 0.1, 98.08% at 0.2);
      sigmoid layers pass back at most 1/4 each, so it grows as depth (98.20% at 2.0,
      97.26% at 0.5). Adam scales each step to about lr, and keeps its rate at any depth;
    - squared error starts from LR_MSE: its gradient carries the softmax's slope, under 1/4.
    Larger batches and less momentum keep the rate: scaling it up measured no better."""
    lr = (LR_MSE if loss == "mse" else LR)[optimizer] * LR_ACTIVATION[activation]
    if batch_size < BATCH_SIZE and (n_train is None or batch_size < n_train):
        lr *= math.sqrt(batch_size / BATCH_SIZE)
    if optimizer == "momentum" and momentum > MOMENTUM:
        lr *= (1 - momentum) / (1 - MOMENTUM)
    if optimizer != "adam":
        lr *= depth if activation == "sigmoid" else min(1, 2 / depth)
    return lr


SCHEDULES = ("cosine", "step", "constant")


def learning_rate(lr, step, total_steps, schedule=SCHEDULE):
    """The learning rate for step 0..total_steps-1: big steps early, small steps late."""
    progress = step / total_steps
    if schedule == "cosine":
        return lr * 0.5 * (1 + math.cos(math.pi * progress))  # lr -> 0 along half a cosine
    if schedule == "step":
        return lr * 0.1 ** ((progress >= 0.5) + (progress >= 0.75))
    return lr


# ----------------------------------------------------------------------------
# 4. The training loop

class TrainingDiverged(ArithmeticError):
    """The loss became inf or nan: the learning rate is too large for this network."""


def train(X_train, y_train, X_val=None, y_val=None, log=print, watch=None, stop=None,
          **settings):
    """Mini-batch gradient descent on X_train (n, d), uint8 pixels 0..255 or floats in
    [0, 1], and y_train (n,), labels 0..9. Returns (params, history): one record per epoch.
    settings: the config block's names in lower case (hidden=(256, 128), epochs=5, ...),
    each one left out read from the config block when train is called (check_training).
    log: where the lines go (None: nowhere). watch: told each step, watch.step(params,
    epoch, batch, loss), and each epoch, watch.epoch(params, record), as --serve's page is.
    stop: a threading.Event that ends training after the current batch."""
    X_train, y_train, X_val, y_val, cfg = check_training(X_train, y_train, X_val, y_val,
                                                         **settings)
    log = log or (lambda line: None)  # log=None: say nothing
    keep_freed_memory()  # speed only: a notebook trains as fast as the command line (4b)
    rng = np.random.default_rng(cfg.seed)  # one seed: the weights, the shuffles, the shifts
    params = init_params(cfg.sizes, rng, cfg.dtype, cfg.activation, cfg.init, cfg.conv)
    state = init_optimizer(params, cfg.optimizer)
    n, steps = len(X_train), math.ceil(len(X_train) / cfg.batch_size)  # steps per epoch
    before, line = loss_before_training(params, X_train, y_train, X_val, y_val, cfg.loss)
    log(line)  # about ln 10 = 2.30, for a network that knows nothing yet
    if watch:
        watch.step(params, 0, 0, before)
    history = []
    for epoch in range(1, cfg.epochs + 1):
        start, order = time.perf_counter(), rng.permutation(n)  # a fresh shuffle every epoch
        loss_sum, correct, samples = 0.0, 0, []
        for b in range(steps):
            idx = order[b * cfg.batch_size:(b + 1) * cfg.batch_size]
            X = shift_images(X_train[idx], rng) if cfg.augment else X_train[idx]  # (B, d)
            X = scale_pixels(X, cfg.dtype)                          # (B, d) in [0, 1]
            Y = one_hot(y_train[idx], cfg.num_classes, cfg.dtype)   # (B, 10)
            lr = learning_rate(cfg.lr, (epoch - 1) * steps + b, cfg.epochs * steps, cfg.schedule)
            masks = dropout_masks(params, len(idx), cfg.dropout, rng) if cfg.dropout else None
            loss, cache, grads = train_step(params, state, X, Y, lr, cfg, masks)
            if not np.isfinite(loss):
                raise TrainingDiverged(f"training diverged at epoch {epoch}, batch {b + 1} "
                                       f"(loss={loss}); try a smaller --lr")
            loss_sum += loss * len(idx)
            correct += np.count_nonzero(cache[-1].argmax(axis=1) == y_train[idx])
            if b % 10 == 0:  # every 10th step is enough to see how the layers learn
                samples.append(layer_sample(cache, grads, cfg.activation))
            if b % 100 == 0:
                flush_denormals(params, state)  # speed only: no slow subnormal floats (4b)
            if watch:
                watch.step(params, epoch, b + 1, loss)
            if stop is not None and stop.is_set():
                break
        seconds, seen = time.perf_counter() - start, min((b + 1) * cfg.batch_size, n)
        record = {"epoch": epoch, "loss": float(loss_sum / seen), "train_acc": correct / seen,
                  "val_acc": validation_accuracy(params, X_val, y_val), "lr": lr,
                  "seconds": seconds, **layer_summary(samples, cfg.activation)}
        history.append(record)
        if watch:
            watch.epoch(params, record)
        log(format_epoch(record, cfg))
        if stop is not None and stop.is_set():
            log(f"interrupted in epoch {epoch} after batch {b + 1} of {steps}")
            break
    if cfg.init == "zeros":
        log(symmetry_note(params, cfg.dropout))
    return params, history


# A learning rate that is far too big makes the weights overflow to inf and then nan. NumPy
# would warn about that on every step; instead train() checks each step's loss and stops.
@np.errstate(over="ignore", invalid="ignore")
def train_step(params, state, X, Y, lr, cfg, masks=None):
    """One step of gradient descent on the mini-batch X (B, d), Y (B, 10), with cfg's loss and
    optimiser: forward, loss, backward, update. Returns the loss, forward_prop's cache and
    the gradients."""
    cache = forward_prop(params, X, masks)
    loss = LOSSES[cfg.loss](cache[-1], Y)
    grads = backward_prop(params, X, Y, cache, cfg.loss, masks)
    update_params(params, grads, state, lr, cfg.optimizer, cfg.momentum, cfg.weight_decay)
    return loss, cache, grads


def validation_accuracy(params, X_val, y_val):
    """The share of X_val read right (None without); weights bound for inf may overflow."""
    if X_val is None:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        return accuracy(predict(params, X_val), y_val)


def loss_before_training(params, X_train, y_train, X_val=None, y_val=None, loss=LOSS):
    """(the loss, its line): a network that gives each of k classes 1/k has a cross-entropy of
    ln k; far more means confident answers before any learning, from too large weights."""
    X, y, which = ((X_val, y_val, "validation") if X_val is not None else
                   (X_train[:VAL_SIZE], y_train[:VAL_SIZE], "first training"))
    k = params[f"W{depth(params)}"].shape[1]
    value = LOSSES[loss](predict_proba(params, X), one_hot(y, k, params["W1"].dtype))
    nothing = (f"ln {k} = {math.log(k):.4f}" if loss == "cross-entropy" else
               f"(1 - 1/{k}) / 2 = {(1 - 1 / k) / 2:.4f}")  # squared error of answering 1/k
    line = (f"loss before training: {value:.4f} on the {len(y):,} {which} images ({nothing} "
            "for a network that knows nothing)")
    return float(value), line


def format_epoch(r, cfg):
    """One line per epoch. With two or more hidden layers it ends with how fast each hidden
    layer learns, as a multiple of the last one's (0.01x: 100 times slower), and then, there
    or after an unusual init, each hidden layer's share of dead units or saturated outputs."""
    val = "" if r["val_acc"] is None else f" | val {100 * r['val_acc']:5.2f}%"
    speeds = r["db_norm"][:-1]  # the hidden layers'
    layers = "" if len(speeds) < 2 else " | layers learn " + " ".join(
        f"{s / max(speeds[-1], 1e-30):.2g}x" for s in speeds)
    if len(cfg.sizes) > 3 or cfg.init not in (None, default_init(cfg.activation)):
        kind = "dead" if "dead" in r else "saturated"
        layers += f" | {kind} " + " ".join(f"{100 * share:.0f}%" for share in r[kind])
    return (f"epoch {r['epoch']:{len(str(cfg.epochs))}d}/{cfg.epochs} | loss {r['loss']:.4f} | "
            f"train {100 * r['train_acc']:5.2f}%{val} | lr {r['lr']:.4f} | "
            f"{r['seconds']:.1f}s{layers}")


# What train() takes: every setting checked once, here, for train() and the command line.

def check_training(X_train, y_train, X_val=None, y_val=None, **settings):
    """Everything train() is given, checked before any work (a ValueError in one line, not a
    NumPy error mid-run): the data (check_data) and the settings (check_settings). Returns
    the data and cfg, a namespace of the settings: those left out read from the config block
    now, so nn.EPOCHS = 5 changes train() and main() alike; each None filled in (fill_in)."""
    cfg = dict(hidden=HIDDEN, activation=ACTIVATION, init=INIT, loss=LOSS, dropout=DROPOUT,
               epochs=EPOCHS, batch_size=None, lr=None, optimizer=OPTIMIZER, schedule=SCHEDULE,
               momentum=MOMENTUM, weight_decay=WEIGHT_DECAY, augment=None, dtype=DTYPE,
               seed=SEED, conv=(), num_classes=NUM_CLASSES)
    if settings.keys() - cfg.keys():
        raise TypeError(f"train() has no setting {', '.join(sorted(settings.keys() - cfg.keys()))}"
                        f"; it takes {', '.join(cfg)}")
    cfg = SimpleNamespace(**{**cfg, **settings})
    cfg.conv = [] if cfg.conv is None else [cfg.conv] if np.ndim(cfg.conv) == 0 else list(cfg.conv)
    X_train, y_train = check_data(X_train, y_train, cfg.num_classes)
    if X_val is not None:
        X_val, y_val = check_data(X_val, y_val, cfg.num_classes, X_train.shape[1])
    check_settings(cfg, len(y_train))
    fill_in(cfg, len(y_train), X_train.shape[1])
    cfg.sizes = layer_sizes(X_train.shape[1], cfg.hidden, cfg.num_classes, cfg.conv)
    cfg.dtype = np.dtype(cfg.dtype)
    if cfg.augment and math.isqrt(X_train.shape[1]) ** 2 != X_train.shape[1]:
        raise ValueError(f"augment=True shifts square images; rows of {X_train.shape[1]} "
                         "features are not square: pass augment=False")
    # Floats (fetch_openml gives float64 in column order) are copied once, in row order and
    # in the training dtype, rather than gathered slowly and converted batch after batch.
    X_train = np.ascontiguousarray(X_train, None if X_train.dtype == np.uint8 else cfg.dtype)
    return X_train, y_train, X_val, y_val, cfg


CHOICES = {"activation": ACTIVATIONS, "init": (None, *INITS), "loss": LOSSES, "optimizer": LR,
           "schedule": SCHEDULES, "dtype": ("float32", "float64")}


def check_settings(cfg, n_train=None, name=str):
    """Raise a ValueError naming the first setting of cfg (train()'s, or the flags) off its
    choices or range; None, the default, passes. name(key): epochs, or --epochs."""
    for key, choices in CHOICES.items():
        value = getattr(cfg, key, None)
        if value is not None and (np.dtype(value).name if key == "dtype" else value) not in \
                choices:
            raise ValueError(f"{name(key)} must be one of {', '.join(filter(None, choices))}; "
                             f"got {value!r}")
    whole = (int, np.integer)
    for key, ok, words in [
            ("epochs", lambda v: isinstance(v, whole) and v >= 1, "a whole number >= 1"),
            ("batch_size", lambda v: isinstance(v, whole) and 1 <= v <= (n_train or v),
             f"from 1 to {n_train:,}, the number of training images" if n_train else
             "a whole number >= 1"),
            ("lr", lambda v: math.isfinite(v) and v > 0, "a finite number > 0"),
            ("momentum", lambda v: 0 <= v < 1, ">= 0 and < 1"),
            ("dropout", lambda v: 0 <= v < 1, ">= 0 and < 1, the share of hidden units dropped"),
            ("weight_decay", lambda v: 0 <= v < 1, ">= 0 and < 1"),
            ("seed", lambda v: isinstance(v, whole) and v >= 0, "a whole number >= 0"),
            ("conv", lambda v: all(isinstance(c, whole) and c >= 1 for c in v),
             "a whole number >= 1 for each conv layer's channels")]:
        value = getattr(cfg, key, None)
        if value is not None and not ok(value):
            raise ValueError(f"{name(key)} must be {words} (got {value})")


def fill_in(cfg, n_train, n_features):
    """Each setting of cfg left None made the value that suits the rest: hidden HIDDEN,
    batch_size BATCH_SIZE (all n_train examples, if fewer), lr default_lr's, augment AUGMENT
    on 28x28 images (MNIST's, where it was chosen) and off on others."""
    cfg.hidden = HIDDEN if cfg.hidden is None else cfg.hidden
    cfg.batch_size = cfg.batch_size or min(BATCH_SIZE, n_train)
    if cfg.lr is None:
        cfg.lr = default_lr(cfg.optimizer, cfg.momentum, cfg.batch_size, n_train,
                            np.size(cfg.hidden) + len(cfg.conv or ()), cfg.activation, cfg.loss)
    if cfg.augment is None:
        cfg.augment = AUGMENT and n_features == 28 * 28


# Looking inside train(): how fast each layer learns, and the units that cannot learn: a ReLU
# off for every example gets no gradient and never comes back on (dead); a sigmoid or tanh
# near either end of its range has a slope near 0 (saturated).
SATURATED = {"sigmoid": math.log(199), "tanh": math.atanh(0.99)}  # |z| where g(z) is within
# 1% of its range's end (sigmoid 0.995, tanh 0.99) and its slope under 2% of its most


def layer_sample(cache, grads, activation):
    """What a step shows of the layers, (L,) each: how fast each learns, the length of its bias
    gradient ||dloss/db_l|| (Nielsen's book, chapter 5: a bias moves by lr times it, and so,
    on average, do the weights beside it); and the stuck_units of Z1, ..., Z(L-1)."""
    L = sum(key.startswith("b") for key in grads)   # the dense layers'
    return ([np.linalg.norm(grads[f"b{l}"]) for l in range(1, L + 1)],
            stuck_units(cache[-2 * L:-2:2], activation))


def layer_summary(samples, activation):
    """An epoch's layer_samples -> {"db_norm": each layer's mean, and stuck_shares}."""
    norms, stuck = zip(*samples)
    return {"db_norm": np.mean(norms, axis=0).tolist(), **stuck_shares(stuck, activation)}


def stuck_units(Zs, activation):
    """One sample, from a batch's hidden pre-activations [Z1, ..., Z(L-1)], (B, sizes[l]) each:
    for ReLU each layer's units that were on for an example, else its share saturated."""
    if activation == "relu":
        return [(Z > 0).any(axis=0) for Z in Zs]
    return [np.count_nonzero(np.abs(Z) > SATURATED[activation]) / Z.size for Z in Zs]


def stuck_shares(samples, activation):
    """An epoch's stuck_units -> {"dead": each hidden layer's share of units on for no sampled
    example} for ReLU, {"saturated": its share of saturated outputs} otherwise."""
    if activation == "relu":
        return {"dead": [1 - float(np.mean(np.any(layer, axis=0))) for layer in zip(*samples)]}
    return {"saturated": [float(np.mean(layer)) for layer in zip(*samples)]}


def distinct_features(W, b):
    """How many different things a layer's units compute: the rank of [W; b] (fan_in + 1,
    width) to 1e-3 of its largest singular value: 0 if all weights are 0, 1 for copies."""
    s = np.linalg.svd(np.vstack([W, b]).astype(np.float64), compute_uv=False)
    return int(np.count_nonzero(s > 1e-3 * s[0])) if s[0] > 0 else 0


def symmetry_note(params, dropout=DROPOUT):
    """After init="zeros", every unit of a layer the same: did training tell them apart?"""
    counts = [distinct_features(params[f"W{l}"], params[f"b{l}"])
              for l in range(1, depth(params))]
    if max(counts) <= 1:
        return ("hidden units identical: symmetry was never broken (all the units of a layer "
                "started the same, so each got the same gradient and stayed the same)")
    layers = ", ".join(f"layer {l}'s {len(params[f'b{l}'])} units compute {c} distinct "
                       f"feature{'s' if c > 1 else ''}" for l, c in enumerate(counts, 1))
    cause = "dropout's random masks" if dropout else "rounding, ~1e-10 a step,"
    return (f"hidden units: {layers} (the rank of the weights); they started the same, and "
            f"only {cause} told them apart")


# ----------------------------------------------------------------------------
# 4b. Two speed tricks. Neither changes a number; a learner can skip them.

def flush_denormals(params, state):
    """Set weights and optimiser state below 1e-30 to 0 before they reach float32's subnormal
    range (< 1.2e-38), ~20x slower: a blank pixel's momentum decays by 0.9 a step, and Adam
    shrinks a dead unit's weights geometrically. 1e-30 changes no output (docs/speed.md)."""
    for group in (arrays(params), state.get("v", {}), state.get("m", {})):
        for A in group.values():
            A[np.abs(A) < 1e-30] = 0


def keep_freed_memory():
    """Ask glibc's malloc (Linux) to keep the memory NumPy frees: by default it hands each
    step's few MB back to the OS and page-faults them in again, up to half an epoch. It lasts
    for the process; elsewhere (macOS, Windows, musl) this does nothing."""
    import ctypes
    try:
        libc = ctypes.CDLL(None)    # (on Windows a TypeError; off glibc no mallopt)
        libc.mallopt(-1, 1 << 30)   # M_TRIM_THRESHOLD: keep up to 1 GB of freed memory
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: serve blocks up to 32 MB from the heap
    except (OSError, AttributeError, TypeError):
        pass


# ----------------------------------------------------------------------------
# 5. Evaluation

def predict_proba(params, X, chunk=10000):
    """(n, d) images -> (n, 10) class probabilities AL, in chunks so that no big float copy
    of the images is made."""
    if params.get("activation") not in ACTIVATIONS:
        raise ValueError(f"params['activation'] must name the hidden layers' activation, one of "
                         f"{', '.join(ACTIVATIONS)}; got {params.get('activation')!r}")
    X, _ = check_data(X, n_features=n_inputs(params))
    dtype, L = params["W1"].dtype, depth(params)
    chunk = min(chunk, 1000) if "K1" in params else chunk  # a conv layer's cols: 9x its maps
    return np.concatenate([forward_prop(params, scale_pixels(X[i:i + chunk], dtype))[-1]
                           for i in range(0, len(X), chunk)]
                          or [np.zeros((0, params[f"W{L}"].shape[1]))])


def predict(params, X):
    """(n, d) images -> (n,) predicted labels: the most probable class of each."""
    return predict_proba(params, X).argmax(axis=1)


def accuracy(predictions, y):
    return float(np.mean(predictions == y))


def confusion_matrix(predictions, y, num_classes=NUM_CLASSES):
    """(k, k) counts: row = true label, column = predicted label."""
    return np.bincount(np.asarray(y, dtype=np.intp) * num_classes + predictions,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def report(predictions, y, num_classes=NUM_CLASSES):
    """Per-class accuracy and the confusion matrix, as printable lines."""
    C = confusion_matrix(predictions, y, num_classes)
    per_class = np.diag(C) / np.maximum(C.sum(axis=1), 1)
    lines = ["per-class accuracy: " + "  ".join(f"{k}:{100 * a:.1f}%"
                                                for k, a in enumerate(per_class)),
             "confusion matrix (rows: true label, columns: predicted):",
             "      " + "".join(f"{k:>6d}" for k in range(num_classes))]
    lines += [f"{k:>6d}" + "".join(f"{c:>6d}" for c in row) for k, row in enumerate(C)]
    pairs = confused_pairs(C, top=4)
    if pairs:
        lines += ["most confused (true -> predicted):", "   " + "   ".join(pairs)]
    return lines


def confused_pairs(C, top=5):
    """'4 -> 9: 23 times' for the largest off-diagonal counts of a confusion matrix."""
    off = C - np.diag(np.diag(C))
    pairs = np.dstack(np.unravel_index(np.argsort(-off, axis=None, kind="stable"), C.shape))[0]
    return [f"{t} -> {p}: {off[t, p]} {'time' if off[t, p] == 1 else 'times'}"
            for t, p in pairs[:top] if off[t, p] > 0]


# ----------------------------------------------------------------------------
# 6. Checking the gradients: backprop against the definition of a derivative

def numerical_gradients(params, X, Y, h=1e-5, loss=LOSS, masks=None):
    """dloss/dP for every entry of every parameter, and of the input X (as "X"), by central
    differences, (loss(P + h) - loss(P - h)) / 2h: error O(h^2) plus round-off ~1e-16 / h,
    both small at h = 1e-5 in float64. Two forward passes per entry: for small networks.
    masks: dropout's, fixed."""
    def value():
        return LOSSES[loss](forward_prop(params, X, masks)[-1], Y)
    grads = {}
    for key, P in {**arrays(params), "X": X}.items():
        G = np.zeros_like(P)
        for i in np.ndindex(P.shape):
            saved = P[i]
            P[i] = saved + h
            up = value()
            P[i] = saved - h
            down = value()
            P[i] = saved
            G[i] = (up - down) / (2 * h)
        grads[key] = G
    return grads


def relative_error(a, b):
    """||a - b|| / (||a|| + ||b||) over a whole parameter: 0 where a and b agree, 1 where they
    have nothing in common. Not entry by entry: central differences are off by ~1e-11 at
    any size, so an entry of ~1e-6 (deep behind sigmoids, or a unit mostly dropped) would
    fail on noise (seeds 0-3 reached 2.9e-4 entry by entry; this way 1.1e-7 at most)."""
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def gradient_check(seed=0, n=5, sizes=(20, 8, 10), activation=ACTIVATION, tolerance=1e-6,
                   loss=LOSS, dropout=0.0, conv=()):
    """backward_prop against numerical_gradients, every entry of every parameter and of the
    input gradient dloss/dX, on a small random float64 network of the given sizes with
    non-zero biases, n examples, the loss given and, with dropout > 0, one fixed set of
    masks. conv: conv layers' channels (2b) on images of sizes[0] pixels, (64, 5, 10) for
    8x8. A row per parameter and X: its largest gradient and absolute error,
    relative_error, and ok."""
    rng = np.random.default_rng(seed)
    dense = layer_sizes(sizes[0], sizes[1:-1], sizes[-1], conv)  # what W1.. take
    params = init_params(dense, rng, np.float64, activation, conv=conv)
    for key in [key for key in params if key[0] in "kb"]:
        params[key] = 0.1 * rng.standard_normal(len(params[key]))
    X = rng.random((n, sizes[0]))                                    # (n, 20)
    Y = one_hot(np.arange(n) % sizes[-1], sizes[-1], np.float64)     # (n, 10)
    masks = dropout_masks(params, n, dropout, rng) if dropout else None
    analytic, dX = backward_prop(params, X, Y, forward_prop(params, X, masks), loss, masks,
                                 into_input=True)
    analytic["X"] = dX
    numeric = numerical_gradients(params, X, Y, loss=loss, masks=masks)
    rows = []
    for key in analytic:
        error = relative_error(analytic[key], numeric[key])
        rows.append({"name": key, "shape": numeric[key].shape,
                     "max_grad": float(np.abs(analytic[key]).max()),
                     "abs_error": float(np.abs(analytic[key] - numeric[key]).max()),
                     "rel_error": error, "ok": error < tolerance})
    return rows


# ----------------------------------------------------------------------------
# 7. Checking what train() and predict() are given, so that a mistake is a clear message

def check_data(X, y=None, num_classes=NUM_CLASSES, n_features=None):
    """X (n, d) and y (n,) as the network takes them, or a ValueError in one line that says
    what is wrong and what to do, before NumPy would fail deep inside the network. What is
    merely unusual is taken as meant: images (n, h, w) become rows (n, h * w); pixels of
    0..255 as floats (fetch_openml's) or other integers become uint8; 0 and 1 as integers
    or bools are paper and ink; labels as text ('5', fetch_openml's), as whole floats or
    as one-hot rows become integers. Returns (X, y); X (n, d) uint8 or floats in [0, 1]."""
    X = np.asarray(X)
    X = X.reshape(len(X), -1) if X.ndim == 3 else X    # images (n, h, w) -> rows (n, h * w)
    if X.dtype.kind not in "biuf" or X.ndim != 2:
        raise ValueError(f"X must be a 2-D array of pixels, numbers 0..255 or 0..1, one row per "
                         f"example; got {X.dtype} of shape {X.shape}")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features per row; the weights take {n_features}")
    if X.dtype != np.uint8 and X.size:
        low, high = X.min(), X.max()
        if not (np.isfinite(low) and np.isfinite(high) and 0 <= low and high <= 255):
            raise ValueError(f"X holds pixels from {low:g} to {high:g}: pass them as 0..255 or "
                             "as 0..1 (not standardised to mean 0, nor 16-bit)")
        if high > 1:
            X = np.rint(X).astype(np.uint8)            # raw pixels 0..255, as bytes
        elif X.dtype.kind != "f":
            X = X.astype(np.float32)                   # 0 or 1: paper or ink
    if y is None:
        return X, None
    y = np.asarray(y)
    if y.dtype.kind in "OUS":  # text labels, as fetch_openml gives them: '5', '0', ...
        try:
            y = y.astype(np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"y must hold the labels 0 to {num_classes - 1}; got "
                             f"{str(y.flat[0])!r}") from None
    if y.shape == (len(X), num_classes) and np.all(np.sort(y, axis=1) == np.eye(num_classes)[-1]):
        y = y.argmax(axis=1)                           # one-hot rows: a single 1 in each
    if y.shape != (len(X),) or len(y) == 0:
        raise ValueError("no examples: X and y are empty" if y.shape == (0,) == X.shape[:1] else
                         f"y must hold one label per row of X: X has {len(X):,} rows, y has "
                         f"shape {y.shape}")
    if y.dtype.kind not in "iuf" or not np.all(np.isfinite(y)) or np.any(y != np.round(y)) \
            or y.min() < 0 or y.max() >= num_classes:
        raise ValueError(f"y must hold integer labels from 0 to {num_classes - 1}")
    return X, (y.astype(np.intp) if y.dtype.kind == "f" else y)


# ============================================================================
# Plumbing. The network is complete above; what follows caches MNIST, loads other data,
# saves and loads weights, draws what the network does, and reads the command line.

class DataError(ValueError):
    """A data or weights file that cannot be used; the message names it and what was expected."""


class UsageError(ValueError):
    """A command-line flag out of its range; exit code 2, as for argparse's own errors."""


# ----------------------------------------------------------------------------
# MNIST cache: fetch_openml keeps the raw download, but parsing it takes ~20 s and ~1 GB.
# We keep the parsed uint8 arrays beside it, compressed (11 MB), and read those instead.

CACHE_NAME = "mnist_784_uint8.npz"


def default_data_home():
    """scikit-learn's data folder (as sklearn.datasets.get_data_home, without importing it)."""
    return os.environ.get("SCIKIT_LEARN_DATA", os.path.join("~", "scikit_learn_data"))


def load_mnist(data_home=None):
    """MNIST as fetch_mnist() gives it: fetched and parsed on the first call, then kept,
    compressed, in data_home, from where later calls read it in a fraction of a second."""
    data_home = os.path.expanduser(data_home or default_data_home())
    cached = read_mnist_cache(data_home)
    if cached is not None:
        return cached
    X, y = fetch_mnist(data_home)
    write_mnist_cache(data_home, X, y)
    return X, y


def read_mnist_cache(data_home):
    """(X, y) from the cache file, or None when there is none or it cannot be used."""
    path = os.path.join(data_home, CACHE_NAME)
    try:
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as f:
            X, y = f["X"], f["y"]
        if X.shape != (70000, 784) or X.dtype != np.uint8 or y.shape != (70000,) \
                or y.dtype != np.uint8 or y.max() > 9:
            raise ValueError(f"arrays X {X.dtype}{X.shape}, y {y.dtype}{y.shape} are not MNIST's")
        return X, y
    except FileNotFoundError:
        return None
    except Exception as e:  # any unreadable cache is rebuilt: it is only a copy
        print(f"note: cannot use the MNIST cache {path} ({e}); rebuilding it", flush=True)


def write_mnist_cache(data_home, X, y):
    """Write the cache atomically (atomic_write): a run reading it meanwhile never sees half a
    file. A folder that cannot be written is no error: the next run parses again."""
    path = os.path.join(data_home, CACHE_NAME)
    try:
        atomic_write(path, lambda f: np.savez_compressed(f, X=X, y=y))
    except OSError as e:
        print(f"note: could not write the MNIST cache {path} ({e.strerror or e}); "
              "continuing without it", flush=True)


def atomic_write(path, write):
    """Call write(file) on a temporary file beside path, then rename it to path."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
        os.chmod(tmp, 0o644)  # mkstemp makes the file private; a data file need not be
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


# ----------------------------------------------------------------------------
# Other data sources: --data PATH (.npz, IDX or CSV files) and scikit-learn's 8x8 digits.
# Each returns (X_train, y_train, X_test, y_test, description).

def load_digits_data(seed, test_fraction=0.2):
    """scikit-learn's bundled 1,797 8x8 digits (pixels 0..16 made 0..255), split at random."""
    from sklearn.datasets import load_digits
    X, y = load_digits(return_X_y=True)
    X = np.rint(X * (255 / 16)).astype(np.uint8)  # (1797, 64)
    return (*random_split(X, y.astype(np.uint8), test_fraction, seed),
            "scikit-learn digits (8x8)")


def random_split(X, y, test_fraction, seed):
    """(X_train, y_train, X_test, y_test), with a seeded random test_fraction of the rows."""
    return hold_out(X, y, round(len(y) * test_fraction), np.random.default_rng(seed))


def load_data_path(path, seed, test_fraction=0.2):
    """MNIST-format data from local files: a .npz, or a folder of IDX or CSV files."""
    takes = "--data takes a .npz file or a folder of IDX or CSV files"
    if os.path.isdir(path):
        files = os.listdir(path)
        if any(name.startswith(("train-images", "t10k-images")) for name in files):
            arrays = load_idx_folder(path, files)
        elif any(name.lower().endswith(".csv") for name in files):
            arrays = load_csv_folder(path, files)
        else:
            raise DataError(f"{path}: no IDX files (train-images-idx3-ubyte, ...) or CSV files "
                            "(mnist_train.csv, mnist_test.csv) in this folder")
    elif not os.path.exists(path):
        raise DataError(f"{path}: no such file or folder; {takes}")
    elif path.lower().endswith(".npz"):
        arrays = load_npz(path, seed, test_fraction)
    elif path.lower().endswith(".csv"):
        raise DataError(f"{path}: for CSV files, --data takes the folder that holds the training "
                        f"and the test CSV: --data {os.path.dirname(path) or '.'}")
    else:
        raise DataError(f"{path}: {takes}")
    X_train, y_train, X_test, y_test = arrays
    return (check_images(X_train, y_train, path + " (train)")
            + check_images(X_test, y_test, path + " (test)") + (path,))


def load_npz(path, seed, test_fraction):
    """This project's cache format (X, y) or Keras' mnist.npz (x_train, y_train, x_test, ...)."""
    try:
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
    except Exception as e:
        raise DataError(f"{path}: not a readable .npz file ({e})") from None
    if {"x_train", "y_train", "x_test", "y_test"} <= arrays.keys():
        return arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"]
    if {"X", "y"} <= arrays.keys():
        X, y = arrays["X"], arrays["y"]
        if X.ndim == 0 or y.ndim == 0 or len(X) != len(y):  # before the split pairs them up
            raise DataError(f"{path}: X holds {len(X) if X.ndim else 0:,} images and y "
                            f"{len(y) if y.ndim else 0:,} labels; they must pair up one to one")
        return split_mnist(X, y) if len(X) == 70000 else random_split(X, y, test_fraction, seed)
    raise DataError(f"{path}: expected arrays X and y, or x_train, y_train, x_test and y_test; "
                    f"found {', '.join(sorted(arrays)) or 'none'}")


def load_idx_folder(folder, files):
    """The four original MNIST files, gzipped or not: train-images-idx3-ubyte, ..."""
    def find(prefix):
        for name in sorted(files):
            if name.startswith(prefix):
                return os.path.join(folder, name)
        raise DataError(f"{folder}: missing {prefix}-idx{1 if 'labels' in prefix else 3}-ubyte"
                        "[.gz]; an IDX folder needs train-images, train-labels, t10k-images "
                        "and t10k-labels")
    return tuple(read_idx(find(prefix)) for prefix in
                 ("train-images", "train-labels", "t10k-images", "t10k-labels"))


def read_idx(path):
    """An IDX file: magic 0x00000801 (labels, (n,)) or 0x00000803 (images, (n, rows * cols)),
    then one big-endian uint32 per dimension, then the uint8 values."""
    try:
        with (gzip.open if path.endswith(".gz") else open)(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as e:  # includes a truncated or corrupt .gz
        raise DataError(f"{path}: cannot read ({e})") from None
    if len(raw) < 8:
        raise DataError(f"{path}: {'empty' if not raw else 'too short'}; expected an IDX file")
    magic = int.from_bytes(raw[:4], "big")
    if magic not in (0x801, 0x803):
        raise DataError(f"{path}: not an IDX file of uint8 labels or images (magic number "
                        f"{magic:#010x}, expected 0x00000801 or 0x00000803)")
    ndim = magic & 0xFF
    dims = [int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != math.prod(dims):
        raise DataError(f"{path}: header says {' x '.join(map(str, dims))} values, file holds "
                        f"{data.size}; the file is truncated or corrupt")
    return data.reshape(dims[0], -1) if ndim == 3 else data


def load_csv_folder(folder, files):
    """A training and a test CSV (names containing 'train' and 'test'): label first, then 784
    pixels per row; an optional header row is skipped."""
    def find(word):
        names = [n for n in sorted(files) if n.lower().endswith(".csv") and word in n.lower()]
        if not names:
            raise DataError(f"{folder}: no CSV file with '{word}' in its name "
                            "(expected e.g. mnist_train.csv and mnist_test.csv)")
        return os.path.join(folder, names[0])
    return read_csv(find("train")) + read_csv(find("test"))


def read_csv(path):
    """(X, y) from a CSV of rows 'label, pixel1, ..., pixel784'."""
    with open(path) as f:
        first = f.readline()
    if not first.strip():
        raise DataError(f"{path}: empty; expected rows of 'label, 784 pixels'")
    header = any(c.isalpha() and c not in "eE" for c in first)  # e.g. "label,1x1,1x2,..."
    try:
        rows = np.loadtxt(path, delimiter=",", skiprows=int(header), ndmin=2, dtype=np.float64)
    except ValueError:
        raise DataError(f"{path}: {bad_csv_line(path, header)}") from None
    if rows.shape[0] == 0:
        raise DataError(f"{path}: no rows of data after the header")
    return rows[:, 1:], rows[:, 0]


def bad_csv_line(path, header):
    """Find the first line of a CSV that np.loadtxt could not read, and say what is wrong."""
    with open(path) as f:
        lines = f.readlines()[int(header):]
    width = lines[0].count(",") + 1
    for number, line in enumerate(lines, 1 + int(header)):
        values = line.strip().split(",")
        if len(values) != width:
            return f"line {number} has {len(values)} values, the first row {width}"
        try:
            list(map(float, values))
        except ValueError:
            return f"line {number} holds something that is not a number"
    return "not a CSV of numbers"


def check_images(X, y, source):
    """A data file's (n, 784) uint8 pixels and (n,) uint8 labels, read as check_data reads
    them; DataError, naming the file, for anything else."""
    try:
        X, y = check_data(X, y)
    except ValueError as e:
        raise DataError(f"{source}: {e}") from None
    if X.shape[1] != 784:
        raise DataError(f"{source}: expected 28x28 images (784 pixels each), got an array of "
                        f"shape {X.shape}")
    if X.dtype != np.uint8:
        X = np.rint(X * 255).astype(np.uint8)  # scaled pixels, kept as bytes 0..255
    return X, y.astype(np.uint8)


def load_dataset(args):
    """The data a run asks for: --data, --dataset digits, or MNIST (falling back to digits
    when MNIST cannot be had and was not asked for by name)."""
    if args.data:
        return load_data_path(args.data, args.seed)
    if args.dataset == "digits":
        return load_digits_data(args.seed)
    try:
        X, y = load_mnist(args.data_home)
    except OSError as e:  # no network (URLError is an OSError), or a folder we cannot use
        reason = getattr(e, "reason", None) or e.strerror or e
        if args.dataset == "mnist":
            raise DataError(f"cannot get MNIST ({reason}); connect to the internet once, or "
                            "pass --data PATH with local MNIST files") from None
        print(f"note: cannot get MNIST ({reason}); training on scikit-learn's bundled 8x8 digits "
              "instead. For MNIST, connect to the internet once or pass --data PATH", flush=True)
        return load_digits_data(args.seed)
    except Exception as e:  # downloaded, but unreadable even after scikit-learn fetched it again
        folder = os.path.join(os.path.expanduser(args.data_home or default_data_home()), "openml")
        raise DataError(f"cannot read MNIST's OpenML files ({e}); delete {folder} and run "
                        "again") from None
    return (*split_mnist(X, y), "MNIST")


# ----------------------------------------------------------------------------
# Saving and loading weights: a plain .npz of arrays, nothing that can run code

def save_params(path, params, settings=None):
    """Write params to path (.npz) with the layer sizes and, optionally, the run's settings
    (a dict, as JSON text), atomically: a failed save never destroys the previous file."""
    weights = arrays(params)
    if not all(np.all(np.isfinite(P)) for P in weights.values()):
        raise ValueError("refusing to save weights that are not finite")
    sizes = np.array(network_sizes(params))
    extra = {} if settings is None else {"settings": np.array(json.dumps(settings))}
    atomic_write(path, lambda f: np.savez(f, **weights, sizes=sizes,
                                          activation=np.array(params["activation"]), **extra))


def network_sizes(params):
    """[784, 128, 10] for W1 (784, 128), W2 (128, 10): each layer's inputs, then the outputs."""
    L = depth(params)
    return [params["W1"].shape[0]] + [params[f"W{l}"].shape[1] for l in range(1, L + 1)]


def load_params(path):
    """Read weights written by save_params (one from before networks had any depth, with no
    activation, is ReLU's); DataError, naming the file and the layer, for anything else.
    It never unpickles, which could run code."""
    try:
        with open(path, "rb") as file, np.load(file, allow_pickle=False) as f:
            stored = {key: f[key] for key in f.files
                      if re.fullmatch(r"[WbKk][1-9][0-9]*|sizes|activation", key)}
    except FileNotFoundError:
        raise DataError(f"{path}: no such file; --load takes weights saved with --save") from None
    except Exception as e:  # not a zip, truncated, pickled objects, ...
        if "Object arrays" in str(e):
            raise DataError(f"{path}: holds pickled Python objects, which are never loaded "
                            "(unpickling can run code); a weights file holds only arrays"
                            ) from None
        raise DataError(f"{path}: not a weights file saved with --save (an .npz of arrays)"
                        ) from None
    L = max([int(key[1:]) for key in stored if key[0] in "Wb"] + [2])  # layers: W1 .. WL
    keys = [f"{P}{l}" for l in range(1, L + 1) for P in "Wb"]
    missing = [key for key in (*keys, "sizes") if key not in stored]
    if missing:
        raise DataError(f"{path}: missing {', '.join(missing)}; a weights file saved with "
                        f"--save holds W1, b1, ..., W{L}, b{L} and sizes")
    sizes = stored["sizes"]
    if sizes.shape != (L + 1,) or not np.issubdtype(sizes.dtype, np.integer) or sizes.min() < 1:
        raise DataError(f"{path}: sizes must be {L + 1} positive integers, the widths of its "
                        f"{L} layers' inputs and outputs (got {sizes.tolist()})")
    sizes = [int(size) for size in sizes]
    network = "-".join(map(str, sizes))
    for l in range(1, L + 1):  # each layer takes what the one before it gives
        for key, shape in ((f"W{l}", (sizes[l - 1], sizes[l])), (f"b{l}", (sizes[l],))):
            A = stored[key]
            if A.shape != shape or A.dtype not in (np.float32, np.float64):
                raise DataError(f"{path}: layer {l}: {key} is {A.dtype} {A.shape}; a {network} "
                                f"network needs float32 or float64 {shape}")
            if not np.all(np.isfinite(A)):
                raise DataError(f"{path}: layer {l}: {key} holds inf or nan values")
    convs = load_conv(path, stored, sizes[0])  # a conv network's kernels, in order (2b)
    activation = str(stored.get("activation", "relu"))
    if activation not in ACTIVATIONS:
        raise DataError(f"{path}: activation {activation[:40]!r} is not one of "
                        f"{', '.join(ACTIVATIONS)}")
    return {"activation": activation, **{key: stored[key] for key in (*convs, *keys)}}


def load_conv(path, stored, n_in):
    """The keys K1, k1, ..., KLc, kLc of the conv layers in stored, checked to chain from one
    grey channel to W1's n_in rows; DataError otherwise."""
    Lc = max([int(key[1:]) for key in stored if key[0] in "Kk"] + [0])
    C = 1
    for l in range(1, Lc + 1):
        K, k = stored.get(f"K{l}"), stored.get(f"k{l}")
        if K is None or k is None or K.shape != (len(k), 3, 3, C) or k.ndim != 1 \
                or K.dtype != stored["W1"].dtype or k.dtype != K.dtype:
            raise DataError(f"{path}: conv layer {l}: K{l} and k{l} must be 3x3 kernels of "
                            f"{C} channel{'s' * (C > 1)}, (F, 3, 3, {C}) and (F,), "
                            f"{stored['W1'].dtype} like W1")
        if not (np.all(np.isfinite(K)) and np.all(np.isfinite(k))):
            raise DataError(f"{path}: conv layer {l}: K{l} or k{l} holds inf or nan values")
        C = len(k)
    if Lc and (n_in % C or math.isqrt(n_in // C) ** 2 != n_in // C):
        raise DataError(f"{path}: W1 takes {n_in} inputs, not the {C} square maps that conv "
                        f"layer {Lc} gives")
    return [f"{P}{l}" for l in range(1, Lc + 1) for P in "Kk"]


# ----------------------------------------------------------------------------
# Looking inside: digits drawn in the terminal, the most confident mistakes, your own
# digit, the gradient check as a table, curves and weight pictures, a record of the run

def draw_digit(pixels, ascii=False):
    """A square image (0..255) as lines of text, a character per pixel across and two down
    (a 28x28 digit is 28 columns, 14 lines): half blocks for ink, or ascii by darkness."""
    side = math.isqrt(pixels.size)
    image = pixels.reshape(side, side).astype(np.float64) / 255
    if side % 2:
        image = np.vstack([image, np.zeros((1, side))])
    top, bottom = image[0::2], image[1::2]  # (side/2, side) each: one line of text
    if ascii:
        ramp = np.array(list(" .:-=+*#%@"))
        return ["".join(row) for row in ramp[np.minimum((top + bottom) * 5, 9).astype(int)]]
    glyphs = np.array([" ", "▄", "▀", "█"])  # by 2 * (top is ink) + (bottom is ink)
    return ["".join(row) for row in glyphs[2 * (top >= 0.5) + (bottom >= 0.5)]]


def side_by_side(blocks, width=80, gap=3):
    """Lay out blocks of text lines left to right, as many to a row as fit in width."""
    lines, row = [], []
    for block in blocks + [None]:
        if row and (block is None or sum(max(map(len, b)) + gap for b in row + [block]) - gap
                    > width):
            height = max(len(b) for b in row)
            padded = [b + [""] * (height - len(b)) for b in row]
            lines += [(" " * gap).join(cell.ljust(max(map(len, b))) for cell, b in
                                       zip(cells, padded)).rstrip() for cells in zip(*padded)]
            lines.append("")
            row = []
        if block is not None:
            row.append(block)
    return lines


def top_classes(p, k=3):
    """'9: 87.1%  4: 12.0%  7: 0.5%' for one row of probabilities."""
    return "  ".join(f"{c}: {100 * p[c]:.1f}%" for c in np.argsort(-p, kind="stable")[:k])


def show_mistakes(params, X, y, n, ascii=False):
    """The n test digits read wrong most confidently, drawn with their label and answers."""
    P = predict_proba(params, X)                        # (n_test, 10)
    worst, wrong = confident_mistakes(P, y, n)
    blocks = [[f"#{i}: true {y[i]}, said {P[i].argmax()}", top_classes(P[i], 2)]
              + draw_digit(X[i], ascii) for i in worst]
    return [f"the {len(worst)} most confident mistakes of {wrong} (test images):", "",
            *side_by_side(blocks)]


def moved_accuracy(params, X, y, d):
    """The mean accuracy on the images X (n, side * side) moved d pixels up, down, left and
    right: 1 at any d for a network that reads a digit wherever it is."""
    return float(np.mean([accuracy(predict(params, move_images(X, dy, dx)), y)
                          for dy, dx in ((-d, 0), (d, 0), (0, -d), (0, d))]))


def fool(params, X, y, eps):
    """The fast gradient sign method (Goodfellow et al., 2014): X (n, 784) in [0, 1] moved by
    clip(X + eps sign(dloss/dX), 0, 1), no pixel by more than eps. eps: a number, or one per
    row, (n, 1)."""
    Y = one_hot(y, params[f"W{depth(params)}"].shape[1], X.dtype)
    return np.clip(X + np.asarray(eps, X.dtype) * np.sign(input_gradient(params, X, Y)), 0, 1)


def attack(params, X, y, epsilons, rng):
    """For each eps, the accuracy on fool()'s images and on random +-eps noise, and the mean
    confidence of the fooled answers; with, for the largest eps, the images and answers."""
    X = scale_pixels(X, params["W1"].dtype)
    sweep = []
    for eps in sorted(epsilons):
        X_adv = fool(params, X, y, eps)
        P = predict_proba(params, X_adv)                                   # (n, 10)
        noise = X.dtype.type(eps) * rng.choice(np.array([-1, 1], X.dtype), X.shape)
        wrong = P.argmax(axis=1) != y
        sweep.append({"eps": eps, "accuracy": 1 - float(np.mean(wrong)),
                      "noise_accuracy": accuracy(predict(params, np.clip(X + noise, 0, 1)), y),
                      "confidence": float(P.max(axis=1)[wrong].mean()) if wrong.any() else None})
    return sweep, X_adv, P.argmax(axis=1)


def attack_report(params, X, y, epsilons, rng, ascii=False, show=3):
    """--attack: a line per eps, then `show` digits fooled at the largest eps, each clean,
    fooled, and the pixels raised. Returns (lines, the sweep) for --log."""
    sweep, X_adv, answers = attack(params, X, y, epsilons, rng)
    lines = []
    for r in sweep:
        eps = f"{r['eps']:.2f}" if round(r["eps"], 2) == r["eps"] else f"{r['eps']:g}"  # 0.10
        lines.append(f"attack eps {eps}: test accuracy {100 * r['accuracy']:.1f}% (random noise "
                     f"of the same size: {100 * r['noise_accuracy']:.1f}%)" + (
                         "" if r["confidence"] is None else
                         f", fooled with {100 * r['confidence']:.0f}% confidence"))
    clean, X, eps = predict(params, X), scale_pixels(X, np.float32), sweep[-1]["eps"]
    blocks = []
    for i in np.flatnonzero((clean == y) & (answers != y))[:show]:
        blocks += [[f"#{i}: {y[i]}, read {clean[i]}"] + draw_digit(255 * X[i], ascii),
                   [f"+ eps {eps:g}: read {answers[i]}"] + draw_digit(255 * X_adv[i], ascii),
                   ["the change: pixels raised"] + draw_digit(255 * (X_adv[i] > X[i]), ascii)]
    if blocks:
        lines += ["", f"fooled at eps {eps:g}: the digit, the fooled image, the change",
                  *side_by_side(blocks, width=3 * 28 + 2 * 3)]
    return lines, sweep


def dream(params, steps=300, step=0.05, l2=0.0, blur=0):
    """What each class looks like to the network: for each class c, an image grown from black
    by `steps` sign steps of `step` against dloss/dX for label c, in [0, 1] (cs231n's class
    visualisation). Returns the (10, 784) images and their (10, 10) probabilities. l2 adds
    (l2 / 2) ||x||^2 to the loss, so that only ink worth its place stays; blur > 0 takes the
    mean of each 3x3 neighbourhood every `blur` steps."""
    dtype, k = params["W1"].dtype, params[f"W{depth(params)}"].shape[1]
    X = np.zeros((k, n_inputs(params)), dtype)                       # (10, 784), black
    Y = np.eye(k, dtype=dtype)                                       # image c dreams of c
    side = math.isqrt(X.shape[1])
    for t in range(1, steps + 1):
        G = k * input_gradient(params, X, Y)              # (10, 784): each image's own loss
        X = np.clip(X - dtype.type(step) * np.sign(G + dtype.type(l2) * X), 0, 1)
        if blur and t % blur == 0:                        # the mean of each 3x3 neighbourhood
            padded = np.pad(X.reshape(k, side, side), ((0, 0), (1, 1), (1, 1)), mode="edge")
            X = sum(padded[:, i:i + side, j:j + side] for i in range(3)
                    for j in range(3)).reshape(k, -1) / dtype.type(9)
    return X, predict_proba(params, X)


def dream_report(params, ascii=False):
    """--dream: the ten dreams side by side, each with its class's probability; (lines, X)."""
    X, P = dream(params)
    blocks = [[f"{c}: p = {P[c, c]:.2f}"] + draw_digit(255 * X[c], ascii) for c in range(len(X))]
    return ["what each digit looks like to the network (gradient ascent from black):", ""] + \
        side_by_side(blocks, width=4 * 28 + 3 * 3), X


def confident_mistakes(P, y, n):
    """The n wrong answers of probabilities P (n_test, 10), most confident first, and how
    many answers were wrong."""
    wrong = np.flatnonzero(P.argmax(axis=1) != y)
    return wrong[np.argsort(-P[wrong].max(axis=1), kind="stable")][:n], len(wrong)


# Your own digit, prepared as MNIST's were: white ink on black, cropped, made bilevel, its
# strokes brought to MNIST's width, scaled to 20 pixels, centred by mass in 28x28.

def read_image(path):
    """A grayscale image as a 2-D float array: .npy, .csv (rows of numbers), .pgm (P2 or P5)
    or .png and other formats with Pillow."""
    read = {".npy": lambda path: np.load(path, allow_pickle=False), ".pgm": read_pgm,
            ".csv": lambda path: np.loadtxt(path, delimiter=",", ndmin=2)}
    try:
        image = read.get(os.path.splitext(path.lower())[1], read_with_pillow)(path)
    except DataError:
        raise
    except (OSError, ValueError) as e:
        raise DataError(f"{path}: cannot read it as an image ({e})") from None
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 1 and math.isqrt(image.size) ** 2 == image.size:
        image = image.reshape(math.isqrt(image.size), -1)  # a flat (784,) row is 28x28
    if image.ndim != 2 or image.size == 0 or not np.all(np.isfinite(image)):
        raise DataError(f"{path}: expected a 2-D grayscale image of finite numbers, got shape "
                        f"{image.shape}")
    return image


READ_SIDE = 1600  # pixels: a larger image is reduced while it is read, to 1600 to 3200 wide


def read_with_pillow(path):
    """A .png, .jpg or other image as a 2-D float array, read by Pillow (pillow_gray). A phone
    photo is reduced while it is read (a JPEG decoded at 1/2 to 1/8 size, any image still 2
    READ_SIDE wide averaged over k x k blocks): mnist_style averages areas anyway, so the
    digit comes out the same in a fraction of the time and memory."""
    try:
        from PIL import Image
    except ImportError:
        raise DataError(f"{path}: reading this format needs Pillow (pip install pillow);"
                        " or save it as .pgm, .npy or .csv") from None
    try:
        with warnings.catch_warnings():  # Pillow only warns up to twice its limit; refuse all
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            picture = Image.open(path)
    except (Image.DecompressionBombWarning, Image.DecompressionBombError) as e:
        size = re.search(r"\((\d+) pixels\)", str(e))  # "Image size (900000000 pixels) exceeds"
        size = f"{int(size[1]):,} pixels" if size else "too many pixels"
        raise DataError(f"{path}: {size}, more than the {Image.MAX_IMAGE_PIXELS:,} read here "
                        "(Pillow's guard against decompression bombs): save a smaller copy, "
                        "a few hundred pixels across is plenty") from None
    with picture:
        side = max(picture.size)
        if side >= 2 * READ_SIDE:
            picture.draft("L", tuple(n * READ_SIDE // side for n in picture.size))  # JPEG only
        return pillow_gray(picture, max(1, max(picture.size) // READ_SIDE))


GRAY_MODES = ("1", "L", "I", "I;16", "I;16B", "I;16L", "F")  # Pillow's one-channel modes


def pillow_gray(picture, k=1):
    """A Pillow image as a 2-D float array, each k x k block averaged first; gray keeps its
    range (16-bit: 0..65535). A digit drawn on a transparent background (a browser canvas)
    is its opacity, whatever the ink's colour. One channel is picked before averaging."""
    if picture.mode in ("RGBA", "LA", "PA") or "transparency" in picture.info:
        alpha = (picture if picture.mode in ("RGBA", "LA") else picture.convert("RGBA"))
        alpha = alpha.getchannel("A")
        lowest, highest = alpha.getextrema()
        if lowest < highest:
            picture = alpha
    if picture.mode not in GRAY_MODES:
        if k > 1 and picture.mode in ("RGB", "CMYK", "YCbCr"):
            picture, k = picture.reduce(k), 1  # (reduce would premultiply RGBA: a full copy)
        picture = picture.convert("L")
    if k > 1:
        if picture.mode == "1" or picture.mode.startswith("I;16"):
            picture = picture.convert("L" if picture.mode == "1" else "I")  # reduce takes these
        picture = picture.reduce(k)
    return np.asarray(picture, dtype=np.float64)


def read_pgm(path):
    """A PGM image: P2 (numbers as text) or P5 (bytes); header 'P5 width height maxval',
    '#' starting a comment."""
    with open(path, "rb") as f:
        data = f.read()
    gap = rb"(?:\s|#[^\n]*\n)+"  # white space and comments
    header = re.match(rb"(P[25])" + 3 * (gap + rb"(\d+)") + rb"\s", data)
    if not header:
        raise ValueError(f"header {data[:20]!r}: expected P2 or P5, width, height, maxval")
    width, height, maxval = map(int, header.groups()[1:])
    if not (width > 0 and height > 0 and 0 < maxval < 65536):
        raise ValueError(f"header {width} {height} {maxval} is not a valid PGM header")
    if header[1] == b"P2":
        values = np.array(data[header.end():].split(), dtype=np.float64)
    else:
        values = np.frombuffer(data, dtype=np.uint8 if maxval < 256 else ">u2",
                               count=width * height, offset=header.end()).astype(np.float64)
    return values[:width * height].reshape(height, width) * (255 / maxval)


def resize(image, height, width):
    """Area resampling: each output pixel is the average of the input area it covers
    (R_rows @ image @ R_cols^T, with R[i, j] = the share of input pixel j in output pixel i)."""
    def shares(n_in, n_out):
        edges = np.linspace(0, n_in, n_out + 1)  # output pixel i spans edges[i]..edges[i+1]
        overlap = (np.minimum(edges[1:, None], np.arange(1, n_in + 1))
                   - np.maximum(edges[:-1, None], np.arange(n_in)))
        R = np.clip(overlap, 0, None)
        return R / R.sum(axis=1, keepdims=True)
    return shares(image.shape[0], height) @ image @ shares(image.shape[1], width).T


STROKE = 0.1  # MNIST's median stroke width over its longer side, measured as in stroke_width


def mnist_style(image):
    """Any grayscale digit image (h, w) -> (784,) uint8, prepared the way MNIST's were."""
    image = image - image.min()
    if image.max() == 0:
        raise DataError("the image is blank: there is no digit to read")
    image = image / image.max()                               # 0..1
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    if border.mean() > 0.5:
        image = 1 - image                                     # dark ink on light paper
    rows, cols = np.nonzero(image > 0.2)
    image = image[rows.min():rows.max() + 1, cols.min():cols.max() + 1]  # crop to the ink
    # NIST's digits were bilevel when MNIST scaled them down. Make ours bilevel too, at a
    # working size (the longer side 100 to 300 pixels) where a 2-pixel pen is still a pixel.
    scale = min(max(max(image.shape), 100), 300) / max(image.shape)
    image = resize(image, *(max(1, round(n * scale)) for n in image.shape))
    ink = image > 0.5                                         # (h, w) bool
    # A 2-pixel pen and a 30-pixel marker draw the same digit: give its strokes MNIST's width
    steps = round((STROKE * max(ink.shape) - stroke_width(ink)) / 2)
    ink = grow(np.pad(ink, max(steps, 0)), steps)             # pad: room to grow into
    if not ink.any():
        raise DataError("the image is blank: there is no digit to read")
    rows, cols = np.nonzero(ink)
    image = ink[rows.min():rows.max() + 1, cols.min():cols.max() + 1].astype(np.float64)
    scale = 20 / max(image.shape)                            # longest side -> 20 pixels
    h, w = (max(1, round(n * scale)) for n in image.shape)
    image = resize(image, h, w)                               # area averaging: grey edges
    image /= image.max()                                      # the strokes' cores at full ink
    mass = image.sum()
    cy = (image.sum(axis=1) @ (np.arange(h) + 0.5)) / mass   # centre of mass, in pixels
    cx = (image.sum(axis=0) @ (np.arange(w) + 0.5)) / mass
    top = min(max(round(14 - cy), 0), 28 - h)                # put it at the centre, 14, 14
    left = min(max(round(14 - cx), 0), 28 - w)
    canvas = np.zeros((28, 28))
    canvas[top:top + h, left:left + w] = image
    return np.rint(canvas * 255).astype(np.uint8).reshape(784)


def stroke_width(ink):
    """The mean stroke width of a bool image: a stroke of width w and length L covers w L
    pixels, 2 L of them on its edge, so w = 2 area / edge."""
    P = np.pad(ink, 1)
    inner = P[:-2, 1:-1] & P[2:, 1:-1] & P[1:-1, :-2] & P[1:-1, 2:]  # ink on all four sides
    return 2 * np.count_nonzero(ink) / np.count_nonzero(ink & ~inner)


def grow(ink, steps):
    """Thicken (steps > 0) or thin (steps < 0) every stroke by |steps| pixels a side, with
    3x3 squares and plus-shaped crosses in turn, so that the pen tip is near round."""
    square = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
    cross = [(0, 0), (-1, 0), (1, 0), (0, -1), (0, 1)]
    h, w = ink.shape
    for step in range(abs(steps)):
        P = np.pad(ink, 1)
        near = [P[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy, dx in (square, cross)[step % 2]]
        ink = np.logical_or.reduce(near) if steps > 0 else np.logical_and.reduce(near)
    return ink


def predict_files(params, paths, ascii=False):
    """Read, prepare and classify each image; lines showing what the network sees and says."""
    blocks = []
    for path in paths:
        x = mnist_style(read_image(path))[None, :]            # (1, 784)
        p = predict_proba(params, x)[0]
        blocks.append([f"{os.path.basename(path)}: {p.argmax()}", top_classes(p)]
                      + draw_digit(x[0], ascii))
    return side_by_side(blocks)


def gradient_table(rows):
    """The rows of gradient_check as a table, with a hint for any parameter that fails."""
    return [f"{'parameter':<10} {'shape':<12} {'max |grad|':>11} {'max abs error':>14} "
            f"{'relative error':>15}  result"] + [
        f"{r['name']:<10} {str(r['shape']):<12} {r['max_grad']:>11.2e} {r['abs_error']:>14.2e} "
        f"{r['rel_error']:>15.2e}  {'pass' if r['ok'] else 'FAIL'}" for r in rows] + [
        f"hint: d{r['name']} from backward_prop disagrees with the numerical derivative; check "
        f"the line that computes d{r['name']} and the gradients it is made from (a missing / n, "
        "a wrong axis, a transpose)" for r in rows if not r["ok"]]


def plot_run(path, history, params):
    """Per epoch, the loss, accuracy, how fast each layer learns and its stuck units; and W1's
    columns as pictures: the templates the first layer's units look for."""
    import matplotlib
    matplotlib.use("Agg")  # draw to a file; no window
    import matplotlib.pyplot as plt
    import matplotlib.ticker
    epochs, L = [r["epoch"] for r in history], len(history[0]["db_norm"])
    kind = "dead" if "dead" in history[0] else "saturated"
    series = lambda key, scale=1: [scale * r[key] for r in history]  # noqa: E731
    panels = [  # (title, {label: one value per epoch}, y scale)
        ("training loss", {"": series("loss")}, "log"),
        ("accuracy (%)", {"train": series("train_acc", 100), **({} if history[0]["val_acc"] is
                          None else {"validation": series("val_acc", 100)})}, "linear"),
        ("how fast each layer learns: ||dloss/db_l||", {
            f"layer {l}{' (output)' if l == L else ''}": [r["db_norm"][l - 1] for r in history]
            for l in range(1, L + 1)}, "log"),
        ({"dead": "dead units: on for no example (%)",
          "saturated": "saturated outputs: slope < 2% of its most (%)"}[kind],
         {f"layer {l}": [100 * r[kind][l - 1] for r in history] for l in range(1, L)}, "linear")]
    fig = plt.figure(figsize=(14, 10))
    grid = fig.add_gridspec(4, 2, width_ratios=[1, 2.2])
    for row, (title, lines, yscale) in enumerate(panels):
        ax = fig.add_subplot(grid[row, 0])
        for label, values in lines.items():
            ax.plot(epochs, values, label=label)
        ax.set(title=title, yscale=yscale)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
        if "" not in lines:
            ax.legend(fontsize="small")
    ax.set(xlabel="epoch", ylim=(-2, 102))
    W1 = params["W1"] if "K1" not in params else params["K1"].reshape(len(params["K1"]), -1).T
    side, hidden = math.isqrt(W1.shape[0]), W1.shape[1]       # (784, hidden) or K1's (9, F)
    cols = math.ceil(math.sqrt(hidden * 2))                   # a 2:1 grid: 16 x 8 for 128
    rows = math.ceil(hidden / cols)
    tiles = np.full((rows * cols, side + 1, side + 1), np.nan)  # a gap right of and below each
    tiles[:hidden, :side, :side] = (W1 / np.maximum(np.abs(W1).max(axis=0), 1e-30)  # each on
                                    ).T.reshape(hidden, side, side)             # its own scale
    tiles = tiles.reshape(rows, cols, side + 1, side + 1).transpose(0, 2, 1, 3)
    ax = fig.add_subplot(grid[:, 1])
    ax.imshow(tiles.reshape(rows * (side + 1), cols * (side + 1)), cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set(title=f"{'K1' if side == 3 else 'W1'}: what each of the {hidden} first-layer "
                 f"{'filters' if side == 3 else 'units'} looks for (red: ink raises it, blue: "
                 "ink lowers it)")
    ax.axis("off")
    fig.tight_layout()
    atomic_write(path, lambda f: fig.savefig(f, format="png", dpi=100))
    plt.close(fig)


def run_record(args, history, test_accuracy, seconds, X_train, y_train, train_accuracy,
               attack=None):
    """Everything to compare or repeat a run, for --log: settings, the training data's hash,
    versions, history, the test accuracy and the accuracy on the training images (no
    dropout), whose gap to the test accuracy is how much it overfits."""
    import hashlib
    import platform
    from importlib.metadata import version
    data = hashlib.sha256(np.ascontiguousarray(X_train).tobytes() +
                          np.ascontiguousarray(y_train).tobytes())
    return {"settings": {k: v for k, v in vars(args).items() if k not in ("log", "plot",
                                                                          "predict")},
            "seed": args.seed, "training_data_sha256": data.hexdigest(),
            "training_examples": len(y_train),
            "versions": {"python": platform.python_version(), "numpy": np.__version__,
                         "scikit-learn": version("scikit-learn")},
            "history": history, "test_accuracy": test_accuracy,
            "train_accuracy": train_accuracy, "seconds": seconds,
            **({"attack": attack} if attack else {})}


# ----------------------------------------------------------------------------
# The command line

class ArgumentParser(argparse.ArgumentParser):
    def error(self, message):
        """A bad flag gets one line, not argparse's usage block, and exit code 2."""
        self.exit(2, usage_line(message) + "\n")


def usage_line(message, prog=None):
    """The one line a bad flag gets: 'nn_from_scratch.py: error: ... (see --help)'."""
    return f"{prog or os.path.basename(sys.argv[0])}: error: {message} (see --help)"


def parse_args(argv):
    p = make_parser()
    args = p.parse_args(argv)
    try:
        check_args(args)
    except UsageError as e:
        p.error(str(e))
    return args


def make_parser(add_help=True):
    p = ArgumentParser(add_help=add_help,
                       description="Train a neural network on MNIST with NumPy alone: "
                                   "784-128-10 by default, or as many hidden layers as you like.")
    p.add_argument("--hidden", type=width, nargs="+", default=None, metavar="W",
                   help=f"one width per hidden layer: --hidden 256 128 makes 784-256-128-10 "
                        f"(default: {HIDDEN})")
    p.add_argument("--conv", type=int, nargs="+", default=None, metavar="C",
                   help="convolutional layers before the hidden ones, C channels each: a 3x3 "
                        "'same' convolution, the activation, 2x2 max-pooling (--conv 8 16)")
    p.add_argument("--activation", choices=list(ACTIVATIONS), default=ACTIVATION,
                   help="the hidden layers' activation, with He initialisation for relu and "
                        "Glorot's for sigmoid and tanh (default: %(default)s)")
    p.add_argument("--init", choices=INITS, default=INIT,
                   help="the initial weights: he or glorot (default: he for relu, glorot for "
                        "others), or a lesson: zeros (all 0) or normal (N(0, 1): far too large)")
    p.add_argument("--loss", choices=list(LOSSES), default=LOSS,
                   help="cross-entropy, or mse: squared error on the probabilities, which "
                        "learns slowly from confident mistakes (default: %(default)s)")
    p.add_argument("--dropout", type=float, default=DROPOUT, metavar="P",
                   help="drop each hidden unit with probability P at each training step "
                        "(inverted dropout; 0 <= P < 1; default: 0, none)")
    p.add_argument("--epochs", type=int, default=EPOCHS,
                   help="passes over the training set (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=None,
                   help=f"examples per gradient step (default: {BATCH_SIZE}, or all the "
                        "training images if there are fewer)")
    p.add_argument("--lr", type=float, default=None,
                   help="peak learning rate (default: each optimiser's own: "
                        + ", ".join(f"{lr:g} for {name}" for name, lr in LR.items())
                        + f"; less for a batch under {BATCH_SIZE}, momentum over {MOMENTUM} "
                          "or more hidden layers, more for sigmoid)")
    p.add_argument("--optimizer", choices=list(LR), default=OPTIMIZER,
                   help="sgd, momentum (SGD with momentum) or adam (default: %(default)s)")
    p.add_argument("--schedule", choices=SCHEDULES, default=SCHEDULE,
                   help="how the learning rate falls over the run: cosine to 0, step (x0.1 at "
                        "50%% and 75%% of the run) or constant (default: %(default)s)")
    p.add_argument("--momentum", type=float, default=MOMENTUM,
                   help="momentum for --optimizer momentum (default: %(default)s)")
    p.add_argument("--weight-decay", type=float, default=WEIGHT_DECAY,
                   help="L2 penalty on the weights, 0 for none (default: %(default)s)")
    p.add_argument("--augment", action=argparse.BooleanOptionalAction, default=None,
                   help="shift each training batch by up to one pixel (default: on for 28x28 "
                        "images, MNIST's size, where it helps; off for others)")
    p.add_argument("--dtype", choices=["float32", "float64"], default=np.dtype(DTYPE).name,
                   help="the precision the network computes in (default: %(default)s)")
    p.add_argument("--seed", type=int, default=SEED, help="seeds the split, the initial "
                   "weights and the shuffling (default: %(default)s)")
    p.add_argument("--subset", type=int, default=None, metavar="N",
                   help="train on N random training images only, for a quick run")
    p.add_argument("--dataset", choices=["mnist", "digits"], default=None,
                   help="mnist, or digits (scikit-learn's bundled 8x8 digits); unset: MNIST, "
                        "or the digits with a note if MNIST cannot be had")
    p.add_argument("--data", metavar="PATH", default=None,
                   help="MNIST-format files instead: a .npz (X, y or x_train, y_train, x_test, "
                        "y_test) or a folder of the 4 IDX files or of train/test CSV files")
    p.add_argument("--data-home", metavar="DIR", default=None,
                   help="where MNIST is downloaded and cached (default: scikit-learn's data "
                        "folder, $SCIKIT_LEARN_DATA or ~/scikit_learn_data)")
    p.add_argument("--save", metavar="PATH", default=None, help="save the trained weights (.npz)")
    p.add_argument("--load", metavar="PATH", default=None,
                   help="evaluate weights saved with --save on the test set, without training")
    looks = p.add_argument_group("looking inside")
    looks.add_argument("--show-mistakes", type=int, default=0, metavar="N",
                       help="draw the N test digits the network got wrong most confidently")
    looks.add_argument("--attack", nargs="+", type=float, metavar="EPS",
                       help="fool the network: the test accuracy when every pixel moves by EPS "
                            "against it (FGSM), beside random noise, and three fooled digits")
    looks.add_argument("--dream", nargs="?", const="", metavar="FILE.npy",
                       help="draw what each digit looks like to the network, grown by gradient "
                            "ascent; with FILE.npy, save the ten images, (10, 784) in [0, 1]")
    looks.add_argument("--predict", nargs="+", metavar="FILE",
                       help="with --load: classify your own digit images (.png with Pillow, "
                            ".pgm, .npy, .csv), prepared the way MNIST's were")
    looks.add_argument("--gradcheck", action="store_true",
                       help="check backprop against numerical derivatives on a small float64 "
                            "network (20-8-10, or 20-W...-10 with --hidden), print a table, exit")
    looks.add_argument("--plot", metavar="FILE.png", help="save loss and accuracy curves, each "
                       "layer's learning speed and W1's templates (needs matplotlib)")
    looks.add_argument("--log", metavar="FILE.json", help="save a JSON record of the run: "
                       "settings, data hash, versions, history, result")
    looks.add_argument("--moved", nargs="+", type=int, metavar="D",
                       help="the test accuracy on the test digits moved D pixels up, down, left "
                            "and right (the mean of the four), a line per D: does it read a "
                            "digit anywhere?")
    looks.add_argument("--ascii", action="store_true",
                       help="draw digits with plain characters instead of Unicode blocks")
    looks.add_argument("--serve", action="store_true",
                       help="the lab: a page to start and watch runs and draw digits, until "
                            "Ctrl-C (with --load: for saved weights; needs the folder lab/)")
    looks.add_argument("--port", type=int, default=8000,
                       help="the page's port; 0 picks a free one (default: %(default)s)")
    looks.add_argument("--host", default="127.0.0.1", help="the address to serve on; another "
                       "than 127.0.0.1 shares the page on the network (default: %(default)s)")
    return p


def width(text):
    """argparse type for --hidden: a whole number of at least 1."""
    if not re.fullmatch(r"\+?[0-9]+", text.strip()) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"a width must be a whole number >= 1, one per "
                                         f"hidden layer (got {text!r})")
    return int(text)


MAX_HIDDEN = 100_000         # 784 x 100,000 float32 weights are 300 MB
MAX_CHANNELS = 256           # a batch's 3x3 windows of 256 maps of 14x14 are 600 MB
MAX_WEIGHTS = 100_000_000    # 400 MB in float32, before the optimiser's state and gradients


def check_args(args):
    """Check every flag before any work starts; UsageError names the flag and its range."""
    if max(args.hidden or [0]) > MAX_HIDDEN:
        raise UsageError(f"--hidden widths must be from 1 to {MAX_HIDDEN:,} (got "
                         f"{max(args.hidden):,})")
    if max(args.conv or [0]) > MAX_CHANNELS:
        raise UsageError(f"--conv channels must be from 1 to {MAX_CHANNELS} (got "
                         f"{max(args.conv)})")
    first = args.conv[-1] * (28 >> len(args.conv)) ** 2 if args.conv else 784  # for 28x28
    sizes = [first, *(args.hidden or [HIDDEN]), NUM_CLASSES]
    weights = sum(a * b for a, b in zip(sizes, sizes[1:]))
    if weights > MAX_WEIGHTS:
        raise UsageError(f"--hidden {' '.join(map(str, args.hidden))} makes {weights:,} weights "
                         f"for 28x28 images; at most {MAX_WEIGHTS:,} fit in memory")
    check_flags(args)  # train()'s own checks, in the flags' names
    if args.subset is not None and args.subset < 1:
        raise UsageError(f"--subset must be a whole number >= 1 (got {args.subset})")
    for flag, path in (("--save", args.save), ("--plot", args.plot), ("--log", args.log),
                       ("--dream", args.dream)):
        folder = os.path.dirname(os.path.abspath(path or "."))
        if path and (os.path.isdir(path) or not os.path.isdir(folder)
                     or not os.access(folder, os.W_OK)):
            raise UsageError(f"{flag} {path}: cannot write a file there (is the folder there "
                             "and writable?)")
    if args.moved and not all(0 <= d < 28 for d in args.moved):
        raise UsageError(f"--moved takes distances in pixels from 0 to 27 (got "
                         f"{' '.join(map(str, args.moved))})")
    if args.show_mistakes < 0:
        raise UsageError(f"--show-mistakes must be a whole number >= 0 (got {args.show_mistakes})")
    if args.predict and not args.load:
        raise UsageError("--predict needs --load MODEL.npz: weights saved earlier with --save")
    if args.attack and not all(0 < eps <= 1 for eps in args.attack):
        raise UsageError("--attack takes sizes of change per pixel, each > 0 and <= 1, in the "
                         f"network's pixel scale [0, 1] (got {' '.join(map(str, args.attack))})")
    if args.load and (args.plot or args.log):
        raise UsageError("--plot and --log describe a training run; they do not go with --load")
    if args.serve and args.predict:
        raise UsageError("--serve and --predict each read your digits; use one at a time")
    if not 0 <= args.port <= 65535:
        raise UsageError(f"--port must be from 0 to 65535, 0 for any free one (got {args.port})")


def check_flags(args, n_train=None):
    """check_settings on the flags that train() takes, each named as a flag: --batch-size."""
    try:
        check_settings(args, n_train, name=lambda key: "--" + key.replace("_", "-"))
    except ValueError as e:
        raise UsageError(str(e)) from None


def main(argv=None):
    args = parse_args(argv)  # a bad flag exits here, with code 2
    interrupted = threading.Event()
    try:
        if args.gradcheck:
            return run_gradcheck(args)
        if args.predict:
            print("\n".join(predict_files(drawing_weights(args.load), args.predict, args.ascii)))
            return 0
        if args.serve:
            return load_lab().serve(args)
        plot_needs_matplotlib(args)
        started = time.perf_counter()
        params = None
        if args.load:  # a bad weights file is said before any data is read
            params = load_params(args.load)
            args.activation = params["activation"]
        run_and_report(args, load_dataset(args), interrupted, params, started=started)
    except UsageError as e:
        print(usage_line(e), file=sys.stderr)
        return 2
    except BrokenPipeError:  # the output went to a program that stopped reading (| head)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (DataError, TrainingDiverged, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # outside training (say, while parsing MNIST), or a second Ctrl-C
        print("interrupted", file=sys.stderr)
        return 130
    return 130 if interrupted.is_set() else 0  # 130: the shell's code for Ctrl-C


def plot_needs_matplotlib(args):
    """Without matplotlib, --plot is dropped with a note, said before the data loads."""
    if args.plot and importlib.util.find_spec("matplotlib") is None:
        print("note: --plot needs matplotlib (pip install matplotlib); no plot this time")
        args.plot = None


def run_and_report(args, data, interrupted, params=None, live=None, record=False,
                   started=None):
    """One run of the command line on load_dataset(args)'s data: train (or take --load's
    params), report on the test set, look inside and write what the flags ask for. Setting
    interrupted (Ctrl-C) ends training after its batch. With live, the page follows it.
    Returns (params, the --log record if --log or record asks for it)."""
    started = time.perf_counter() if started is None else started
    X_train, y_train, X_test, y_test, source = data
    if params is not None:
        history = None
        if n_inputs(params) != X_test.shape[1]:
            raise DataError(f"{args.load} takes {n_inputs(params)} pixels per image; "
                            f"{source} has {X_test.shape[1]}")
        network = describe_network(network_sizes(params), params["activation"], None,
                                   channels(params))
        print(f"weights {args.load}: {network} | {source}: test {len(y_test):,}")
    else:
        params, history, (X_train, y_train) = run_training(args, X_train, y_train, len(y_test),
                                                           source, interrupted, live)
    predictions = predict(params, X_test)
    for line in report(predictions, y_test):
        print(line)
    if args.show_mistakes:
        print("\n".join(show_mistakes(params, X_test, y_test, args.show_mistakes, args.ascii)))
    test_accuracy = accuracy(predictions, y_test)
    for d in args.moved or []:
        print(f"test digits moved {d} px (up, down, left, right): "
              f"{100 * moved_accuracy(params, X_test, y_test, d):.2f}%")
    sweep = None
    if args.attack:
        lines, sweep = attack_report(params, X_test, y_test, args.attack,
                                     np.random.default_rng(args.seed), args.ascii)
        print("\n".join(lines))
    if args.dream is not None:
        lines, dreams = dream_report(params, args.ascii)
        print("\n".join(lines))
        if args.dream:
            atomic_write(args.dream, lambda f: np.save(f, dreams.astype(np.float32)))
            print(f"saved the ten dreams to {args.dream}")
    if args.plot:
        plot_run(args.plot, history, params)
        print(f"saved curves and weight pictures to {args.plot}")
    kept = None
    if args.log or (record and history is not None):
        kept = run_record(args, history, test_accuracy, time.perf_counter() - started,
                          X_train, y_train, accuracy(predict(params, X_train), y_train), sweep)
    if args.log:
        atomic_write(args.log, lambda f: f.write(json.dumps(kept, indent=1).encode()))
        print(f"saved a record of the run to {args.log}")
    if live:  # the result on the page too, which goes on serving these weights
        live.finish(params, X_test, y_test, interrupted.is_set())
    print(f"test accuracy: {100 * test_accuracy:.2f}%", flush=True)
    return params, kept


def run_gradcheck(args):
    """--gradcheck: a 20-8-10 network, or 20-W...-10 for --hidden W ..., in float64; with
    --conv C ..., conv layers of those channels on 8x8 images first (at most 3 layers)."""
    conv = args.conv or []
    sizes = ((64 if conv else 20), *(args.hidden or [8]), NUM_CLASSES)
    try:
        dense = layer_sizes(sizes[0], sizes[1:-1], NUM_CLASSES, conv)
    except ValueError as e:
        raise UsageError(f"--{e}") from None
    network = (f"conv {'-'.join(map(str, conv))} on 8x8 images, " if conv else "") + \
        "-".join(map(str, dense))
    dropout = f", dropout {args.dropout:g} (one fixed mask)" if args.dropout else ""
    print(f"gradient check: network {network}, {args.activation}, "
          f"{args.loss}{dropout}, float64, {5} examples")
    rows = gradient_check(args.seed, sizes=sizes, activation=args.activation, loss=args.loss,
                          dropout=args.dropout, conv=conv)
    print("\n".join(gradient_table(rows)))
    return 0 if all(r["ok"] for r in rows) else 1


def drawing_weights(path):
    """params from --load for your own digits (--predict, --serve): for 28x28 images."""
    params = load_params(path)
    if n_inputs(params) != 784:
        raise DataError(f"{path} takes {n_inputs(params)} pixels per image; your own "
                        "digits are prepared as 28x28 images, for weights trained on MNIST")
    return params


def describe_network(sizes, activation, init=INIT, conv=()):
    """'network 784-256-128-10, 235,146 parameters, ReLU with He initialisation'; with conv
    layers 'network conv 8-16 (3x3, 2x2 pools) 784-128-10, ...', their sizes[0] given."""
    n_params = sum(a * b + b for a, b in zip(sizes, sizes[1:]))  # W_l and b_l of each layer
    conv = conv or []
    n_params += sum(9 * C * F + F for C, F in zip((1, *conv), conv))  # K_l and k_l
    init = {"he": "He", "glorot": "Glorot", "zeros": "all-zero", "normal": "N(0, 1)"}[
        init or default_init(activation)]
    convs = f"conv {'-'.join(map(str, conv))} (3x3, 2x2 pools) " if conv else ""
    return (f"network {convs}{'-'.join(map(str, sizes))}, {n_params:,} parameters, "
            f"{ {'relu': 'ReLU'}.get(activation, activation)} with {init} initialisation")


def run_training(args, X_train, y_train, n_test, source, interrupted, live=None):
    """Hold out validation images, take --subset, say what the run does, train, --save."""
    rng = np.random.default_rng(args.seed)
    val_size = check_sizes(args, len(y_train))
    X_train, y_train, X_val, y_val = hold_out(X_train, y_train, val_size, rng)
    if val_size == 0:
        X_val = y_val = None
    if args.subset:
        keep = np.sort(rng.permutation(len(y_train))[:args.subset])
        X_train, y_train = X_train[keep], y_train[keep]
    details = fill_in_defaults(args, len(y_train), X_train.shape[1])
    try:  # after conv layers, the dense ones take their last maps
        sizes = layer_sizes(X_train.shape[1], args.hidden, NUM_CLASSES, args.conv or ())
    except ValueError as e:
        raise UsageError(f"--{e} ({source})") from None
    print(f"{source}: train {len(y_train):,}, val {val_size:,}, test {n_test:,} | "
          f"{describe_network(sizes, args.activation, args.init, args.conv)} | seed {args.seed}")
    print(", ".join(details), flush=True)  # what the run does, and why where it was chosen
    settings = {key: getattr(args, key) for key in ("hidden", "conv", "activation", "init", "loss",
                "dropout", "epochs", "batch_size", "lr", "optimizer", "schedule", "momentum",
                "weight_decay", "augment", "dtype", "seed")}
    if live:
        live.start(args.epochs, math.ceil(len(y_train) / args.batch_size))
    with ctrl_c_sets(interrupted):
        params, history = train(X_train, y_train, X_val, y_val, **settings,
                                log=lambda line: print(line, flush=True), watch=live,
                                stop=interrupted)
    print(f"trained in {sum(r['seconds'] for r in history):.1f}s")
    if len(sizes) > 3:  # two or more hidden layers: did the first learn as fast as the last?
        print(layer_speed_summary(history))
    if interrupted.is_set():
        print("evaluating the weights learned so far")
    if args.save:
        save_params(args.save, params, {**settings, "subset": args.subset, "data": source,
                                        "epochs_done": len(history)})
        print(f"saved weights to {args.save}")
    return params, history, (X_train, y_train)


def check_sizes(args, n):
    """Check --subset and --batch-size against the n training images; the validation's size."""
    val_size = min(VAL_SIZE, n // 10)
    left = n - val_size
    if args.subset is not None and args.subset > left:
        raise UsageError(f"--subset must be from 1 to {left:,}, the training images "
                         f"left after validation (got {args.subset:,})")
    check_flags(SimpleNamespace(batch_size=args.batch_size), args.subset or left)
    return val_size


def layer_speed_summary(history):
    """How fast hidden layer 1 learned against the last, in the first and the last epoch."""
    first, last = (np.array(r["db_norm"][:-1]) for r in (history[0], history[-1]))
    if not first.any():  # --init zeros with ReLU or tanh: no gradient reaches them
        return ("the hidden layers did not learn at all in epoch 1: every bias gradient "
                "||dloss/db_l|| was 0")
    ratio, later = first[0] / max(first[-1], 1e-30), last[0] / max(last[-1], 1e-30)
    pace = (f"{1 / ratio:.0f}x slower than" if ratio < 0.5 else
            f"{ratio:.0f}x faster than" if ratio > 2 else f"about as fast ({ratio:.2g}x) as")
    return (f"hidden layer 1 learned {pace} hidden layer {len(first)} in epoch 1 and "
            f"{later:.2g}x as fast in epoch {history[-1]['epoch']} (each layer's speed: the "
            "length of its bias gradient, ||dloss/db_l||)")


def fill_in_defaults(args, n_train, n_features):
    """Fill in the unset flags as train() does (fill_in), and say the run's settings in words."""
    args.hidden = args.hidden or [HIDDEN]
    all_of_them, lr_unset = args.batch_size is None and n_train < BATCH_SIZE, args.lr is None
    fill_in(args, n_train, n_features)
    details = [{"sgd": "SGD", "momentum": f"SGD + momentum {args.momentum}",
                "adam": "Adam"}[args.optimizer]]
    if lr_unset:  # which of the run's settings adapted the optimiser's own rate, if any
        own, depth = (default_lr(args.optimizer, activation=args.activation),
                      len(args.hidden) + len(args.conv or []))
        why = [what for what, lr, before in [
            (f"batch {args.batch_size}", default_lr(args.optimizer, MOMENTUM, args.batch_size,
                                                    n_train), LR[args.optimizer]),
            (f"momentum {args.momentum:g}", default_lr(args.optimizer, args.momentum),
             LR[args.optimizer]),
            (args.activation, own, LR[args.optimizer]),
            (f"{depth} {'conv and ' if args.conv else ''}hidden layers",
             default_lr(args.optimizer, depth=depth,
                                                  activation=args.activation), own),
            ("squared error", default_lr(args.optimizer, loss=args.loss), LR[args.optimizer])]
            if lr != before]
        whose = (f"the default for {' and '.join(filter(None, [', '.join(why[:-1]), why[-1]]))}"
                 if why else f"{args.optimizer}'s default")
        details.append(f"lr {args.lr:.3g} ({whose}, {args.schedule})")
    else:
        details.append(f"lr {args.lr:g} ({args.schedule})")
    details.append(f"batch {args.batch_size}" + (" (all the training images)" if all_of_them
                                                 else ""))
    details.append(f"{args.epochs} epoch{'s' if args.epochs != 1 else ''}")
    details += [what for what, shown in [
        ("squared-error loss", args.loss != LOSS),
        (f"weight decay {args.weight_decay:g}", args.weight_decay),
        (f"dropout {args.dropout:g}", args.dropout),
        (args.dtype, args.dtype != np.dtype(DTYPE).name),
        ("batches shifted by up to 1 pixel", args.augment)] if shown]
    return details


@contextlib.contextmanager
def ctrl_c_sets(event):
    """Within the block, Ctrl-C sets event (train() then stops after its current batch)
    instead of interrupting mid-step; a second Ctrl-C interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may handle signals
        return

    def handler(signum, frame):
        event.set()
        signal.signal(signal.SIGINT, signal.default_int_handler)
    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def load_lab():
    """The lab, --serve's server and page, is the folder lab/ beside this file, imported only
    for --serve. Run as a script this file is the module __main__: the lab, which imports
    nn_from_scratch, is given this very module, not a second copy."""
    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lab", "server.py")
    if not os.path.isfile(path):
        raise DataError(f"--serve needs the folder lab/ that comes beside "
                        f"{os.path.basename(__file__)}; everything else runs without it")
    if "nn_lab" not in sys.modules:
        sys.modules.setdefault("nn_from_scratch", sys.modules[__name__])
        spec = importlib.util.spec_from_file_location("nn_lab", path)
        sys.modules["nn_lab"] = lab = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(lab)
    return sys.modules["nn_lab"]


if __name__ == "__main__":
    sys.exit(main())
