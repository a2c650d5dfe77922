"""``adaspark-eval inspect``: one video and one question through the dense and the sparse model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from adaspark_eval.cli.common import friendly, with_knobs
from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.data.video import read_video


@with_knobs()
@friendly
def inspect_command(
    config: AdaSparkConfig,
    video: Annotated[Path, typer.Option(help="video file (mp4, ...)")],
    question: Annotated[str, typer.Option(help="question asked about the video")] = "Describe the video.",
    model: Annotated[str, typer.Option(help="tiny (tiny-qwen3-vl, ...), a checkpoint directory, or a "
                                            "cached hub name")] = "tiny",
    frames: Annotated[int, typer.Option(help="frames sampled uniformly from the video")] = 16,
    max_pixels: Annotated[int | None, typer.Option(help="cap on pixels per frame")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:1, ...")] = "cpu",
    dtype: Annotated[str, typer.Option(help="float32 | bfloat16 | float16")] = "float32",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """Per-layer kept-cube and FFN-active fractions, and the distance of the sparse prediction from dense."""
    import pandas as pd

    from adaspark_eval.inspection import compare
    from adaspark_eval.models.loading import load_model
    from adaspark_eval.models.prompt import family_video_prompt
    from adaspark_eval.sparse.runtime import SparseRuntime

    frames_array, _ = read_video(video, num_frames=frames)
    loaded = load_model(model, device=device, dtype=dtype, max_pixels=max_pixels)
    sparse = SparseRuntime.attach(loaded.model, config)
    inputs = family_video_prompt(loaded.processor, [frames_array], question, sparse.family.timestamps).to(device)
    result = compare(sparse, inputs, config)
    layers = [{k: row[k] for k in ("layer", "kept_cube_fraction", "ffn_active_fraction", "entropy")}
              for row in result.layers()]
    report = {
        "model": model,
        "video": str(video),
        "visual_tokens": int(sparse.layout.num_visual.sum()),
        "tokens": int(inputs["input_ids"].shape[1]),
        "config": config.to_dict(),
        "max_abs_logit_diff": result.max_abs_logit_diff,
        "kl": result.kl,
        "llm_prefill_flop_reduction": result.llm_prefill_flop_reduction,
        "layers": layers,
    }
    if as_json:
        typer.echo(json.dumps(report, indent=2))
        return
    typer.echo(f"{report['tokens']} tokens ({report['visual_tokens']} visual), p={config.p}")
    typer.echo(pd.DataFrame(layers).set_index("layer").to_string(float_format=lambda v: f"{v:.3f}"))
    typer.echo(f"max |logit diff| {result.max_abs_logit_diff:.4g}   KL(dense||sparse) {result.kl:.4g} nats   "
               f"LLM prefill FLOPs -{100 * result.llm_prefill_flop_reduction:.1f}% (2 FLOPs per multiply-add)")
