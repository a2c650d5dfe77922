"""The CPU-side pieces of ``benchmarks/fa4_run.py``: comparing the run folders of the per-backend sweeps, and
the report of its committed result file (the runs themselves need an sm90 GPU and flash-attn-4)."""

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import fa4_run  # noqa: E402 - a script beside the package, not in it

RESULT = Path(__file__).parents[2] / "benchmarks" / "fa4_run.json"


def _run_folder(folder: Path, cube: list[int], predictions: list[str], kept: float, blocks: dict | None) -> None:
    folder.mkdir(parents=True)
    summary = {"method": "adaspark", "config": {"cube": cube, "attn_impl": "sdpa"},
               "scores": {"videomme/overall": 50.0}, "flop_reduction": {"llm_prefill": 0.6}}
    (folder / "summary.json").write_text(json.dumps(summary))
    samples = [{"sample_id": str(i), "prediction": p, "parsed": p[0], "error": None,
                "layers": [{"layer": 0, "kept_cube_fraction": kept}], "latency": {"prefill_s": 1.0},
                **({"blocks": blocks} if blocks else {})} for i, p in enumerate(predictions)]
    (folder / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))


def test_sweeps_compare_by_config_against_the_reference_backend(tmp_path):
    _run_folder(tmp_path / "cli-reference" / "a", [4, 4, 4], ["A.", "B."], 0.25, None)
    _run_folder(tmp_path / "cli-reference" / "b", [4, 4, 8], ["C.", "D."], 0.25, None)
    _run_folder(tmp_path / "cli-fa4" / "a", [4, 4, 4], ["A.", "C."], 0.2501, {"kept_units": 100, "block_units": 130})
    _run_folder(tmp_path / "cli-fa4" / "b", [4, 4, 8], ["C.", "D."], 0.25, {"kept_units": 100, "block_units": 100})
    rows = {r["run"]: r for r in fa4_run._compare(tmp_path, ["fa4", "reference"]) if r["backend"] == "fa4"}
    small, large = rows["adaspark cube=4x4x4 attn_impl=sdpa"], rows["adaspark cube=4x4x8 attn_impl=sdpa"]
    assert (small["same_prediction"], small["same_parsed"], small["union_over_kept"]) == ("1/2", "1/2", 1.3)
    assert abs(small["max_kept_fraction_diff"] - 1e-4) < 1e-9
    assert (large["same_prediction"], large["max_kept_fraction_diff"], large["union_over_kept"]) == ("2/2", 0, 1.0)


def test_the_committed_result_renders():
    text = fa4_run.markdown(json.loads(RESULT.read_text()))
    assert "| fa4 | adaspark cube=4x4x8 attn_impl=sdpa |" in text and "| 4x4x4 | fixed 0.25 | fa4 |" in text
