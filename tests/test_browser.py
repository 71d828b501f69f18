"""The lab's page in a real browser: Debian's Chromium, headless, driven by selenium."""

import contextlib
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

import nn_from_scratch as nn
from helpers import (ROOT, STROKES, lab_server, labmod, missing, optional, page_server, read_until,
                     request, url_port)
from test_nn import DATA_HOME, MNIST_NPZ

pytestmark = pytest.mark.filterwarnings("error")  # any warning fails its test


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
                     f"'{chosen}', 'test_nn.py', 'tests/test_browser.py']))")
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"SCIKIT_LEARN_DATA": str(DATA_HOME)}
    if not cached:
        env = {k: v for k, v in env.items() if k != "NN_SHARED_DATA"} | {
            "SCIKIT_LEARN_DATA": str(tmp_path)}
    tests = len(browser_tests) + (not cached)
    for ci, outcome in ((None, "skipped"), ("true", "errors")):
        run = subprocess.run([sys.executable, "-c", hide_selenium], cwd=ROOT, text=True,
                             capture_output=True, env=env | ({"CI": ci} if ci else {}),
                             timeout=120)
        out = run.stdout + run.stderr
        assert f"{tests} {outcome}" in out and " passed" not in out, out[-2000:]
        assert " failed" not in out and "ModuleNotFoundError" not in out, out[-2000:]
        reasons = re.findall(r"^(?:SKIPPED \[1\] [\w/]+\.py:\d+|ERROR [\w/]+\.py::\w+ - Failed)"
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
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
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


def test_in_a_real_browser_a_conv_network_shows_its_filters_and_each_channels_map(browser,
                                                                                  tmp_path):
    # conv 4-6 + 32: the templates panel is the first layer's four 3x3 filters, and a drawn
    # digit shows a picture per conv layer, a tile per channel (4 of 14x14, 6 of 7x7)
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    params = nn.init_params([6 * 7 * 7, 32, 10], np.random.default_rng(0), conv=(4, 6))
    with page_server(params) as port, headless_chromium() as driver:
        driver.set_window_size(1300, 2000)
        driver.get(f"http://127.0.0.1:{port}/")
        wait = WebDriverWait(driver, 10)
        wait.until(lambda d: "4 first-layer filters" in d.find_element(By.ID,
                                                                      "templates-title").text)
        size = driver.execute_script("const c = document.querySelector('#templates canvas');"
                                     "return [c.width, c.height];")
        assert size == [4 * 3 - 1, 4 * 2 - 1]  # four 3x3 tiles, 3 a row, a pixel apart
        assert not driver.find_element(By.ID, "maps").is_displayed()  # nothing drawn yet
        draw_on_pad(driver, 3, "mouse")
        wait.until(lambda d: d.find_element(By.ID, "maps").is_displayed())
        sizes = driver.execute_script("return [...document.querySelectorAll('#map-layers "
                                      "figure')].map(f => [f.firstChild.width, "
                                      "f.firstChild.height, f.lastChild.textContent]);")
        assert sizes == [[15 * 3 - 1, 15 * 2 - 1, "conv layer 1: 4 maps of 14x14"],
                         [8 * 4 - 1, 8 * 2 - 1, "conv layer 2: 6 maps of 7x7"]]
        assert len(driver.find_elements(By.CSS_SELECTOR, "#hidden div")) == 32
        driver.find_elements(By.CSS_SELECTOR, "#hidden div")[0].click()
        assert not driver.find_element(By.ID, "template").is_displayed()  # no 28x28 picture
        assert not driver.find_element(By.ID, "red-blue").is_displayed()
        driver.find_element(By.ID, "maps").screenshot(str(tmp_path / "conv-wide.png"))
        driver.set_window_size(400, 2400)
        driver.find_element(By.ID, "maps").screenshot(str(tmp_path / "conv-narrow.png"))
        errors = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []


def test_in_a_real_browser_the_page_shows_the_network_learning(browser, mnist, tmp_path, start_cli):
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
    lab = labmod.Lab(nn.parse_args([]), (*nn.split_mnist(*mnist), "MNIST"))  # as --serve has it
    folder = os.environ.get("NN_SCREENSHOTS")
    with lab_server(lab) as port, headless_chromium() as driver:
        driver.set_window_size(1400, 1100)
        driver.get(f"http://127.0.0.1:{port}/#lesson=zeros")
        wait = WebDriverWait(driver, 60)
        field = lambda flag: driver.find_element(  # noqa: E731
            By.XPATH, f"//form[@id='settings']//label[span='{flag}']/*[2]")
        wait.until(lambda d: field("--init").get_attribute("value") == "zeros")
        assert "chosen" in driver.find_element(By.ID, "lesson-zeros").get_attribute("class")
        assert driver.find_element(By.ID, "compare-title").text == labmod.LESSONS[0][1]
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
                    runs = len(dict((k, r) for k, _, r in labmod.LESSONS)[key])
                    WebDriverWait(driver, 300).until(lambda d: [r.get_attribute(
                        "data-state") for r in rows()] == ["done"] * runs)
                    time.sleep(1)
                driver.find_element(By.ID, "compare").screenshot(
                    os.path.join(folder, f"lesson-{key}.png"))
