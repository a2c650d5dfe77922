"""At ``p = 1`` the ``adaspark`` model answers exactly as lmms-eval's own ``qwen2_5_vl`` class does on the
same checkpoint: same frames, same resizing, same prompt, same greedy tokens."""

from __future__ import annotations

from pathlib import Path

import pytest

from adaspark_eval.datasets import get_benchmark
from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.data.video import VideoSettings
from adaspark_eval.lmms.model import AdaSparkLMM
from adaspark_eval.lmms.task import tasks_dir
from adaspark_eval.models.tiny import build_tiny

PIXELS = {"min_pixels": 3136, "max_pixels": 15680}
TASKS = [get_benchmark(name).lmms_task for name in ("videomme", "mlvu_dev")]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """The tiny model saved as a checkpoint directory, loadable by both classes."""
    folder = tmp_path_factory.mktemp("tiny-checkpoint")
    model, processor = build_tiny(seed=0)
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder


def predictions(model, model_args: str | None, root: Path, monkeypatch) -> dict[tuple[str, int], str]:
    """(task, doc id) -> the text ``model`` generated, from an lmms-eval run on the fixtures."""
    from lmms_eval.evaluator import simple_evaluate
    from lmms_eval.tasks import TaskManager

    monkeypatch.setenv("ADASPARK_DATA_ROOT", str(root))
    results = simple_evaluate(model=model, model_args=model_args, tasks=TASKS, limit=2, log_samples=True,
                              gen_kwargs="max_new_tokens=4", bootstrap_iters=0,
                              task_manager=TaskManager(include_path=str(tasks_dir()), include_defaults=False))
    return {(task, s["doc_id"]): s["resps"][0][0] for task in TASKS for s in results["samples"][task]}


def test_p1_matches_lmms_eval_qwen2_5_vl(checkpoint: Path, benchmark_root: Path, tmp_path: Path, monkeypatch,
                                         one_torch_thread) -> None:
    stock_args = ",".join([f"pretrained={checkpoint}", "device=cpu", "device_map=cpu",
                           *(f"{k}={v}" for k, v in PIXELS.items())])
    stock = predictions("qwen2_5_vl", stock_args, benchmark_root, monkeypatch)
    ours = AdaSparkLMM(pretrained=str(checkpoint), config=AdaSparkConfig(p=1.0), video=VideoSettings(**PIXELS),
                       device="cpu", dtype="bfloat16", output=tmp_path / "run")
    sparse = predictions(ours, None, benchmark_root, monkeypatch)
    assert len(stock) == 4 and any(stock.values())
    assert sparse == stock
    assert sorted(r["prediction"] for r in ours.store.records.values()) == sorted(stock.values())
    # the comparison has power: reading 2 frames instead of the stock 4 changes the answers
    fewer_frames = AdaSparkLMM(pretrained=str(checkpoint), config=AdaSparkConfig(p=1.0),
                               video=VideoSettings(max_num_frames=2, **PIXELS), device="cpu", dtype="bfloat16",
                               output=tmp_path / "other")
    assert predictions(fewer_frames, None, benchmark_root, monkeypatch) != stock
