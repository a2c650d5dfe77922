"""``adaspark-eval flops``: FLOPs of one video sample by component, actual and dense (2 per multiply-add)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import numpy as np
import typer

from adaspark_eval.cli.common import friendly, with_knobs
from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.data.video import read_video

if TYPE_CHECKING:
    from transformers import BatchFeature, ProcessorMixin

DEFAULT_SIZE = "448x448"


@with_knobs()
@friendly
def flops_command(
    config: AdaSparkConfig,
    model: Annotated[str, typer.Option(help="tiny (tiny-qwen3-vl, ...), a checkpoint directory, a cached hub name, or a "
                                            "known config (qwen2.5-vl-7b, qwen2-vl-7b, qwen3-vl-8b, "
                                            "qwen3-vl-30b-a3b, ...: dense analytic count, no weights)")] = "tiny",
    frames: Annotated[int, typer.Option(help="frames of the video (sampled uniformly from --video)")] = 16,
    size: Annotated[str | None, typer.Option(help=f"HxW of a synthetic video (default {DEFAULT_SIZE})")] = None,
    video: Annotated[Path | None, typer.Option(help="a video file instead of a synthetic video")] = None,
    question: Annotated[str, typer.Option(help="question asked about the video")] = "Describe the video.",
    new_tokens: Annotated[int, typer.Option(help="tokens generated after the prefill (new_tokens - 1 decode "
                                                 "steps)")] = 0,
    max_pixels: Annotated[int | None, typer.Option(help="cap on pixels per frame (default: the model's processor's; "
                                                        "for a known config, the frame size)")] = None,
    device: Annotated[str, typer.Option(help="cpu, cuda, cuda:1, ...")] = "cpu",
    dtype: Annotated[str, typer.Option(help="float32 | bfloat16 | float16")] = "float32",
    as_json: Annotated[bool, typer.Option("--json", help="print one JSON object")] = False,
) -> None:
    """FLOPs of one prefill (and decode steps) by component: vision encoder, LLM projections, attention,
    selection, FFN, LM head, decode; actual, dense and reduction."""
    import torch

    from adaspark_eval.flops.analytic import dense_flops
    from adaspark_eval.flops.counter import count_sample
    from adaspark_eval.flops.dims import ModelDims, known_config, known_name
    from adaspark_eval.flops.sample import FLOPS_NOTE
    from adaspark_eval.models.loading import load_model
    from adaspark_eval.models.prompt import family_video_prompt
    from adaspark_eval.flops.known_models import KNOWN_MODELS
    from adaspark_eval.models.tiny_families import family_processor
    from adaspark_eval.sparse.families import family_of
    from adaspark_eval.sparse.runtime import SparseRuntime

    if new_tokens < 0:
        raise ValueError(f"--new-tokens {new_tokens} is negative: pass 0 or more")
    video_frames = _frames(video, size, frames)
    if known_name(model) is not None:
        if config != AdaSparkConfig():
            raise ValueError(f"--model {model} gives the dense analytic count: drop the AdaSpark flags, or pass a "
                             "checkpoint directory to count a sparse run")
        family = family_of(KNOWN_MODELS[known_name(model)])
        processor = family_processor(family.name, max_pixels=max_pixels or video_frames.shape[1] * video_frames.shape[2])
        inputs = family_video_prompt(processor, [video_frames], question, family.timestamps)
        tokens = _token_counts(inputs, processor)
        decode_steps = max(new_tokens - 1, 0)
        flops = dense_flops(ModelDims.from_config(known_config(model)), text_tokens=tokens["text"],
                            grids=inputs["video_grid_thw"].tolist(), decode_steps=decode_steps)
        settings = None
    else:
        loaded = load_model(model, device=device, dtype=dtype, max_pixels=max_pixels)
        timestamps = family_of(loaded.model.config).timestamps
        inputs = family_video_prompt(loaded.processor, [video_frames], question, timestamps).to(device)
        tokens = _token_counts(inputs, loaded.processor)
        sparse = SparseRuntime.attach(loaded.model, config)
        with torch.no_grad():
            if new_tokens:
                loaded.model.generate(**inputs, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
            else:
                loaded.model(**inputs, logits_to_keep=1)
        decode_steps = len(sparse.records) - 1
        flops = count_sample(loaded.model.config, sparse.records, video_grid_thw=inputs["video_grid_thw"])
        settings = config.to_dict()
    tokens["decode_steps"] = decode_steps
    if as_json:
        typer.echo(json.dumps({"model": model, "frames": int(video_frames.shape[0]),
                               "video_grid_thw": inputs["video_grid_thw"].tolist(), "tokens": tokens,
                               "config": settings, **flops.to_dict()}, indent=2))
        return
    kind = "dense analytic count" if settings is None else f"p={config.p}"
    typer.echo(f"{model}: {tokens['text']} text + {tokens['visual']} visual tokens, {decode_steps} decode steps, "
               f"{kind}; TFLOPs at {FLOPS_NOTE}")
    typer.echo(flops.table().to_string(float_format=lambda v: f"{v:.4g}"))


def _frames(video: Path | None, size: str | None, count: int) -> np.ndarray:
    """(T, H, W, 3) uint8: sampled from ``video``, or seeded noise of ``size``."""
    if video is not None and size is not None:
        raise ValueError("--video and --size both given: pass one (the video sets the size)")
    if count < 2:
        raise ValueError(f"--frames {count} is too few: pass 2 or more (Qwen2.5-VL groups frames in pairs)")
    if video is not None:
        return read_video(video, num_frames=count)[0]
    try:
        height, width = (int(side) for side in (size or DEFAULT_SIZE).lower().split("x"))
    except ValueError:
        raise ValueError(f"--size {size!r} is not HxW: pass e.g. --size 448x448") from None
    if height < 28 or width < 28:
        raise ValueError(f"--size {size} is below one 28x28 LLM token: pass at least 28x28")
    return np.random.default_rng(0).integers(0, 256, (count, height, width, 3), dtype=np.uint8)


def _token_counts(inputs: BatchFeature, processor: ProcessorMixin) -> dict[str, int]:
    """Text and visual tokens of one prompt: the video's are its grid over the merge size squared."""
    visual = int(inputs["video_grid_thw"].prod(dim=-1).sum()) // processor.video_processor.merge_size**2
    return {"text": int(inputs["input_ids"].numel()) - visual, "visual": visual}
