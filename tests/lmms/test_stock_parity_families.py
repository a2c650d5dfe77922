"""At ``p = 1`` the ``adaspark`` model answers exactly as lmms-eval's own ``qwen3_vl`` class does on the same
Qwen3-VL checkpoint, dense and MoE: same system turn, frames, resizing (patch 16), timestamps and greedy
tokens (as ``test_stock_parity`` shows for Qwen2.5-VL)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.data.video import VideoSettings
from adaspark_eval.lmms.model import AdaSparkLMM
from adaspark_eval.models.tiny_families import build_tiny_family
from tests.lmms.test_stock_parity import PIXELS, predictions

FRAMES = {"max_num_frames": 4}  # the fixtures' length: lmms-eval's qwen3_vl class does not cap it by the file


@pytest.mark.parametrize(("name", "folder"), [("tiny-qwen3-vl", "tiny-qwen3-vl"),
                                              # lmms-eval picks the MoE class by an "A<n>B" in the name
                                              ("tiny-qwen3-vl-moe", "tiny-qwen3-vl-A1B")])
def test_p1_matches_lmms_eval_qwen3_vl(name: str, folder: str, benchmark_root: Path, tmp_path: Path, monkeypatch,
                                       one_torch_thread) -> None:
    checkpoint = tmp_path / folder
    model, processor = build_tiny_family(name)
    model.save_pretrained(checkpoint)
    processor.save_pretrained(checkpoint)
    stock_args = ",".join([f"pretrained={checkpoint}", "device=cpu", "device_map=cpu",
                           *(f"{k}={v}" for k, v in {**PIXELS, **FRAMES}.items())])
    stock = predictions("qwen3_vl", stock_args, benchmark_root, monkeypatch)
    ours = AdaSparkLMM(pretrained=str(checkpoint), config=AdaSparkConfig(p=1.0),
                       video=VideoSettings(**PIXELS, **FRAMES), device="cpu", dtype="bfloat16", output=tmp_path / "run")
    assert ours.family.name == name.removeprefix("tiny-")
    sparse = predictions(ours, None, benchmark_root, monkeypatch)
    assert len(stock) == 4 and any(stock.values())
    assert sparse == stock
    # the comparison has power: reading 2 frames instead of the stock 4 changes the answers
    fewer_frames = AdaSparkLMM(pretrained=str(checkpoint), config=AdaSparkConfig(p=1.0),
                               video=VideoSettings(max_num_frames=2, **PIXELS), device="cpu", dtype="bfloat16",
                               output=tmp_path / "other")
    assert predictions(fewer_frames, None, benchmark_root, monkeypatch) != stock
