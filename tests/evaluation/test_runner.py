"""The evaluation runner on the fixtures with the tiny model: records and summary as the contract says,
resume recomputes nothing, a changed config recomputes, broken videos become error records."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from adaspark_eval.datasets import DatasetMissing, get_benchmark, parse_tasks
from adaspark_eval.datasets.scoring import score_records
from adaspark_eval.evaluation.runner import check_data, evaluate
from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.data.video import VideoSettings
from adaspark_eval.lmms.model import AdaSparkLMM
from adaspark_eval.results.store import REQUIRED_FIELDS, SAMPLES, SUMMARY, read_samples

ALL = parse_tasks("videomme,mlvu_dev,videoniah")
FAST = "max_new_tokens=2"


def tiny_lm(output: Path, **knobs) -> AdaSparkLMM:
    return AdaSparkLMM(pretrained="tiny", config=AdaSparkConfig(**knobs), device="cpu", dtype="float32",
                       video=VideoSettings(min_pixels=3136, max_pixels=15680), output=output)


@pytest.fixture(scope="module")
def run(benchmark_root: Path, tmp_path_factory, one_torch_thread) -> tuple[AdaSparkLMM, dict]:
    """One evaluation of all three tasks, 2 samples each."""
    lm = tiny_lm(tmp_path_factory.mktemp("run"), p=0.7)
    return lm, evaluate(lm, ALL, benchmark_root, limit=2, gen_kwargs=FAST)


def test_records(run) -> None:
    lm, _ = run
    records = read_samples(lm.store.samples_path)
    assert len(records) == 6 and {r["task"] for r in records} == {"videomme", "mlvu_dev", "videoniah"}
    for record in records:
        assert set(REQUIRED_FIELDS) <= set(record)
        assert record["config_key"] == lm.config_key and record["error"] is None
        assert isinstance(record["correct"], bool) and record["answer"] in "ABCD"
        assert record["prompt"].startswith("<|im_start|>system") and record["tokens"]["visual"] == 40
        assert record["flops"]["total"]["actual"] <= record["flops"]["total"]["dense"]
        assert [layer["layer"] for layer in record["layers"]] == [0, 1, 2, 3]
        assert 0 < record["latency"]["prefill_s"] <= record["latency"]["total_s"]
    niah = [r for r in records if r["task"] == "videoniah"]
    assert all({"video", "type", "try", "depth", "length", "options"} <= set(r["niah"]) for r in niah)


def test_summary(run) -> None:
    lm, summary = run
    assert summary == json.loads((lm.store.folder / SUMMARY).read_text())
    assert summary["config"] == lm.config.to_dict() and summary["config"]["p"] == 0.7
    assert (summary["model"], summary["method"], summary["config_key"]) == ("tiny", "adaspark", lm.config_key)
    assert (summary["n_samples"], summary["n_errors"]) == (6, 0)
    assert {"videomme/overall", "mlvu_dev/m_avg", "videoniah/overall"} <= set(summary["scores"])
    videomme = [r for r in lm.store.records.values() if r["task"] == "videomme"]
    assert summary["scores"]["videomme/overall"] == 100.0 * sum(r["correct"] for r in videomme) / len(videomme)
    assert 0 < summary["flop_reduction"]["llm_prefill"] < 1 and summary["latency"]["total_s"] > 0
    assert summary["versions"]["lmms_eval"] == "0.7.3" and summary["git_revision"]
    records = list(lm.store.records.values())
    for field, rule in (("scores", "lmms"), ("scores_official", "official")):  # both rules, from the records
        rescored = {f"{b.name}/{metric}": value for b in ALL
                    for metric, value in score_records(b.name, [r for r in records if r["task"] == b.name], rule).items()}
        assert summary[field] == pytest.approx(rescored)


def test_rerun_recomputes_nothing(run, benchmark_root: Path) -> None:
    lm, summary = run
    lines = (lm.store.folder / SAMPLES).read_text()
    again = evaluate(lm, ALL, benchmark_root, limit=2, gen_kwargs=FAST)
    assert (lm.store.folder / SAMPLES).read_text() == lines
    assert again["scores"] == summary["scores"] and again["latency"] == summary["latency"]


def test_changed_config_is_computed_again(run, benchmark_root: Path) -> None:
    lm, _ = run
    before, key = len(read_samples(lm.store.samples_path)), lm.config_key
    lm.configure(lm.config.replace(p=0.5))
    try:
        summary = evaluate(lm, parse_tasks("videomme"), benchmark_root, limit=1, gen_kwargs=FAST)
    finally:
        lm.configure(lm.config.replace(p=0.7))
    records = read_samples(lm.store.samples_path)
    assert len(records) == before + 1 and records[-1]["config_key"] == summary["config_key"] != key


def test_broken_videos_become_errors_and_the_run_goes_on(benchmark_root: Path, tmp_path: Path,
                                                         one_torch_thread) -> None:
    root = tmp_path / "data"
    for name in ("videomme", "mlvu_dev"):
        shutil.copytree(benchmark_root / name, root / name)
    docs = get_benchmark("videomme").read_docs(root)
    Path(docs[0]["video_path"]).unlink()
    Path(docs[1]["video_path"]).write_bytes(b"\x00" * 1024)
    lm = tiny_lm(tmp_path / "run")
    summary = evaluate(lm, parse_tasks("videomme,mlvu_dev"), root, limit=2, gen_kwargs=FAST)
    errors = {r["sample_id"]: r for r in lm.store.records.values() if r["error"] is not None}
    assert sorted(errors) == ["001-1", "002-1"]
    assert "does not exist" in errors["001-1"]["error"] and "cannot be decoded" in errors["002-1"]["error"]
    assert all(r["prediction"] is None and r["correct"] is None for r in errors.values())
    assert (summary["n_samples"], summary["n_errors"]) == (4, 2)
    assert summary["scores"]["videomme/overall"] == 0.0 and "mlvu_dev/m_avg" in summary["scores"]


def test_missing_dataset_stops_before_loading(tmp_path: Path) -> None:
    with pytest.raises(DatasetMissing, match="mlvu_dev: .*not found; it is mlvu/test-00000-of-00001.parquet"):
        check_data(parse_tasks("mlvu_dev"), tmp_path)
