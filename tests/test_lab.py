"""The lab, python nn_from_scratch.py --serve, over real HTTP: the drawing page's routes and
their guards, a network watched while it learns, and runs started from the page."""

import base64
import concurrent.futures
import copy
import json
import math
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

import nn_from_scratch as nn
from helpers import (ROOT, lab_server, labmod, needs_mnist, page_server, read_until, request,
                     run_cli, small_mnist_like, url_port)
from test_nn import MNIST_NPZ, run_main

pytestmark = pytest.mark.filterwarnings("error")  # any warning fails its test


def pad_body(image):
    """The JSON a 280x280 pad sends: its gray bytes, row by row, in base64."""
    image = np.asarray(image, dtype=np.uint8)
    return json.dumps({"width": image.shape[1], "height": image.shape[0],
                       "pixels": base64.b64encode(image.tobytes()).decode()}).encode()


def untrained():
    return nn.init_params([784, 16, 10], np.random.default_rng(0))


GOOD = pad_body(np.kron(np.eye(28, dtype=np.uint8) * 255, np.ones((10, 10), np.uint8)))


def templates_of(model):
    """GET /model's templates, base64 of (units, 784) int8, as an array."""
    return np.frombuffer(base64.b64decode(model["templates"]), np.int8).reshape(
        model["units"], 784)


def epoch_lines(lines):
    """(loss, train %, val %) of each epoch line the terminal printed."""
    return [tuple(map(float, m.groups())) for m in (re.search(
        r"\| loss (\d+\.\d+) \| train +(\d+\.\d+)% \| val +(\d+\.\d+)%", line)
        for line in lines if line.startswith("epoch")) if m]


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


def lab_with(path):
    """A Lab as `--data path --serve` makes it, with the data loaded."""
    args = nn.parse_args(["--data", str(path)])
    return labmod.Lab(args, nn.load_dataset(args))


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """28x28 images to train on in a blink, 1,000 to train and 200 to test, as a .npz."""
    X_train, y_train, X_test, y_test = small_mnist_like(1000, 200)
    path = tmp_path_factory.mktemp("small") / "small.npz"
    np.savez(path, x_train=X_train, y_train=y_train, x_test=X_test, y_test=y_test)
    return path


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
    # GET / is the page, and /lab.css and /lab.js its style and script, lab/'s files as they
    # are (nothing in them fetched from elsewhere; the script with the form's flags written
    # in); GET /model the weights the hidden-unit panel draws, the favicon an empty 204; no
    # other path, and no other file on disk, not even lab/'s own by another name
    params = untrained()
    with page_server(params) as port:
        status, page = request(port, "GET", "/")
        assert status == 200
        page = page.decode()
        assert page == (ROOT / "lab" / "index.html").read_text()
        for part in ('<canvas id="pad"', 'id="clear"', 'id="prediction"', 'rel="icon"',
                     'href="/lab.css"', 'src="/lab.js"'):
            assert part in page
        assert not re.search(r"(src|href)=\"(?!data:|/|#)", page) and "http" not in page
        assert request(port, "GET", "/lab.css")[1].decode() == (ROOT / "lab" / "lab.css"
                                                                ).read_text()
        script = request(port, "GET", "/lab.js")[1].decode()
        assert "const LAB = null;" in (ROOT / "lab" / "lab.js").read_text()
        assert re.search(r"^const LAB = \{\"fields\": \[\{\"flag\": \"--hidden\"", script, re.M)
        for path in ("/index.html", "/lab.html", "/server.py", "/lab/lab.js", "/lab.js/"):
            assert request(port, "GET", path)[0] == 404, path
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
        g = np.abs(nn.input_gradient(mnist_model, x, nn.one_hot([plain["label"]])))[0]
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


def test_before_the_first_step_the_weights_pages_say_so_in_one_line():
    # a page opened while the data still loads: /model, /dreams and /predict answer 503
    # with one line, and /progress already answers
    lab = labmod.Lab(nn.parse_args([]))
    lab.runs[1] = labmod.Run(1, nn.parse_args([]))  # queued, and never started
    with lab_server(lab) as port:
        for method, path, body in (("GET", "/model", b""), ("GET", "/dreams", b""),
                                   ("POST", "/predict", GOOD)):
            status, answer = request(port, method, path, body)
            assert status == 503 and "first step" in answer["error"]
            assert "\n" not in answer["error"]
        assert request(port, "GET", "/progress")[0] == 200


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
    monkeypatch.setattr(labmod.PageHandler, "timeout", 1)
    with page_server(untrained()) as port, socket.create_connection(("127.0.0.1", port)) as s:
        assert request(port, "POST", "/predict", GOOD, timeout=3)[0] == 200  # meanwhile
        s.settimeout(5)
        assert s.recv(100) == b""  # the server hung up on the silent client


def test_many_concurrent_requests_are_all_answered_alike():
    with page_server(untrained()) as port, \
            concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
        answers = list(pool.map(lambda _: request(port, "POST", "/predict", GOOD), range(64)))
    assert all(a == answers[0] for a in answers) and answers[0][0] == 200


def test_serve_prints_the_url_on_its_own_line_and_ctrl_c_ends_it_with_exit_0(tmp_path, start_cli):
    nn.save_params(tmp_path / "model.npz", untrained())
    process, lines = start_cli("--load", tmp_path / "model.npz", "--serve", "--port", 0)
    url = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\n", lines[-1])
    assert url, lines
    assert request(int(url[1]), "POST", "/predict", GOOD)[0] == 200
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0 and err == "" and out == "stopped\n"


def test_the_page_serves_a_deep_network_layer_by_layer(tmp_path, start_cli):
    # a saved 784-16-8-10 tanh network behind --load --serve: /model gives its sizes and no
    # weights out to the digits (W2 leads to layer 2); /predict gives the first hidden
    # layer's activations and the second's, computed with tanh
    params = nn.init_params([784, 16, 8, 10], np.random.default_rng(0), activation="tanh")
    nn.save_params(tmp_path / "deep.npz", params)
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
        cache = nn.forward_prop(params, x[None] / np.float32(255))
        assert status == 200 and np.allclose(answer["hidden"], cache[1][0], atol=1e-6)
        assert len(answer["deeper"]) == 1 and np.allclose(answer["deeper"][0], cache[3][0],
                                                          atol=1e-6)
        assert np.allclose(answer["probabilities"], cache[-1][0], atol=1e-6)
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=10)


def test_serve_after_training_serves_the_weights_just_trained(tmp_path, start_cli):
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


def test_the_command_lines_run_is_there_when_its_address_is_printed(tmp_path, monkeypatch):
    # a page may ask for /progress the moment the address appears, as the test below does:
    # the run must be queued by then. Seen from inside the print, which then ends serve()
    X_train, y_train, X_test, y_test = small_mnist_like()
    np.savez(tmp_path / "d.npz", x_train=X_train, y_train=y_train, x_test=X_test, y_test=y_test)
    labs = []

    class Lab(labmod.Lab):
        def __init__(self, *args):
            super().__init__(*args)
            labs.append(self)

    class Printed(Exception):
        pass

    def address_printed(*words, **options):
        if "http://" in " ".join(map(str, words)):
            raise Printed([run.state for run in labs[0].runs.values()])
    monkeypatch.setattr(labmod, "Lab", Lab)
    monkeypatch.setattr(labmod, "print", address_printed, raising=False)
    args = nn.parse_args(["--data", str(tmp_path / "d.npz"), "--serve", "--port", "0"])
    with pytest.raises(Printed) as printed:
        labmod.serve(args)
    assert printed.value.args[0] == ["queued"]


def test_a_snapshot_is_a_copy_taken_a_few_times_a_second_at_most():
    # the training loop's calls publish copies of every layer, at most every 0.25 s, and at
    # every epoch's end; changing the weights afterwards changes no snapshot
    params = nn.init_params([784, 16, 8, 10], np.random.default_rng(0))
    live = labmod.Live()
    live.start(epochs=2, batches=1000)
    assert live.snapshot["params"] is None  # no step yet: /predict says so
    start = time.perf_counter()
    batch = 0
    while time.perf_counter() - start < 1.0:
        batch += 1
        live.step(params, 1, batch, 0.5)
        time.sleep(0.001)
    assert 2 <= live.version <= 6, live.version  # 4 a second, and the first
    snapshot = live.snapshot
    assert all(snapshot["params"][k] is not params[k] for k in nn.arrays(params))
    before = copy.deepcopy(snapshot["params"])
    for P in nn.arrays(params).values():
        P += 1  # the next steps
    assert all(np.array_equal(snapshot["params"][k], before[k]) for k in params)
    record = {"epoch": 1, "loss": 0.5, "train_acc": 0.9, "val_acc": 0.9, "lr": 0.1,
              "seconds": 1.0, "db_norm": [1, 1, 1]}
    live.step(params, 1, batch + 1, 0.5)
    live.epoch(params, record)  # an epoch's end is always published
    progress = json.loads(live.snapshot["progress"])
    assert progress["history"] == [record] and progress["epoch"] == 1
    assert progress["losses"][-1][0] == batch + 1 and not progress["done"]


@needs_mnist
def test_the_page_follows_a_real_run_over_http(tmp_path, start_cli):
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
def test_ctrl_c_while_the_page_watches_stops_training_and_a_second_one_the_page(tmp_path, start_cli):
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
def test_stuck_clients_do_not_hold_up_the_training_or_the_page(tmp_path, start_cli):
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
        assert request(port, "GET", "/progress", timeout=5)[0] == 200  # answered meanwhile
        out = read_until(process, "test accuracy:")
        assert sum(line.startswith("epoch") for line in out) == 3
    finally:
        for client in stuck:
            client.close()
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=20)


def test_serve_on_another_address_warns_and_a_busy_port_is_one_line(tmp_path, capsys, start_cli):
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


@needs_mnist
def test_runs_started_from_the_page_are_the_command_lines_runs_digit_for_digit(tmp_path, start_cli):
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
                   for n in range(labmod.Lab.MAX_QUEUED)]
        status, answer = post_json(port, "/runs", {"flags": "--seed 99"})
        assert status == 429 and f"{labmod.Lab.MAX_QUEUED} runs are waiting" in answer["error"]
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
    fields = {f["flag"]: f for f in labmod.form_fields()}
    assert list(fields) == ["--hidden", "--conv", "--activation", "--init", "--loss", "--dropout",
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
        page = request(port, "GET", "/lab.js")[1].decode()
    lab = json.loads(re.search(r"const LAB = (\{.*?\});  //", page)[1])
    assert {"flag": "--label-smoothing", "kind": "number", "choices": None, "default": "0.0",
            "help": "a new flag"} in lab["fields"]
    assert [key for key, _, _ in lab["lessons"]] == ["zeros", "mse", "dropout", "vanishing",
                                                    "adam-lr", "conv"]


def test_every_lessons_flags_are_accepted_by_the_parser():
    lab = labmod.Lab(nn.parse_args([]))
    for key, title, runs in labmod.LESSONS:
        assert len(runs) >= 2
        names = [labmod.Run(1, lab.parse(flags)).name for flags in runs]
        assert len(set(names)) == len(runs), (key, names)  # each run differs


def test_load_serve_shows_the_saved_weights_as_a_run_and_reads_data_only_for_a_run(
        tmp_path, small_data, start_cli):
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


def test_the_file_copied_alone_runs_and_says_in_one_line_that_serve_needs_lab(tmp_path):
    # nn_from_scratch.py copied anywhere without lab/ trains and evaluates as ever; --serve
    # says in one line that it needs the folder, exit code 1, no traceback
    alone = tmp_path / "nn_from_scratch.py"
    shutil.copyfile(ROOT / "nn_from_scratch.py", alone)
    run = subprocess.run([sys.executable, str(alone), "--dataset", "digits", "--epochs", "2"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 0 and run.stdout.splitlines()[-1].startswith("test accuracy: ")
    run = subprocess.run([sys.executable, str(alone), "--serve", "--port", "0"],
                         capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr == ("error: --serve needs the folder lab/ that comes beside "
                          "nn_from_scratch.py; everything else runs without it\n")

