"""``report plot``: every figure as PNG and PDF, the Pareto front, the VideoNIAH heatmap data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from adaspark_eval.reporting.aggregate import configs, layer_profile, niah_tables, points
from adaspark_eval.reporting.load import Results, load_results
from adaspark_eval.reporting.plots import accuracy_vs_flops, figures, pareto_front, plot_all
from tests.reporting.results_fixture import LAYERS, NIAH_LENGTHS, P_SWEEP

STEMS = ["accuracy_vs_flops_videomme", "accuracy_vs_flops_mlvu_dev", "accuracy_vs_flops_videoniah",
         "layer_sparsity", "niah_depth_length"]


@pytest.fixture(scope="module")
def results(results_tree: Path) -> Results:
    return load_results(results_tree)


def test_plot_all_writes_png_and_pdf(results: Results, tmp_path: Path) -> None:
    paths = plot_all(results, tmp_path / "plots")
    assert sorted(p.name for p in paths) == sorted(f"{stem}.{fmt}" for stem in STEMS for fmt in ("png", "pdf"))
    for path in paths:
        head = path.read_bytes()[:8]
        assert head.startswith(b"\x89PNG" if path.suffix == ".png" else b"%PDF")


def test_accuracy_plot_draws_one_curve_per_series_and_the_dense_point(results: Results) -> None:
    fig = accuracy_vs_flops(points(results), "videomme")
    relative, absolute = fig.axes[:2]
    series = configs(results)["series"]
    curves = {line.get_label(): line for line in relative.get_lines()}
    assert set(curves) == (set(series) - {"dense"}) | {"Pareto front"}
    assert list(curves["adaspark"].get_xdata()) == pytest.approx([20 + 50 * p for p in P_SWEEP])  # % of dense
    dense = next(c for c in relative.collections if c.get_label() == "dense")
    assert dense.get_offsets()[0][0] == 100.0
    assert absolute.get_xlabel().startswith("LLM prefill TFLOPs")


def test_pareto_front() -> None:
    flops = pd.Series([1.0, 2.0, 2.0, 3.0, 4.0, 5.0])
    score = pd.Series([10.0, 30.0, 20.0, 25.0, 40.0, 40.0])
    assert list(pareto_front(flops, score)) == [0, 1, 4]


def test_layer_profile_is_per_p_and_layer(results: Results) -> None:
    profile = layer_profile(results)
    assert len(profile) == len(P_SWEEP) * LAYERS
    row = profile[(profile["p"] == 0.8) & (profile["layer"] == 0)].iloc[0]
    assert row["kept_cube_fraction"] == pytest.approx(0.6 * 0.7)  # kept fraction x layer factor of the fixture


def test_niah_heatmap_uses_the_circular_rule(results: Results) -> None:
    tables = niah_tables(results)
    assert list(tables) == list(configs(results).index)  # every config ran VideoNIAH
    dense = tables[configs(results).index[0]]
    assert list(dense.columns) == list(NIAH_LENGTHS)
    assert set(dense.stack().dropna()) == {100.0}  # the fixture's dense run answers every try right


def test_figures_skip_what_the_runs_lack(results_tree: Path, tmp_path: Path) -> None:
    shutil.copytree(results_tree / "dense/part1", tmp_path / "dense")  # no layers, no VideoNIAH
    assert list(figures(load_results(tmp_path))) == ["accuracy_vs_flops_videomme", "accuracy_vs_flops_mlvu_dev"]


def test_figures_of_peer_methods_alone(results_tree: Path, tmp_path: Path) -> None:
    """Runs whose configs hold no AdaSpark ``p`` (VisionZip's, DyCoke's settings only) have no layer profile
    and still plot."""
    run = next(p for p in (results_tree / "peers").iterdir() if p.is_dir())
    shutil.copytree(run, tmp_path / "peer")
    summary = tmp_path / "peer" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "config": {"visionzip_keep": 0.5}}))
    results = load_results(tmp_path)
    assert layer_profile(results).empty
    assert "accuracy_vs_flops_videoniah" in figures(results)
