"""The CPU-side pieces of ``benchmarks/eval_throughput.py`` and ``benchmarks/eval_setup.py``: the generated
data's layout and content, the checkpoint config's token ids, the stage arithmetic, the targets and the report
(the rows themselves need a GPU and the 7B-shaped checkpoint)."""

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from transformers import Qwen2_5_VLConfig

sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
import eval_setup  # noqa: E402 - scripts beside the package, not in it
import eval_throughput  # noqa: E402

from adaspark_eval.datasets import get_benchmark  # noqa: E402
from adaspark_eval.data.video import probe_video  # noqa: E402
from adaspark_eval.models.loading import EMBEDDED_DIR  # noqa: E402


def test_video_specs_spread_lengths_over_the_range_and_reject_an_empty_one():
    specs = eval_setup.video_specs(4, (2.0, 5.0))
    assert [s.seconds for s in specs] == [120.0, 180.0, 240.0, 300.0]
    assert [s.video_id for s in specs] == ["bench000", "bench001", "bench002", "bench003"]
    assert specs[0].frames == 3600 and (specs[0].height, specs[0].width) == (720, 1280)
    with pytest.raises(ValueError, match="--videos N --minutes MIN MAX"):
        eval_setup.video_specs(0, (2.0, 5.0))


def test_synthetic_frames_move_and_are_deterministic():
    spec = eval_setup.VideoSpec("v", seconds=0.2, seed=3, height=64, width=96, fps=20.0)
    frames = list(eval_setup.synthetic_frames(spec))
    again = list(eval_setup.synthetic_frames(spec))
    assert len(frames) == 4 and frames[0].shape == (64, 96, 3) and frames[0].dtype == np.uint8
    assert all((a == b).all() for a, b in zip(frames, again))
    assert not (frames[0] == frames[1]).all()  # it moves
    assert len(np.unique(frames[0].reshape(-1, 3), axis=0)) > 100  # textured, not flat colour


def test_the_generated_set_is_in_the_layout_the_videomme_adapter_reads(tmp_path):
    specs = [eval_setup.VideoSpec(f"bench{i:03d}", seconds=0.25, seed=i, height=64, width=96, fps=8.0)
             for i in range(2)]
    made = eval_setup.write_dataset(tmp_path, specs, questions=3, processes=2)
    assert made["questions"] == 6 and [v["frames"] for v in made["videos"]] == [2, 2]
    docs = get_benchmark("videomme").read_docs(tmp_path)
    assert len(docs) == 6 and {d["videoID"] for d in docs} == {"bench000", "bench001"}
    assert all(Path(d["video_path"]).is_file() for d in docs)
    info = probe_video(docs[0]["video_path"])
    assert (info.frames, info.height, info.width) == (2, 64, 96)
    assert all(d["answer"] in "ABCD" and len(d["options"]) == 4 for d in docs)


def test_checkpoint_config_is_the_7b_with_the_embedded_tokenizers_special_ids():
    fields = eval_setup.checkpoint_config(layers=2)
    config = Qwen2_5_VLConfig(**fields)
    embedded = json.loads((EMBEDDED_DIR / "config.json").read_text())
    assert config.text_config.num_hidden_layers == 2 and len(config.text_config.layer_types) == 2
    assert (config.text_config.hidden_size, config.text_config.vocab_size) == (3584, 152064)
    assert config.vision_config.depth == 32 and config.vision_config.out_hidden_size == 3584
    assert (config.image_token_id, config.video_token_id) == (embedded["image_token_id"], embedded["video_token_id"])
    assert config.text_config.rope_parameters["mrope_section"] == [16, 24, 24]
    assert eval_setup.checkpoint_config()["text_config"]["num_hidden_layers"] == 28
    eval_setup.check_tokenizer(EMBEDDED_DIR, fields)
    with pytest.raises(ValueError, match="take the ids from the tokenizer"):
        eval_setup.check_tokenizer(EMBEDDED_DIR, {**fields, "video_token_id": 151656})


def test_stage_breakdown_splits_the_prefill_and_tolerates_missing_keys():
    stages = eval_throughput.stage_breakdown({"decode_s": 2.0, "vision_s": 0.5, "prefill_s": 0.8, "total_s": 1.5})
    assert stages == {"decode_s": 2.0, "cache_s": 0.0, "processor_s": 0.0, "wait_s": 0.0, "vision_s": 0.5,
                      "llm_prefill_s": pytest.approx(0.3), "decode_steps_s": pytest.approx(0.7)}
    assert set(eval_throughput.stage_breakdown({})) == set(eval_throughput.STAGES)


def test_summarise_gives_samples_per_minute_over_the_window_and_the_rest_as_other():
    latencies = [{"decode_s": 1.0, "prefill_s": 1.0, "total_s": 2.0}] * 3
    row = eval_throughput.summarise("c", "label", 32, latencies, window_s=10.0, stats={"gpu_busy": 0.9})
    assert row["samples_per_min"] == 18.0 and row["gpu_busy"] == 0.9
    assert row["stages_s"]["decode_s"] == 3.0 and row["stages_s"]["llm_prefill_s"] == 3.0
    assert row["other_s"] == pytest.approx(10.0 - 9.0)


def test_window_stats_average_the_gpu_samples_inside_the_window_and_take_the_peak_memory():
    samples = [(0.0, 100.0, 5 * 2**30), (1.0, 50.0, 2**30), (2.0, 100.0, 2 * 2**30), (3.0, None, 3 * 2**30)]
    assert eval_throughput.window_stats(samples, 0.5, 3.0) == {"gpu_busy": 0.75, "peak_rss_gib": 3.0,
                                                                "monitor_samples": 3}
    assert eval_throughput.window_stats(samples, 10.0, 11.0)["gpu_busy"] is None


def test_answer_window_times_the_method_lmms_eval_calls():
    class Model:
        def generate_until(self, requests):
            return [r.upper() for r in requests]

    model = Model()
    window = eval_throughput.AnswerWindow(model)
    assert getattr(model, "generate_until")(["a", "b"]) == ["A", "B"]
    assert window.requests == 2 and window.seconds >= 0 and window.end >= window.start > 0


def _row(row, per_min, busy=None, frames=32):
    return {"row": row, "frames": frames, "samples_per_min": per_min, "gpu_busy": busy, "label": row, "samples": 3,
            "window_s": 1.0, "stages_s": {}, "stage_share": {"decode_s": 0.6, "wait_s": 0.3}, "other_s": 0.1}


def test_targets_compare_c_and_d_with_a_and_the_report_says_where_the_time_goes():
    rows = [_row("a", 10.0), _row("c", 35.0, 0.7), _row("d", 40.0, 0.85), _row("a", 1.0, frames=64)]
    checks = {c["target"]: c for c in eval_throughput.target_checks(rows)}
    assert checks["(c) >= 3x samples/min of (a) at 32 frames"]["met"] is True
    assert checks["(d) >= 5x samples/min of (a) at 32 frames"]["value"] == 4.0
    assert checks["(d) >= 5x samples/min of (a) at 32 frames"]["met"] is False
    assert checks["GPU busy >= 80% in (c) at 32 frames"]["met"] is False
    text = eval_throughput.render_markdown({"rows": rows, "targets": list(checks.values()), "commands": ["x"]})
    assert "MISSED. Where the time goes in (d): decode 60%, wait 30%, other 10%" in text
    assert sum(line.startswith("| a | ") for line in text.splitlines()) == 2
    assert eval_throughput.target_checks([])[0]["met"] is None


def test_merge_rows_replaces_a_rerun_row_of_the_same_frames():
    merged = eval_throughput.merge_rows([_row("a", 1.0), _row("b", 2.0)], [_row("a", 3.0), _row("a", 4.0, frames=64)])
    assert [(r["row"], r["frames"], r["samples_per_min"]) for r in merged] == [("b", 32, 2.0), ("a", 32, 3.0),
                                                                                ("a", 64, 4.0)]


def test_frame_agreement_reports_identity_and_the_size_of_differences():
    reference = np.zeros((2, 4, 4, 3), dtype=np.uint8)
    other = reference.copy()
    assert eval_throughput.frame_agreement(reference, other)["identical"] is True
    other[0, 0, 0, 0] = 3
    agreement = eval_throughput.frame_agreement(reference, other)
    assert (agreement["identical"], agreement["max_abs_diff"]) == (False, 3)
    assert eval_throughput.frame_agreement(reference, other[:1])["identical"] is False


def test_sections_are_checked():
    with pytest.raises(SystemExit):
        eval_throughput.parse_args(["--out", "x", "--sections", "setup,bogus"])
    assert eval_throughput.parse_args(["--out", "x"]).frames == [32, 64]


def test_fast_rows_are_judged_too_with_their_rate_after_the_first_sample():
    rows = [dict(_row("a", 10.0), steady_samples_per_min=12.0), dict(_row("c-fast", 11.0), steady_samples_per_min=48.0)]
    checks = {c["target"]: c for c in eval_throughput.target_checks(rows)}
    fast = checks["(c-fast) >= 3x samples/min of (a) at 32 frames"]
    assert (fast["value"], fast["met"], fast["steady"]) == (1.1, False, 4.0)
    assert "(d-fast) >= 5x samples/min of (a) at 32 frames" not in checks  # not run: not listed
    text = eval_throughput.render_markdown({"rows": rows, "targets": list(checks.values()), "commands": []})
    assert "1.1 -- MISSED (after the first sample: 4.0)" in text


def test_answer_window_rate_after_the_first_sample():
    class Model:
        def generate_until(self, requests):
            return requests

    window = eval_throughput.AnswerWindow(Model())
    window.start, window.finished, window.end = 0.0, [5.0, 6.0, 7.0], 8.0
    assert window.steady([(6.0, 90.0, 0)]) == {"first_sample_s": 5.0, "steady_samples_per_min": 40.0,
                                               "steady_gpu_busy": 0.9}
