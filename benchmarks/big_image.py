"""
benchmarks/big_image.py: how long and how much memory does --predict take for a photo-sized
image? Makes a one-stroke digit as an 8000x8000 PNG (grayscale, RGB and RGBA) and as a
48-megapixel 8000x6000 JPEG, then reads each with --predict in fresh processes, in turn:
as it is (reduced while it is read, see read_with_pillow) and whole (every pixel made a
float, as before the reduction). Prints the median wall time and peak memory of each.

    python benchmarks/big_image.py                       # ~1 minute; needs Pillow
    python benchmarks/big_image.py --weights model.npz   # a trained model's answers

Peak memory is each process's own (ru_maxrss). Linux carries a parent's peak over into a
child it starts, so the images are made in a process of their own, not in this one.
"""

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
import nn_from_scratch as nn  # noqa: E402

PREDICT = """if True:
    import resource, sys
    import nn_from_scratch as nn
    if sys.argv[1] == "whole":
        nn.READ_SIDE = 10 ** 9   # never reduced: every pixel becomes a float, as before
    code = nn.main(["--load", sys.argv[2], "--predict", sys.argv[3]])
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)  # KB
    sys.exit(code)"""


def make_images(folder):
    """{name: path}: a "1" (a stroke 300 pixels wide) and a "7" on a photo-sized canvas."""
    from PIL import Image, ImageDraw
    images = {}
    for mode, paper, ink in (("L", 255, 0), ("RGB", (255,) * 3, (0,) * 3),
                             ("RGBA", (0, 0, 0, 0), (0, 0, 255, 255))):
        picture = Image.new(mode, (8000, 8000), paper)
        ImageDraw.Draw(picture).line([(4000, 1000), (4000, 7000)], fill=ink, width=300)
        images[f"8000x8000 PNG, {mode}"] = os.path.join(folder, f"stroke-{mode}.png")
        picture.save(images[f"8000x8000 PNG, {mode}"])
    photo = Image.new("RGB", (8000, 6000), (240, 235, 225))  # off-white paper
    ImageDraw.Draw(photo).line([(3000, 1500), (5000, 1500), (3500, 4500)], fill=(30, 30, 40),
                               width=180)
    images["8000x6000 JPEG (48 MP photo)"] = os.path.join(folder, "photo.jpg")
    photo.save(images["8000x6000 JPEG (48 MP photo)"], quality=90)
    return images


def main():
    p = argparse.ArgumentParser(description=__doc__.strip().splitlines()[0])
    p.add_argument("--repeats", type=int, default=3, help="runs of each (default: 3)")
    p.add_argument("--weights", help="weights saved with --save (default: untrained ones)")
    p.add_argument("--make-images", metavar="DIR", help=argparse.SUPPRESS)
    args = p.parse_args()
    if importlib.util.find_spec("PIL") is None:
        sys.exit("benchmarks/big_image.py needs Pillow: pip install pillow")
    if args.make_images:
        print(json.dumps(make_images(args.make_images)))
        return
    with tempfile.TemporaryDirectory() as folder:
        weights = args.weights or os.path.join(folder, "w.npz")
        if not args.weights:
            nn.save_params(weights, nn.init_params([784, 128, 10], np.random.default_rng(0)))
        images = json.loads(subprocess.run([sys.executable, __file__, "--make-images", folder],
                                           capture_output=True, text=True, check=True).stdout)
        print(f"{'image':<30} {'read':<8} {'answer':<7} {'seconds':>8} {'peak MB':>8}")
        for name, path in images.items():
            for how in ("reduced", "whole"):
                seconds, peaks = [], []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    run = subprocess.run([sys.executable, "-c", PREDICT, how, weights, path],
                                         cwd=ROOT, capture_output=True, text=True, check=True)
                    seconds.append(time.perf_counter() - start)
                    peaks.append(int(run.stderr.split()[-1]) / 1024)
                answer = run.stdout.split("\n")[0].rsplit(" ", 1)[-1]
                print(f"{name:<30} {how:<8} {answer:<7} {statistics.median(seconds):>8.2f} "
                      f"{statistics.median(peaks):>8.0f}", flush=True)


if __name__ == "__main__":
    main()
