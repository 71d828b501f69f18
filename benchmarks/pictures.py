"""
benchmarks/pictures.py: the README's pictures of what the network responds to, drawn from
saved weights with the project's own functions (needs matplotlib):

    python nn_from_scratch.py --save model.npz          # the default network, seed 0
    python benchmarks/pictures.py model.npz             # writes docs/fooled.png, docs/dreams.png

docs/fooled.png: three test digits read right, the same moved by eps = 0.1 per pixel
(FGSM) and read wrong, and the change. docs/dreams.png: each class's dream, plain (what
--dream makes), with an L2 penalty, and with a blur; each image is drawn scaled to its own
brightest pixel, so that the faint penalised ones can be seen.
"""

import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)
import nn_from_scratch as nn  # noqa: E402

EPS = 0.1
DREAMS = [("plain (--dream)", {}), ("L2 penalty 0.01", {"l2": 0.01}),
          ("3x3 blur every 4 steps", {"blur": 4})]


def main():
    try:
        import matplotlib
    except ImportError:
        sys.exit("benchmarks/pictures.py needs matplotlib: pip install matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    params = nn.load_params(sys.argv[1])
    X, y = nn.load_mnist()
    _, _, X_test, y_test = nn.split_mnist(X, y)
    X = nn.scale_pixels(X_test, params["W1"].dtype)
    X_adv = nn.fool(params, X, y_test, EPS)
    clean, fooled = nn.predict(params, X), nn.predict(params, X_adv)
    P = nn.predict_proba(params, X_adv)
    shown = np.flatnonzero((clean == y_test) & (fooled != y_test))[:3]
    fig, axes = plt.subplots(3, 3, figsize=(6, 6.4))
    for row, i in zip(axes, shown):
        images = [(X[i], f"test #{i}: read {clean[i]}"),
                  (X_adv[i], f"+ FGSM {EPS:g}: read {fooled[i]} ({100 * P[i].max():.0f}%)"),
                  (X_adv[i] - X[i], "the change (white +eps, black -eps)")]
        for ax, (image, title) in zip(row, images):
            low = -EPS if image is not X[i] and image.min() < 0 else 0
            ax.imshow(image.reshape(28, 28), cmap="gray", vmin=low, vmax=max(EPS, image.max()))
            ax.set(xticks=[], yticks=[])
            ax.set_title(title, fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(ROOT, "docs", "fooled.png"), dpi=90)
    print(f"wrote docs/fooled.png: test digits {', '.join(map(str, shown))}")
    fig, axes = plt.subplots(len(DREAMS), 10, figsize=(12, 1.5 * len(DREAMS)))
    for row, (name, penalty) in zip(axes, DREAMS):
        dreams, P = nn.dream(params, **penalty)
        for c, ax in enumerate(row):
            ax.imshow(dreams[c].reshape(28, 28), cmap="gray", vmin=0,
                      vmax=max(dreams[c].max(), 1e-6))
            ax.set(xticks=[], yticks=[])
            ax.set_title(f"{c}: p = {P[c, c]:.2f}", fontsize=8)
        row[0].set_ylabel(name, fontsize=8)
        print(f"dreams, {name}: p of their class {P[np.arange(10), np.arange(10)].min():.2f} "
              "at least")
    fig.tight_layout()
    fig.savefig(os.path.join(ROOT, "docs", "dreams.png"), dpi=80)
    print("wrote docs/dreams.png")


if __name__ == "__main__":
    main()
