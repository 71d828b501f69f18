"""The fixtures the tests in this folder share, and test_nn.py's: real MNIST, a data folder
of their own, MNIST's OpenML download, trained networks."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the file, and test_nn.py
import nn_from_scratch as nn  # noqa: E402
from helpers import ROOT, read_until  # noqa: E402
from test_nn import MNIST_NPZ, data_folder_of_their_own, mnist  # noqa: E402, F401 (fixtures)


@pytest.fixture(scope="session")
def mnist_home(mnist, tmp_path_factory):
    """A data folder of the tests' own holding MNIST's cache, as the first run leaves it."""
    home = tmp_path_factory.mktemp("scikit_learn_data")
    shutil.copyfile(MNIST_NPZ, home / nn.CACHE_NAME)  # the cache's format: X, y
    return home


@pytest.fixture(scope="session")
def mnist_model(mnist):
    """Weights trained briefly on real MNIST (5 epochs, shifted batches: ~98% on test)."""
    X_train, y_train, _, _ = nn.split_mnist(*mnist)
    return nn.train(X_train, y_train, epochs=5, augment=True, log=None)[0]


@pytest.fixture
def start_cli():
    """start_cli(*flags): the script run as a user would, its output read up to the page's
    URL; (the process, those lines). Every process it started is stopped when the test
    ends, pass or fail, so that no server outlives its test."""
    processes = []

    def start(*args):
        process = subprocess.Popen([sys.executable, str(ROOT / "nn_from_scratch.py"),
                                    *map(str, args)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True)
        processes.append(process)
        return process, read_until(process, "http://")
    yield start
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate()

