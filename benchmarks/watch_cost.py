"""
benchmarks/watch_cost.py: does watching the page slow the training down? Trains with
`python nn_from_scratch.py --serve --port 0`, once with headless Chromium open on the page
and once with no client at all, in turn, and prints the median epoch time of each and
their ratio (the first epoch of each run left out).

    python benchmarks/watch_cost.py                     # 3 pairs of 10-epoch runs, ~3 minutes
    python benchmarks/watch_cost.py --pairs 5 --epochs 20

Needs selenium (pip install selenium) and Debian's Chromium and its driver
(apt-get install chromium chromium-driver), named outright so that nothing is downloaded.
"""

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile

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


def epoch_times(watched, epochs, folder):
    """The epoch seconds of one run (from its --log), with the page open or with no client."""
    log = os.path.join(folder, "run.json")
    process = subprocess.Popen([sys.executable, SCRIPT, "--serve", "--port", "0", "--epochs",
                                str(epochs), "--log", log], stdout=subprocess.PIPE, text=True)
    driver = None
    try:
        for line in process.stdout:
            if line.startswith("http://") and watched:
                driver = browser()
                driver.set_window_size(1300, 1000)
                driver.get(line.strip())
            if line.startswith("test accuracy:"):
                break
    finally:
        if driver:
            driver.quit()
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)
    with open(log) as f:
        return [r["seconds"] for r in json.load(f)["history"]][1:]


def main():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--pairs", type=int, default=3, help="runs of each (default: 3)")
    p.add_argument("--epochs", type=int, default=10, help="epochs a run (default: 10)")
    args = p.parse_args()
    times = {"no client": [], "page open": []}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.pairs):
            for name in times:
                times[name] += epoch_times(name == "page open", args.epochs, folder)
    median = {name: statistics.median(t) for name, t in times.items()}
    for name, t in median.items():
        print(f"{name:>9}: median epoch {t:.3f} s ({len(times[name])} epochs)")
    print(f"page open / no client: {median['page open'] / median['no client']:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
