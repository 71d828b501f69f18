"""
benchmarks/watch_cost.py: does watching a run in the lab slow it down? Trains the same
command in turn typed in a terminal (no server, no browser) and started from the lab's page
while headless Chromium has the page open on it, and prints the median epoch time of each
and their ratio (the first epoch of each run left out).

    python benchmarks/watch_cost.py                     # 5 pairs of 10-epoch runs, ~2 minutes
    python benchmarks/watch_cost.py --pairs 10 --flags "--epochs 20"
    python benchmarks/watch_cost.py --pairs 10 --same   # both typed: the machine's own noise

The browser is started once; the page is opened, and left to settle, before its run starts,
as a learner's page is, and closed (about:blank) in the terminal's turn: what is measured
is watching, not the browser's start. Needs selenium (pip install selenium) and
Debian's Chromium and its driver (apt-get install chromium chromium-driver), named outright
so that nothing is downloaded.
"""

import argparse
import json
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


def watched(flags, url, driver, settle=3):
    """The epoch seconds of the same command started from the lab, with the page open on it
    (the page follows the newest run), from the run's record."""
    def ask(path, body=None):
        headers = {"Content-Type": "application/json"} if body else {}
        with urllib.request.urlopen(urllib.request.Request(url + path, body, headers)) as r:
            return json.load(r)
    driver.get(url)
    time.sleep(settle)
    run = ask("runs", json.dumps({"flags": flags}).encode())["id"]
    while next(r for r in ask("runs") if r["id"] == run)["state"] != "done":
        time.sleep(0.2)
    driver.get("about:blank")  # the page is closed, and the browser idle, in the terminal's turn
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
        threading.Thread(target=server.stdout.read, daemon=True).start()  # the runs' lines
        with tempfile.TemporaryDirectory() as folder:
            for _ in range(args.pairs):
                pair = typed(args.flags, folder), (typed(args.flags, folder) if args.same
                                                   else watched(args.flags, url, driver))
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
    return 0


if __name__ == "__main__":
    sys.exit(main())
