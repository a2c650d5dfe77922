"""Flag mistakes stop ``run`` at once, before the model loads, with one line naming the fix and exit code 2;
an odd frame count is normalised before it enters the config key."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from adaspark_eval.cli.main import app
from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.data.video import VideoSettings
from adaspark_eval.lmms.model import run_key


@pytest.mark.parametrize(("flags", "message"), [
    (["--frames", "0"], "--frames 0 (model arg max_num_frames): at least 2 frames"),
    (["--frames", "1"], "--frames 1 (model arg max_num_frames): at least 2 frames"),
    (["--frames", "-4"], "--frames -4 (model arg max_num_frames): at least 2 frames"),
    (["--fps", "0"], "--fps 0.0: a sampling rate must be > 0"),
    (["--fps", "-1"], "--fps -1.0: a sampling rate must be > 0"),
    (["--limit", "-1"], "--limit -1 evaluates nothing"),
    (["--limit", "0"], "--limit 0 evaluates nothing"),
    (["--min-pixels", "2000000", "--max-pixels", "1000"], "--min-pixels 2000000 is above --max-pixels 1000"),
    (["--workers", "-1"], "--workers -1: pass 0"),
    (["--frame-cache", "/tmp/x", "--no-frame-cache"], "--frame-cache and --no-frame-cache contradict"),
    (["--decode", "graph", "--method", "fastv"], "--decode graph replays dense decode steps, and method fastv"),
    (["--decode", "static"], "decode='static' is not a decode loop"),
    # flash-attn-4 is not installed on the CPU machines (the [gpu] extra): one line naming the extra
    (["--backend", "fa4", "--select", "cube"], "backend=fa4 needs flash-attn-4, which is not installed: pip install"),
    (["--attn-impl", "fa4"], "attn_impl=fa4 needs flash-attn-4, which is not installed: pip install"),
    (["--backend", "triton", "--device", "cpu"], "backend=triton runs Triton kernels, which need a CUDA GPU, not cpu"),
])
def test_flag_mistakes_are_one_line_before_the_model_loads(benchmark_root: Path, flags: list[str],
                                                           message: str) -> None:
    result = CliRunner().invoke(app, ["run", "--task", "videoniah", "--model", "tiny", "--data-root",
                                      str(benchmark_root), *flags])
    assert result.exit_code == 2, result.output
    assert result.output.startswith(f"error: {message}") and len(result.output.strip().splitlines()) == 1


def test_odd_frame_counts_share_the_key_of_the_even_count_they_read() -> None:
    odd, even = VideoSettings(max_num_frames=33), VideoSettings(max_num_frames=32)
    assert odd == even and odd.max_num_frames == 32
    config = AdaSparkConfig()
    assert run_key(config, "tiny", odd, "float32") == run_key(config, "tiny", even, "float32")
