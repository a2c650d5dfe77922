"""Reading a results tree: run folders found, samples keyed like the store, configs merged."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.reporting.aggregate import configs, points
from adaspark_eval.reporting.labels import config_label, flat_knobs, series_name
from adaspark_eval.reporting.load import NoRunsError, find_runs, load_results
from tests.reporting.results_fixture import ABLATIONS, LAYERS, P_SWEEP, PEER, fixture_samples

N_SAMPLES = len(fixture_samples())
N_CONFIGS = 1 + len(P_SWEEP) + len(ABLATIONS) + len(PEER[1])


def test_runs_are_folders_with_summary_and_samples(results_tree: Path) -> None:
    runs = [path.relative_to(results_tree).as_posix() for path in find_runs(results_tree)]
    assert "in-progress" not in runs  # samples but no summary yet
    assert len(runs) == N_CONFIGS + 1  # the dense config is split over two folders
    assert {"dense/part1", "dense/part2", "sweep/p0.8", "ablations/cube-2x2x2"} <= set(runs)


def test_samples_are_keyed_like_the_store(results_tree: Path) -> None:
    results = load_results(results_tree)
    assert len(results.samples) == N_CONFIGS * N_SAMPLES  # the stale record of another config is dropped
    assert "adaspark-stale" not in set(results.samples["config_key"])
    assert not results.samples.duplicated(["config_key", "task", "sample_id"]).any()
    dense = results.samples[results.samples["method"] == "dense"]
    assert dense["config_key"].nunique() == 1 and len(dense) == N_SAMPLES  # both folders merged
    assert len(results.layers) == (len(P_SWEEP) + len(ABLATIONS)) * N_SAMPLES * LAYERS  # AdaSpark records layers
    assert results.samples["correct"].dtype == "boolean"
    assert set(results.samples["niah.depth"].dropna()) == {0.1, 0.7}


def test_configs_and_points(results_tree: Path) -> None:
    results = load_results(results_tree)
    table = configs(results)
    assert list(table["label"][:4]) == ["dense", *(f"adaspark p={p}" for p in P_SWEEP)]
    assert table["label"].is_unique
    pts = points(results)
    assert len(pts) == N_CONFIGS * 3
    row = pts[(pts["label"] == "adaspark p=0.8") & (pts["task"] == "mlvu_dev")].iloc[0]
    assert row["metric"] == "m_avg"
    assert row["prefill_reduction"] == pytest.approx(40.0)  # the fixture keeps 0.2 + 0.5 p of the prefill
    assert row["n"] == 6 and row["errors"] == 0


def test_newest_run_wins_for_a_repeated_key(results_tree: Path, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    shutil.copytree(results_tree / "sweep", root / "old")
    shutil.copytree(results_tree / "sweep/p0.8", root / "rerun")
    summary = json.loads((root / "rerun/summary.json").read_text())
    summary.update(created="2027-01-01T00:00:00", scores={**summary["scores"], "videomme/overall": 12.5})
    (root / "rerun/summary.json").write_text(json.dumps(summary))
    results = load_results(root, scoring=None)  # the summaries' scores as the runs reported them
    score = results.scores.query("task == 'videomme' and metric == 'overall' and config_key == @summary['config_key']")
    assert list(score["value"]) == [12.5] and list(score["rule"]) == ["as run"]
    assert set(results.samples.loc[results.samples["config_key"] == summary["config_key"], "run"]) == {"rerun"}


def test_empty_folder_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(NoRunsError, match="no runs under .*--results"):
        load_results(tmp_path)


def test_several_models_need_a_choice(results_tree: Path, tmp_path: Path) -> None:
    root = tmp_path / "tree"
    shutil.copytree(results_tree / "sweep", root)
    summary_path = root / "p0.6/summary.json"
    summary_path.write_text(json.dumps({**json.loads(summary_path.read_text()), "model": "other"}))
    with pytest.raises(ValueError, match="several models .*--model"):
        load_results(root)
    assert len(load_results(root, model="other").runs) == 1
    with pytest.raises(NoRunsError, match="found: fixture, other"):
        load_results(root, model="missing")


def test_labels_name_the_knobs_off_default() -> None:
    def knobs(**changes: object) -> dict:
        return flat_knobs(AdaSparkConfig(**changes).to_dict())

    assert config_label("dense", knobs(p=0.5)) == "dense"
    assert config_label("dense", knobs(attn_impl="fa4")) == "dense attn_impl=fa4"  # the dense kernel is named
    assert config_label("adaspark", knobs(p=0.7, attn_impl="fa4")) == "adaspark p=0.7 attn_impl=fa4"
    assert config_label("adaspark", knobs(p=0.7)) == "adaspark p=0.7"
    assert config_label("adaspark", knobs(p=0.8, cube=(2, 2, 2))) == "adaspark p=0.8 cube=2x2x2"
    assert config_label("adaspark", knobs(fixed_ratio=0.3)) == "adaspark fixed_ratio=0.3"
    assert series_name("adaspark", knobs(p=0.6)) == "adaspark"
    assert series_name("adaspark", knobs(fixed_ratio=0.3)) == "adaspark fixed ratio"
    assert series_name("adaspark", knobs(p=0.6, ffn=False)) == "adaspark ffn=False"
    assert series_name("fastv", knobs(p=0.6)) == "fastv"
