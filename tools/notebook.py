"""
tools/notebook.py: runs nn_from_scratch.ipynb top to bottom in a fresh Jupyter kernel and
writes it back with its outputs, pictures included, so that it reads on GitHub unrun:

    pip install nbclient nbformat ipykernel matplotlib
    python tools/notebook.py

It runs beside nn_from_scratch.py, whose functions its drift cell compares with its own,
on the MNIST that `python nn_from_scratch.py` cached (or else from OpenML). A hash of the
code cells goes into the notebook's metadata: tests/test_notebook.py checks that the
outputs were made from the code that is there now, and runs the notebook itself, with run().
"""

import hashlib
import importlib.util
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOK = os.path.join(ROOT, "nn_from_scratch.ipynb")


def code_hash(notebook):
    """sha256 of the code cells' sources, in order: what the outputs were made from.
    notebook: nbformat's, or its JSON as a dict (a cell's source a string or a list of lines)."""
    digest = hashlib.sha256()
    for cell in notebook["cells"]:
        if cell["cell_type"] == "code":
            source = cell["source"]
            digest.update(("".join(source) if isinstance(source, list) else source).encode())
            digest.update(b"\0")
    return digest.hexdigest()


def run(notebook, folder, cells=None, timeout=600):
    """Execute the nbformat notebook in place, in a fresh kernel working in `folder`: all of
    it, or its first `cells` cells. A cell that fails raises nbclient's CellExecutionError,
    with the cell's traceback."""
    from nbclient import NotebookClient
    client = NotebookClient(notebook, timeout=timeout, kernel_name="python3",
                            record_timing=False, resources={"metadata": {"path": folder}})
    if cells is None:
        return client.execute()
    with client.setup_kernel():
        for index, cell in enumerate(notebook.cells[:cells]):
            client.execute_cell(cell, index)
    return notebook


def main():
    missing = [name for name in ("nbclient", "nbformat", "ipykernel", "matplotlib")
               if importlib.util.find_spec(name) is None]
    if missing:
        print(f"tools/notebook.py: {', '.join(missing)} not installed (pip install nbclient "
              "nbformat ipykernel matplotlib)", file=sys.stderr)
        return 1
    import nbformat
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    run(notebook, ROOT)
    notebook.metadata["nn_from_scratch"] = {"code_hash": code_hash(notebook)}
    nbformat.write(notebook, NOTEBOOK)
    print(f"ran {os.path.relpath(NOTEBOOK)} and wrote it back with its outputs")
    return 0


if __name__ == "__main__":
    sys.exit(main())
