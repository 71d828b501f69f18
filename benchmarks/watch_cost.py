"""
benchmarks/watch_cost.py: does watching a run in the lab slow it down? Trains the same
command in turn typed in a terminal (no server, no browser) and started from the lab's page
while headless Chromium has the page open on it (which goes first alternates), and prints
the median epoch time of each (the first epoch of each run left out), their ratio, and the
pairs' ratios with their geometric mean and its 95% interval: on a machine whose runs differ
by up to 40% from one to the next, one pair says little, and forty say it within 6 to 8%.

    python benchmarks/watch_cost.py                     # 5 pairs of 10-epoch runs, ~2 minutes
    python benchmarks/watch_cost.py --pairs 40          # ~15 minutes
    python benchmarks/watch_cost.py --pairs 40 --same   # both typed: the machine's own noise

The browser is started once; the page is opened, and left to settle, before its run starts,
as a learner's page is, and closed (about:blank) in the terminal's turn: what is measured
is watching, not the browser's start. Needs selenium (pip install selenium) and
Debian's Chromium and its driver (apt-get install chromium chromium-driver), named outright
so that nothing is downloaded.
"""

import argparse
import json
import math
import os
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(os.path.dirname(HERE), "nn_from_scratch.py")


def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update",
                 "--no-first-run", "--disable-sync", "--disable-quic"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def typed(flags, folder):
    """The epoch seconds of the command typed in a terminal, from its --log."""
    log = os.path.join(folder, "run.json")
    subprocess.run([sys.executable, SCRIPT, *shlex.split(flags), "--log", log], check=True,
                   stdout=subprocess.DEVNULL)
    with open(log) as f:
        return [r["seconds"] for r in json.load(f)["history"]][1:]


def watched(flags, url, driver, ended, settle=3):
    """The epoch seconds of the same command started from the lab, with the page open on it
    (the page follows the newest run), from the run's record. ended: an Event set when the
    server prints a run's last line; asking the server instead, as often, would be requests
    that the typed command does not get."""
    def ask(path, body=None):
        headers = {"Content-Type": "application/json"} if body else {}
        with urllib.request.urlopen(urllib.request.Request(url + path, body, headers)) as r:
            return json.load(r)
    driver.get(url)
    time.sleep(settle)
    ended.clear()
    run = ask("runs", json.dumps({"flags": flags}).encode())["id"]
    ended.wait()
    driver.get("about:blank")  # the page is closed, and the browser idle, in the terminal's turn
    while next(r for r in ask("runs") if r["id"] == run)["state"] == "training":
        time.sleep(0.05)  # its record is kept a moment after its last line
    return [r["seconds"] for r in ask(f"runs/{run}")["history"]][1:]


def main():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--pairs", type=int, default=5, help="runs of each (default: 5)")
    p.add_argument("--flags", default="--epochs 10", help="the run's flags (default: %(default)s)")
    p.add_argument("--same", action="store_true",
                   help="type the command in both turns: how far apart two identical runs "
                        "come out on this machine")
    args = p.parse_args()
    server = subprocess.Popen([sys.executable, SCRIPT, "--serve", "--port", "0", "--subset",
                               "1000", "--epochs", "1"], stdout=subprocess.PIPE, text=True)
    second = "typed again" if args.same else "page open"
    times, ratios = {"terminal": [], second: []}, []
    driver = browser()  # started once: what is measured is watching, not a browser's start
    driver.set_window_size(1300, 1000)
    try:
        url = next(line.strip() for line in server.stdout if line.startswith("http://"))
        for line in server.stdout:  # the lab's first run, a small one, is over
            if line.startswith("test accuracy:"):
                break
        ended = threading.Event()

        def read():  # the runs' lines
            for line in server.stdout:
                if line.startswith("test accuracy:"):
                    ended.set()
        threading.Thread(target=read, daemon=True).start()
        with tempfile.TemporaryDirectory() as folder:
            turns = [lambda: typed(args.flags, folder), (lambda: typed(args.flags, folder))
                     if args.same else lambda: watched(args.flags, url, driver, ended)]
            for i in range(args.pairs):  # in turn, which goes first alternating: a machine
                first = i % 2            # that speeds up or slows down favours neither
                pair = [None, None]
                pair[first], pair[1 - first] = turns[first](), turns[1 - first]()
                for name, epochs in zip(times, pair):
                    times[name] += epochs
                ratios.append(statistics.median(pair[1]) / statistics.median(pair[0]))
    finally:
        driver.quit()
        server.send_signal(signal.SIGINT)  # Ctrl-C, as a person stops it
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:  # started where Ctrl-C is ignored (a shell's &)
            server.kill()
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, t in median.items():
        print(f"{name:>11}: median epoch {t:.3f} s ({len(times[name])} epochs)")
    print(f"{second} / terminal: {median[second] / median['terminal']:.3f}; pair by pair "
          f"{' '.join(f'{r:.3f}' for r in ratios)}, median {statistics.median(ratios):.3f}")
    if len(ratios) > 2:  # the pairs' geometric mean ratio, and where it lies, 95% sure
        from scipy import stats  # scikit-learn's own requirement
        logs = [math.log(r) for r in ratios]
        mean, error = statistics.mean(logs), statistics.stdev(logs) / math.sqrt(len(logs))
        t = stats.t.ppf(0.975, len(logs) - 1)
        print(f"geometric mean of the pairs {math.exp(mean):.3f}, 95% interval "
              f"{math.exp(mean - t * error):.3f} to {math.exp(mean + t * error):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
