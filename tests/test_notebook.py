"""The notebook, nn_from_scratch.ipynb, run in a real Jupyter kernel."""

import ast
import importlib
import importlib.util
import inspect
import json
import re
import shutil
import sys
from pathlib import Path

import pytest

import nn_from_scratch as nn
from helpers import ROOT, copy_openml_download
from test_nn import unavailable

pytestmark = pytest.mark.filterwarnings("error")  # any warning fails its test


NOTEBOOK = ROOT / "nn_from_scratch.ipynb"


def notebook_tools():
    """tools/notebook.py, and nbformat for reading notebooks, once nbclient, ipykernel and
    matplotlib (which the notebook draws with) are known to be here; else skipped, naming
    every one that is not."""
    absent = []
    for module in ("nbclient", "nbformat", "ipykernel", "matplotlib"):
        try:
            importlib.import_module(module)
        except ImportError:
            absent.append(module)
    if absent:
        unavailable(f"{', '.join(absent)} {'is' if len(absent) == 1 else 'are'} not installed "
                    "(pip install nbclient nbformat ipykernel matplotlib)")
    import nbformat
    return load_tool("tools/notebook.py"), nbformat


def load_tool(path):
    """A script of tools/ or benchmarks/, imported as a module."""
    spec = importlib.util.spec_from_file_location(Path(path).stem, ROOT / path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def outputs_text(cell):
    """What a code cell printed, as one string (in a notebook's JSON, a list of lines)."""
    return "".join("".join(out.get("text", "")) for out in cell.get("outputs", []))


def run_notebook(folder, cells=None):
    """Copy the notebook into folder and run it there in a fresh kernel (its first `cells`
    cells, or all), with MNIST wherever $SCIKIT_LEARN_DATA says; the executed notebook."""
    tool, nbformat = notebook_tools()
    shutil.copyfile(NOTEBOOK, folder / NOTEBOOK.name)
    notebook = nbformat.read(folder / NOTEBOOK.name, as_version=4)
    return tool.run(notebook, str(folder), cells)


@pytest.mark.parametrize("module", ["nbclient", "ipykernel", "matplotlib"])
def test_without_jupyter_or_matplotlib_the_notebooks_tests_skip_saying_so(module, monkeypatch):
    # a missing nbclient, ipykernel or matplotlib skips a notebook test with how to install
    # it, instead of an ImportError; where CI is set, it fails instead
    monkeypatch.setitem(sys.modules, module, None)
    monkeypatch.delenv("CI", raising=False)
    reason = (rf"^(\w+, )*{module}(, \w+)* (is|are) not installed \(pip install nbclient "
              r"nbformat ipykernel matplotlib\)$")
    with pytest.raises(pytest.skip.Exception, match=reason):
        notebook_tools()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match=reason):
        notebook_tools()


def test_the_committed_notebook_carries_the_outputs_of_its_code_as_it_is():
    # the code cells hash to what tools/notebook.py recorded when it ran them, every code
    # cell has run, in order, without an error, and the pictures are there: the post's (a
    # digit, ReLU) and those it never reached (the loss curve, the confusion matrix, the
    # mistakes, the weights). Reads the JSON itself: needs no Jupyter
    notebook = json.loads(NOTEBOOK.read_text())
    code_hash = load_tool("tools/notebook.py").code_hash
    assert notebook["metadata"]["nn_from_scratch"]["code_hash"] == code_hash(notebook), \
        "a code cell changed after the outputs were made: run python tools/notebook.py"
    cells = [c for c in notebook["cells"] if c["cell_type"] == "code"]
    assert [c["execution_count"] for c in cells] == list(range(1, len(cells) + 1))
    outputs = [out for c in cells for out in c["outputs"]]
    assert not [out for out in outputs if out["output_type"] == "error"]
    assert sum("image/png" in out.get("data", {}) for out in outputs) >= 6
    assert "bit for bit" in "".join(map(outputs_text, cells))  # made beside the file


def test_the_notebook_runs_alone_in_an_empty_folder_to_975_percent(mnist_home, tmp_path,
                                                                    monkeypatch):
    # top to bottom in a fresh Jupyter kernel, with nothing beside it and MNIST where the
    # file caches it: its own asserts hold (the gradient check, 97.5% on the test images),
    # the drift cell says there is no file to compare with, and the training loop's figure
    # was redrawn in place (one picture, the last epoch's)
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(mnist_home))
    notebook = run_notebook(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == [NOTEBOOK.name]
    text = "".join(outputs_text(c) for c in notebook.cells if c.cell_type == "code")
    assert "gradient check passed" in text and "nothing to compare with" in text
    assert float(re.search(r"test accuracy: ([\d.]+)%", text)[1]) >= 97.5
    loop = next(c for c in notebook.cells if "shown.update(figure)" in c.source)
    assert [out.output_type for out in loop.outputs] == ["display_data"]
    assert "epoch 10 of 10" not in outputs_text(loop)  # said in the picture, not printed


def test_the_notebooks_drift_cell_fails_when_the_files_backward_pass_changes(mnist_home,
                                                                            tmp_path,
                                                                            monkeypatch):
    # beside nn_from_scratch.py the drift cell finds the file's forward pass, gradients and
    # update equal to the notebook's, bit for bit; with one bias gradient changed by a part
    # in a million, it fails, naming it
    notebook_tools()  # or skipped, saying what to install
    from nbclient.exceptions import CellExecutionError
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(mnist_home))
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    drift = next(i for i, c in enumerate(cells) if "drift" in c["metadata"].get("tags", []))
    source = (ROOT / "nn_from_scratch.py").read_text()
    for folder, changed in [(tmp_path / "same", source), (tmp_path / "changed", source.replace(
            'grads[f"b{l}"] = dZ.sum(axis=0)', 'grads[f"b{l}"] = dZ.sum(axis=0) * (1 + 1e-6)'))]:
        folder.mkdir()
        (folder / "nn_from_scratch.py").write_text(changed)
        if changed == source:
            notebook = run_notebook(folder, drift + 1)
            assert "bit for bit" in outputs_text(notebook.cells[drift])
        else:
            with pytest.raises(CellExecutionError, match="the gradients differ: b1, b2"):
                run_notebook(folder, drift + 1)


def test_the_notebook_reads_mnist_from_openml_where_the_file_has_cached_nothing(tmp_path,
                                                                               monkeypatch):
    # the data cell, in a data folder holding fetch_openml's download and no cache of the
    # file's: it reads MNIST through fetch_openml, 70,000 images of 784 pixels, text labels
    copy_openml_download(tmp_path / "data")
    monkeypatch.setenv("SCIKIT_LEARN_DATA", str(tmp_path / "data"))
    (tmp_path / "run").mkdir()
    notebook = run_notebook(tmp_path / "run", 4)
    assert "(70000, 784) float64 pixels from 0.0 to 255.0 | the first labels: ['5' '0' '4'" in \
        outputs_text(notebook.cells[3])


def test_the_notebooks_last_cell_calls_the_file_as_it_is():
    # every nn.name(...) call that the notebook's last cell points to names a function of the
    # file, with arguments its signature takes
    last = "".join(json.loads(NOTEBOOK.read_text())["cells"][-1]["source"])
    block = re.search(r"```python\n(.*?)```", last, re.S)[1]
    calls = [node for node in ast.walk(ast.parse(block)) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute) and getattr(node.func.value, "id", "") == "nn"]
    assert {c.func.attr for c in calls} >= {"train", "predict", "accuracy", "gradient_check", "main"}
    for call in calls:
        inspect.signature(getattr(nn, call.func.attr)).bind(
            *call.args, **{k.arg: k.value for k in call.keywords})
    assert nn.parse_args(["--serve"]).serve
