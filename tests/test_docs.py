"""The README, docs/ and benchmarks/: their examples run as shown, their links lead
somewhere, their figures are the scripts' own, and CI runs what the README says."""

import contextlib
import os
import re
import subprocess
import sys

import pytest

import nn_from_scratch as nn
from helpers import ROOT, lab_server, labmod, page_server

pytestmark = pytest.mark.filterwarnings("error")  # any warning fails its test


DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def python_examples():
    """Every fenced python block of README.md and docs/*.md that starts with its imports, as
    a pytest param named file:line. The walk-through's fragments (Z1 = X @ ...) do not."""
    examples = []
    for path in DOCS:
        text = path.read_text()
        for block in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M):
            if re.match(r"(import|from) ", block[1]):
                line = text.count("\n", 0, block.start()) + 1
                examples.append(pytest.param(block[1], id=f"{path.name}:{line}"))
    return examples


def github_anchor(heading):
    """The #fragment GitHub gives a Markdown heading: lower case, punctuation dropped."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


@pytest.mark.parametrize("hidden, network", [([], "784-128-10"), (["32", "16"], "784-32-16-10")])
def test_benchmark_runs_and_prints_its_tables(hidden, network, mnist_home, tmp_path):
    # one epoch on 2,000 images for this project, scikit-learn (its SGD setting runs the same
    # code as its Adam one) and PyTorch, plain and tuned, if installed, else the note that it
    # is missing; for the default network and a deep one
    env = {**os.environ, "SCIKIT_LEARN_DATA": str(mnist_home)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "compare.py"), "--seeds", "0",
                           "--epochs", "1", "--sklearn-epochs", "1", "--subset", "2000",
                           "--systems", "nn_from_scratch", "sklearn_adam", "pytorch",
                           "pytorch_tuned", "--markdown", str(tmp_path / "table.md")]
                          + (["--hidden", *hidden] if hidden else []),
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr
    assert re.search(rf"^network {network}; ", done.stdout, re.M), done.stdout  # the header
    rows = {line.split()[0]: line for line in done.stdout.splitlines() if line.strip()}
    for system in ("nn_from_scratch", "sklearn_adam"):
        assert re.search(r"\d+ MiB$", rows[system]), rows.get(system)
    try:
        import torch  # noqa: F401
        assert "pytorch" in rows and "pytorch_tuned" in rows
        assert "x the tuned PyTorch's (target <= 1.0)" in done.stdout
        assert re.search(r"^the matrix products alone: NumPy's [\d.]+ s an epoch, PyTorch's",
                         done.stdout, re.M)
    except ImportError:
        assert "note: PyTorch is not installed" in done.stdout
        assert "pytorch" not in rows and "pytorch_tuned" not in rows
    assert "x the NumPy matmul floor" in done.stdout
    table = (tmp_path / "table.md").read_text()
    assert table.count("\n| ") >= 3 and "this project, default settings" in table
    assert table.startswith(f"network {network}; ")


def test_epoch_profile_takes_apart_the_epoch_that_train_runs(mnist_home):
    # the profile's epoch must end with train()'s weights, bit for bit, or it exits 1; it
    # names every part the matrix products of a two-hidden-layer network included
    env = {**os.environ, "SCIKIT_LEARN_DATA": str(mnist_home)}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "epoch_profile.py"),
                           "--subset", "2000", "--rounds", "1", "--hidden", "32", "16"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    for part in ("gather the batch", "shift", "scale to floats", "one-hot", "forward: X @ W1",
                 "forward: A1 @ W2", "forward: A2 @ W3", "backward: A2^T @ dZ3",
                 "backward: dZ3 @ W3^T", "backward: A1^T @ dZ2", "backward: dZ2 @ W2^T",
                 "backward: X^T @ dZ1", "ReLU (forward)", "ReLU slope", "softmax", "update",
                 "denormal flush", "layer-speed sampling"):
        assert re.search(rf"^  {re.escape(part)}.* ms ", done.stdout, re.M), part
    assert "backward: dZ1 @ W1^T" not in done.stdout  # training needs no gradient for X
    assert re.search(r"^the parts add up to [\d.]+ ms, [\d.]+ x train\(\)'s epoch$",
                     done.stdout, re.M)


def test_learning_rate_search_reads_the_validation_accuracy_of_each_run(tmp_path):
    # benchmarks/choose_lr.py runs the real command line and reads the last epoch's
    # validation accuracy from its --log; a run that diverges counts as no result
    import benchmarks.choose_lr as choose_lr
    accuracy = choose_lr.validation_accuracy("--dataset digits --epochs 3", 0.2, 0, str(tmp_path))
    assert 0.8 < accuracy <= 1
    assert choose_lr.validation_accuracy("--dataset digits --epochs 1", 1e9, 0,
                                         str(tmp_path)) is None


def test_experiments_sweep_runs_the_script_and_writes_its_table(tmp_path):
    # two rows of the sweep, one seed each: each runs the real command line and its row has
    # the measured accuracy and times; a failing run is a row with its error line
    import benchmarks.experiments as experiments
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "experiments.py"),
                           "--only", "dataset digits", "--seeds", "1", "--markdown",
                           str(tmp_path / "table.md")], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    table = (tmp_path / "table.md").read_text().splitlines()
    row = next(line for line in table if "--dataset digits" in line)
    assert re.search(r"\| 9\d\.\d\d% \| (\d+ ms|\d\.\d\d s) \| \d+\.\d s \|", row), row
    failed = experiments.summarise("--lr 0", "nothing", "a lesson",
                                   [experiments.run("--dataset digits --lr 0", 0, str(tmp_path))])
    assert "--lr must be a finite number > 0" in failed[2]


def test_docs_experiments_is_the_page_the_script_writes_and_the_readme_quotes_it():
    # docs/experiments.md is exactly what experiments.py's page() makes of its rows (so the
    # script, run again, writes it), every experiment has its row, and the README's dozen
    # rows are copied from it, word for word
    import benchmarks.experiments as experiments
    lines = (ROOT / "docs" / "experiments.md").read_text().splitlines()
    start = lines.index("| " + " | ".join(experiments.HEADER) + " |")
    table = [line for line in lines[start + 2:] if line.startswith("| ")]
    rows = [line[2:-2].split(" | ") for line in table]
    machine = lines[start - 2].rsplit("; `python benchmarks/experiments.py`", 1)[0]
    assert experiments.page(rows, machine).splitlines() == lines
    assert [row[0] for row in rows] == [f"`{f'python nn_from_scratch.py {e[0]}'.strip()}`"
                                        for e in experiments.EXPERIMENTS]
    readme = [line for line in (ROOT / "README.md").read_text().splitlines()
              if line.startswith("| `python nn_from_scratch.py")]
    assert 10 <= len(readme) <= 14 and set(readme) <= set(table)


def test_the_readme_and_docs_have_their_library_and_api_examples_to_run():
    # the test below has something to run: the README's library example and docs/page.md's
    # POST /predict and lab scripts are found
    found = [(p.id.split(":")[0], p.values[0]) for p in python_examples()]
    assert any(file == "README.md" and "nn.train(" in code for file, code in found)
    assert any(file == "page.md" and "/predict" in code for file, code in found)
    assert any(file == "page.md" and "/runs" in code for file, code in found)


@pytest.mark.parametrize("code", python_examples())
def test_every_complete_python_example_in_the_readme_and_docs_runs_as_shown(code, mnist_home,
                                                                           mnist, mnist_model,
                                                                           tmp_path):
    # pasted into a fresh Python with MNIST cached, each example runs without a warning or an
    # error and prints what the text beside it says: the notebook two test accuracies, the
    # API example the "1" it sends (to a real server of trained weights; only the port is
    # changed, to the free one the server got), the lab's script Adam at 0.2 well behind
    # Adam at its own rate (to a lab on MNIST), the stroke-width measurement 0.100
    env = os.environ | {"SCIKIT_LEARN_DATA": str(mnist_home), "PYTHONPATH": str(ROOT)}
    with contextlib.ExitStack() as stack:
        if "127.0.0.1:8000" in code:
            lab = labmod.Lab(nn.parse_args([]), (*nn.split_mnist(*mnist), "MNIST"))
            port = stack.enter_context(lab_server(lab) if "/runs" in code
                                       else page_server(mnist_model))
            code = code.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        run = subprocess.run([sys.executable, "-W", "error", "-c", code], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=300)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    if "/runs" in code:
        lines = [line.rsplit(" ", 2) for line in run.stdout.splitlines()]
        assert [(name, state) for name, state, _ in lines] == [
            ("--epochs 5 --lr 0.2 --optimizer adam", "done"), ("--epochs 5 --optimizer adam", "done")]
        assert float(lines[0][2]) < float(lines[1][2]) - 0.02, lines  # 0.2 is SGD's rate
    elif "urlopen" in code:
        label, probability = run.stdout.split()
        assert label == "1" and float(probability) > 0.5
    elif "stroke_width" in code:
        assert run.stdout == "0.100\n"
    else:
        assert "nn.train(" in code, "a new example: say here what it prints"
        accuracies = [float(line) for line in run.stdout.splitlines()
                      if re.fullmatch(r"0\.\d+", line)]
        assert len(accuracies) == 2 and min(accuracies) > 0.95, run.stdout


def test_every_link_between_the_readme_and_docs_leads_somewhere():
    # each relative link and image in README.md and docs/*.md names a file that exists and,
    # after a #, a heading of that file
    broken = []
    for path in DOCS:
        text = re.sub(r"^```.*?^```", "", path.read_text(), flags=re.S | re.M)  # not code
        for target in re.findall(r"\]\(([^)\s]+)\)|src=\"([^\"]+)\"", text):
            target = target[0] or target[1]
            if re.match(r"https?:", target):
                continue
            file, _, anchor = target.partition("#")
            linked = (path.parent / file).resolve() if file else path
            if not linked.exists():
                broken.append(f"{path.name}: {target}")
            elif anchor:
                headings = re.findall(r"^#+ (.*)$", re.sub(r"^```.*?^```", "", linked.read_text(),
                                                          flags=re.S | re.M), re.M)
                if anchor not in map(github_anchor, headings):
                    broken.append(f"{path.name}: {target}")
    assert broken == []


def test_ci_runs_the_readmes_two_commands_as_a_user_would():
    # .ci/run ends with the README's two commands, as written and in order, so that CI tests
    # what a reader runs; it runs them in a fresh home folder, without $NN_SHARED_DATA, so
    # that the tests find MNIST only where the first command put it
    readme = (ROOT / "README.md").read_text()
    commands = re.findall(r"^(pip install -r requirements.txt && python [^#\n]*?)\s*#", readme,
                          re.M)
    assert commands == ["pip install -r requirements.txt && python nn_from_scratch.py",
                        "pip install -r requirements.txt && python -m pytest -q"]
    lines = (ROOT / ".ci" / "run").read_text().strip().splitlines()
    assert lines[-2:] == commands
    # and before that in a virtual environment of requirements.txt alone, CI unset, as a
    # user who installed nothing else has it
    alone = lines.index("    unset CI")
    assert 'export PATH="$HOME/only-requirements/bin:$PATH"' in lines[alone - 1]
    assert [line.strip() for line in lines[alone + 1:alone + 3]] == commands
    assert "unset NN_SHARED_DATA SCIKIT_LEARN_DATA" in lines and 'HOME="$(mktemp -d)"' in \
        "\n".join(lines) and "export HOME" in lines


def collected(*paths):
    """How many tests pytest collects from paths (all of them, with none)."""
    run = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q",
                          "-p", "no:cacheprovider", *paths], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    return int(re.search(r"^(\d+) tests? collected", run.stdout, re.M)[1])


def test_the_figures_the_readme_takes_from_the_code_are_the_codes():
    # what the README says of the code is read from the code, so that it cannot drift: the
    # lines above the Plumbing banner, the number of the card's checks and of all the tests,
    # and the vanishing gradient's ratio, which its experiments table gives
    readme = " ".join((ROOT / "README.md").read_text().split())
    source = (ROOT / "nn_from_scratch.py").read_text().splitlines()
    core = source.index("# " + "=" * 76)  # the banner's first line; the core is above it
    assert source[core + 1].startswith("# Plumbing.")
    assert f"The first {core} lines of [`nn_from_scratch.py`]" in readme
    card = re.search(r"`python -m pytest -q test_nn.py` runs .*?, (\d+) tests in about", readme)
    everything = re.search(r"\(`test_docs.py`\): (\d+) tests, \d+ s on a", readme)
    assert int(card[1]) == collected("test_nn.py")
    assert int(everything[1]) == collected()
    prose = re.search(r"its first layer learning (\d+)x slower than its last in epoch 1 \(the "
                      r"median of seeds 0-2", readme)
    row = re.search(r"--hidden 30 30 30 30 --activation sigmoid` \|[^\n]*? layer 1 learns "
                    r"(\d+)x slower than layer 4 \|", readme)
    assert prose[1] == row[1]

