"""examples/quickstart.ipynb runs top to bottom, headless (nbclient), and shows what it
promises: the samples and the before/after grid as images, the strength curve as a
table, the app in a frame (answering while the notebook runs), then stopped."""

from __future__ import annotations

import json
import re
import sys
import urllib.request
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def _kernelspec(folder: Path) -> Path:
    """A ``python3`` kernel that runs this interpreter (the venv's), first on JUPYTER_PATH,
    so that no kernel of another Python installed for the user is picked instead."""
    spec = folder / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (rewrite .venv)", "language": "python"}))
    return folder


def _text(output) -> str:
    if output.get("output_type") == "stream":
        return output.get("text", "")
    return "".join(output.get("data", {}).get("text/plain", ""))


@pytest.mark.slow
def test_quickstart_notebook_runs_headless(tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("JUPYTER_PATH", str(_kernelspec(tmp_path / "jupyter")))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    assert nb.metadata.kernelspec.name == "python3"
    assert not any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), \
        "commit the notebook without outputs"
    # Extra cells, run in the same kernel: which Python it is, and whether the app answers
    # while it runs (before the last cell stops it).
    nb.cells.insert(1, nbformat.v4.new_code_cell("import sys; print('KERNEL', sys.executable)"))
    nb.cells.insert(len(nb.cells) - 1, nbformat.v4.new_code_cell(
        "import json, urllib.request\n"
        "print('INFO', json.load(urllib.request.urlopen(app.url + 'api/info'))['model'])"))
    client = NotebookClient(nb, timeout=900, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "examples")}})
    # The kernel gets this process's torch thread count (one per worker under `make test`).
    client.execute(env={**__import__("os").environ,
                        "OMP_NUM_THREADS": str(torch.get_num_threads())})

    outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    text = "\n".join(_text(o) for o in outputs)
    assert f"KERNEL {sys.executable}" in text
    images = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(images) == 2, [o.get("data", {}).keys() for o in outputs]   # samples, before/after
    assert "INFO dcgan-digiface64" in text
    assert re.search(r"solved with least-collateral at main\.6", text)
    tables = [o.data["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert len(tables) == 1 and "| 1 (this spec) |" in tables[0] and "| 0.5 |" in tables[0]
    frames = [o.data["text/html"] for o in outputs if "<iframe" in o.get("data", {}).get("text/html", "")]
    assert len(frames) == 1
    url = re.search(r'src="(http://127\.0\.0\.1:\d+/)"', frames[0]).group(1)
    assert nb.cells[-1].outputs[-1].data["text/plain"] == f"<rewrite app at {url} (stopped)>"
    with pytest.raises(OSError):                           # stopped: nothing listens there
        urllib.request.urlopen(url + "api/info", timeout=5)
