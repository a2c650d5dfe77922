"""``notebooks/analysis.ipynb`` runs top to bottom on the fixture results and shows tables and figures."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "analysis.ipynb"


def test_notebook_runs_on_fixture_results(results_tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADASPARK_RESULTS", str(results_tree))
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(notebook, timeout=300, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = [output for cell in notebook.cells if cell.cell_type == "code" for output in cell.outputs]
    assert not [output for output in outputs if output.output_type == "error"]
    html = [output["data"].get("text/html", "") for output in outputs if "data" in output]
    assert any("adaspark p=0.8 cube=2x2x2" in table for table in html)
    assert any("AdaSpark p=0.8" in table for table in html)  # the paper's main table
    images = [output for output in outputs if "data" in output and "image/png" in output["data"]]
    assert len(images) == 5  # accuracy vs FLOPs x 3 tasks, layer sparsity, VideoNIAH heatmap
