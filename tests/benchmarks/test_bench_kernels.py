"""``benchmarks/bench_kernels.py`` and its sections in ``benchmarks/kernel_bench/`` (the measurements need a GPU):
the entry point's command line, the benchmark sequence, and the report's ``--update`` merging."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[2]))
from benchmarks import bench_kernels  # noqa: E402 - a script beside the package, not in it
from benchmarks.kernel_bench import common, prefill, report  # noqa: E402

ENV = {"device": "GPU", "torch": "2", "triton": "3", "transformers": "5", "cuda": "13", "cudnn": 9, "python": "3",
       "command": "bench", "date": "2026-11-26 07:00 UTC"}


def test_update_replaces_only_the_rerun_sections_and_the_report_names_the_rerun():
    earlier = {"environment": ENV, "ffn": ["old ffn"], "prefill": ["old prefill"]}
    fresh = {"environment": {**ENV, "date": "2026-11-26 08:00 UTC", "command": "bench --sections ffn"},
             "ffn": ["new ffn"]}
    merged = report.merged(earlier, fresh, ["ffn", "check"])  # check asked for, not run yet: kept as is
    assert merged["ffn"] == ["new ffn"] and merged["prefill"] == ["old prefill"] and "check" not in merged
    assert merged["environment"] == ENV
    again = report.merged(merged, fresh, ["ffn"])
    assert [r["date"] for r in again["reruns"]] == ["2026-11-26 08:00 UTC"] * 2
    markdown = report.markdown({"environment": ENV, "reruns": merged["reruns"]})
    assert "Rerun later, replacing their sections: ffn (GPU, 2026-11-26 08:00 UTC, `bench --sections ffn`)" \
        in markdown


def test_entry_point_keeps_its_command_line(capsys):
    with pytest.raises(SystemExit) as exit_info:
        bench_kernels.main(["--help"])
    assert exit_info.value.code == 0
    usage = capsys.readouterr().out
    for option in ("--out", "--lengths", "--prefill-lengths", "--sections", "--no-flex", "--update"):
        assert option in usage


def test_benchmark_sequence_is_text_one_video_and_text():
    tokens = common.PREFIX + common.SUFFIX + 2 * common.FRAME**2
    ids, grid = common.video_inputs(tokens, torch.device("cpu"))
    assert ids.shape == (1, tokens) and grid.tolist() == [[2, 2 * common.FRAME, 2 * common.FRAME]]
    video = (ids[0] == common.VIDEO_TOKEN).nonzero().flatten()
    assert video.tolist() == list(range(common.PREFIX, common.PREFIX + 2 * common.FRAME**2))
    assert ids[0, common.PREFIX - 1] == common.VISION_START and ids[0, video[-1] + 1] == common.VISION_END
    assert torch.equal(common.video_inputs(tokens, torch.device("cpu"))[0], ids)  # seeded by the length
    with pytest.raises(SystemExit, match="must be a multiple of 256"):
        common.video_inputs(tokens + 1, torch.device("cpu"))


def test_prefill_section_runs_both_architectures_at_toy_size():
    """The whole-prefill section on the CPU with 2-layer narrow Qwen2.5-VL-7B / Qwen3-VL-8B architectures (the
    GPU run uses the real sizes): a dense and a sparse row per model, the sparse one with fewer FLOPs, and the
    report's table names the model."""
    tokens = common.PREFIX + common.SUFFIX + 4 * common.FRAME**2
    rows = prefill.prefill_section([tokens], [{"fixed_ratio": 0.5, "select": "cube"}], torch.device("cpu"), toy=True)
    assert [(r["model"], r["fused_ops"], isinstance(r["setting"], str)) for r in rows] == [
        ("qwen2.5-vl-7b", False, True), ("qwen2.5-vl-7b", False, False), ("qwen2.5-vl-7b", True, True),
        ("qwen2.5-vl-7b", True, False), ("qwen3-vl-8b", False, True), ("qwen3-vl-8b", False, False)]
    assert all(r["flop_ratio"] > 1 for r in rows if not isinstance(r["setting"], str))
    table = report.markdown({"environment": ENV, "prefill": rows})
    assert "| qwen3-vl-8b | 1280 | fixed_ratio=0.5, select=cube |" in table


def test_qwen3_benchmark_sequence_has_a_timestamp_before_each_group():
    tokens = common.PREFIX + common.SUFFIX + 4 * common.FRAME**2
    ids, grid = common.video_inputs(tokens, torch.device("cpu"), timestamps=True)
    groups = grid[0, 0].item()
    assert ids.shape == (1, tokens) and groups == 3  # 6 + 2 text tokens per group take a group's room
    video = (ids[0] == common.VIDEO_TOKEN).nonzero().flatten()
    assert video.numel() == groups * common.FRAME**2
    assert (ids[0] == common.VISION_START).sum() == groups and (ids[0] == common.VISION_END).sum() == groups
