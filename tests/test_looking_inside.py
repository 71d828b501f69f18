"""Looking inside: digits drawn in the terminal, the surest mistakes, your own digit read
the way MNIST's were, the gradient check's table, --plot and --log."""

import ctypes
import importlib.util
import json
import math
import re
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest

import nn_from_scratch as nn
from helpers import ROOT, draw, optional, run_cli
from test_nn import run_main

pytestmark = pytest.mark.filterwarnings("error")  # any warning fails its test


def off_centre_digit():
    """A dark, thick '7' on light paper, 60 x 40 pixels, in the top-left corner."""
    image = np.full((60, 40), 240.0)
    image[5:9, 3:20] = 10         # the bar
    image[5:35, 16:20] = 10       # the stem
    return image


def write_pgm(path, image, binary):
    h, w = image.shape
    if binary:
        Path(path).write_bytes(f"P5\n# a comment\n{w} {h}\n255\n".encode()
                               + image.astype(np.uint8).tobytes())
    else:
        body = "\n".join(" ".join(str(int(v)) for v in row) for row in image)
        Path(path).write_text(f"P2\n{w} {h}\n255\n{body}\n")


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
        run = subprocess.run([sys.executable, "-c", probe, case], cwd=ROOT, capture_output=True,
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
    monkeypatch.setattr(ctypes, "CDLL", windows_cdll)  # keep_freed_memory imports ctypes
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

    def wrong_db2(*args, **kwargs):  # the classic bug: one sum over the whole array for every bias
        grads, dX = real(*args, **kwargs)  # (the check asks for dloss/dX too)
        grads["b2"] = np.full_like(grads["b2"], grads["b2"].sum())
        return grads, dX
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
