"""``report table|paper --scoring``: every benchmark's scores recomputed from the records' raw predictions
under the rule chosen, the rule named in every title and header. The run's predictions are free-form, so
the rules disagree (bare letters, as in ``results_fixture``, read the same under every rule)."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from adaspark_eval.cli.main import app
from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.reporting.load import load_results
from adaspark_eval.reporting.plots import figures
from adaspark_eval.results.store import RunStore

runner = CliRunner()
CONFIG_KEY = f"dense-{AdaSparkConfig().key()}"

# Video-MME (gold, prediction, duration), MLVU (gold, prediction, task type), VideoNIAH (type, video, the
# predictions of tries 0-3, whose gold letters are A, B, C, D). The stored ``correct`` (True) is not read.
VIDEOMME = [("A", "A", "short"), ("B", "Best option: (A)", "short"), ("C", "c", "long"), ("A", "Answer: C", "long")]
MLVU = [("A", "(A)", "count"), ("B", "B.", "count"), ("C", "The answer is C", "needle")]
NIAH = [("ret_edit1", "v1", ["A", "B", "C", "D"]), ("ret_edit1", "v2", ["A", "B", "C", "d"]),
        ("cnt_edit1", "v3", ["A", "Answer: B", "C", "D"])]


def records() -> list[dict]:
    out = []
    for i, (gold, prediction, duration) in enumerate(VIDEOMME):
        out.append({"task": "videomme", "sample_id": f"vm{i}", "answer": gold, "prediction": prediction,
                    "category": {"duration": duration, "domain": "Knowledge", "sub_category": "Astronomy",
                                 "task_type": "OCR Problems"}})
    for i, (gold, prediction, task_type) in enumerate(MLVU):
        out.append({"task": "mlvu_dev", "sample_id": f"ml{i}", "answer": gold, "prediction": prediction,
                    "category": {"task_type": task_type}})
    for type_, video, predictions in NIAH:
        for attempt, prediction in enumerate(predictions):
            out.append({"task": "videoniah", "sample_id": f"{video}_{attempt}", "answer": "ABCD"[attempt],
                        "prediction": prediction, "category": {"type": type_, "task": type_.split("_")[0]},
                        "niah": {"video": video, "type": type_, "try": attempt, "depth": 0.5, "length": 60.0}})
    return [{**r, "config_key": CONFIG_KEY, "method": "dense", "correct": True, "error": None, "parsed": None,
             "flops": {"llm_prefill": {"actual": 10, "dense": 10, "reduction": 0.0},
                       "total": {"actual": 20, "dense": 20, "reduction": 0.0}}} for r in out]


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("freeform") / "dense"
    store = RunStore(folder)
    for record in records():
        store.append(record)
    store.write_summary({"run": "dense", "model": "fixture", "method": "dense", "config": AdaSparkConfig().to_dict(),
                         "config_key": CONFIG_KEY, "tasks": ["videomme", "mlvu_dev", "videoniah"],
                         "scores": {"videomme/overall": 1.0}, "n_samples": 19, "n_errors": 0,
                         "created": "2026-01-01T00:00:00"})
    return folder.parent


def table_cells(results_dir: Path, *options: str) -> pd.DataFrame:
    result = runner.invoke(app, ["report", "table", "--results", str(results_dir), "--format", "csv", *options])
    assert result.exit_code == 0, result.output
    return pd.read_csv(io.StringIO(result.output))


def headline(cells: pd.DataFrame, task: str) -> tuple[str, float]:
    """(title, value) of the headline score of ``task``'s score table."""
    rows = cells[cells["table"].str.startswith(f"{task}: score") & cells["table"].str.contains("and cost")
                 & cells["column"].isin(["overall", "m_avg"])]
    assert len(rows) == 1
    return rows["table"].iloc[0], float(rows["value"].iloc[0])


def test_table_official_recomputes_every_benchmark(results_dir: Path) -> None:
    cells = table_cells(results_dir, "--scoring", "official")
    title, value = headline(cells, "videomme")
    assert "official rule" in title and value == 100.0  # "c" unread: left out; "Best option" reads B, "Answer" A
    title, value = headline(cells, "mlvu_dev")
    assert "official rule" in title and value == pytest.approx(25.0, abs=0.05)  # (50 + 0) / 2 types present
    title, value = headline(cells, "videoniah")
    assert "official rule" in title and value == 25.0  # ret_edit1 50 (v2's "d" unread), cnt_edit1 0 ("Answer: B": A)
    by_duration = cells[cells["table"] == "videomme: score (%, official rule) by duration"]
    assert dict(zip(by_duration["column"], by_duration["value"].astype(float))) == {"long": 100.0, "short": 100.0}


def test_table_lmms_and_default(results_dir: Path) -> None:
    lmms = table_cells(results_dir, "--scoring", "lmms")
    title = "videomme: score (%, lmms rule) and cost (FLOPs at 2 per multiply-add, means per scored sample)"
    assert headline(lmms, "videomme") == (title, 25.0)
    assert headline(lmms, "mlvu_dev")[1] == pytest.approx(200 / 7, abs=0.05)  # lmms-eval divides by 7
    title, value = headline(lmms, "videoniah")
    assert "lenient rule" in title and value == 100.0  # "d" reads D, "Answer: B" reads B: every question right
    default = table_cells(results_dir)
    assert "lmms rule" in headline(default, "videomme")[0] and "official rule" in headline(default, "videoniah")[0]


def test_paper_and_plots_name_the_rule(results_dir: Path) -> None:
    result = runner.invoke(app, ["report", "paper", "--results", str(results_dir), "--scoring", "official",
                                 "--format", "csv"])
    assert result.exit_code == 0, result.output
    columns = set(pd.read_csv(io.StringIO(result.output))["column"])
    assert {"VideoMME (overall, official)", "MLVU dev (m_avg, official)", "VideoNIAH (overall, official)"} <= columns
    fig = figures(load_results(results_dir, scoring="official"))["accuracy_vs_flops_videomme"]
    assert fig.axes[0].get_ylabel() == "videomme overall (%, official rule)"


def test_unknown_scoring_is_refused(results_dir: Path) -> None:
    result = runner.invoke(app, ["report", "table", "--results", str(results_dir), "--scoring", "strict"])
    assert result.exit_code == 2 and "strict" in result.output


def test_the_embedded_models_answers_default_to_the_rule_that_reads_option_names(tmp_path: Path) -> None:
    """niah-small answers with the needle's name ("blue circle"); VNBench's eval.py reads no letter there,
    so its runs default to the lenient rule (named in the title), and ``--scoring official`` still gives 0."""
    from adaspark_eval.datasets.scoring import OPTION_NAME_MODELS
    from adaspark_eval.models.loading import EMBEDDED

    assert EMBEDDED in OPTION_NAME_MODELS
    options = ["blue circle", "red square", "green star", "pink cross"]  # options A-D, as records store them
    folder = tmp_path / "embedded"
    store = RunStore(folder)
    for attempt in range(4):
        store.append({"task": "videoniah", "sample_id": f"v_{attempt}", "answer": "ABCD"[attempt],
                      "prediction": options[attempt],
                      "config_key": CONFIG_KEY, "method": "dense", "correct": True, "error": None, "parsed": None,
                      "category": {"type": "ret_insert1", "task": "ret"},
                      "niah": {"video": "v", "type": "ret_insert1", "try": attempt, "options": options},
                      "flops": {"llm_prefill": {"actual": 10, "dense": 10, "reduction": 0.0},
                                "total": {"actual": 20, "dense": 20, "reduction": 0.0}}})
    store.write_summary({"run": "embedded", "model": EMBEDDED, "method": "dense", "config": AdaSparkConfig().to_dict(),
                         "config_key": CONFIG_KEY, "tasks": ["videoniah"], "n_samples": 4, "n_errors": 0,
                         "created": "2026-01-01T00:00:00"})
    default = load_results(tmp_path)
    assert default.rule("videoniah") == "lenient"
    assert default.scores.set_index("metric").loc["overall", "value"] == 100.0
    official = load_results(tmp_path, scoring="official")
    assert official.scores.set_index("metric").loc["overall", "value"] == 0.0
    result = runner.invoke(app, ["report", "table", "--results", str(tmp_path)])
    assert result.exit_code == 0 and "videoniah: score (%, lenient rule)" in result.output
