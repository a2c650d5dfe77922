"""Train the embedded VideoNIAH model: a small Qwen2.5-VL (the real transformers class) from scratch on
generated needle-in-a-haystack videos, optionally with AdaSpark attached for the last steps (the paper's
light sparse fine-tuning). Run on a GPU:

    python -m adaspark_eval.training.train_niah --out DIR [--steps 2000 --batch 8 --workers 14 ...]

DIR receives the checkpoint (bf16 safetensors, config, processor files) and ``training.json`` (the
command and the held-out accuracy over training).
"""

from __future__ import annotations

import json
import math
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Annotated

import torch
import typer
from torch.utils.data import DataLoader
from transformers import Qwen2_5_VLForConditionalGeneration

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.data.niah.presets import EMBEDDED_NIAH
from adaspark_eval.data.niah.scoring import parse_choice
from adaspark_eval.models.tiny import build_processor, tiny_config
from adaspark_eval.sparse.runtime import SparseRuntime
from adaspark_eval.training.niah_data import NiahStream, StreamSpec, collate, quiet_worker

HELD_OUT_SEED = 10**6  # training seeds start at --seed; held-out ones here, never overlapping in practice


def niah_stream_spec(seed: int, types: tuple[str, ...] = EMBEDDED_NIAH.types, length: float = 8.0,
                     size: int = 448, fps: float = 1.0, open_share: float = 0.0) -> StreamSpec:
    """The videos of the embedded model (``presets.EMBEDDED_NIAH``), with its knobs overridable."""
    niah = replace(EMBEDDED_NIAH, types=types, lengths=(length,), size=(size, size), fps=fps)
    return StreamSpec(niah=niah, seed=seed, open_share=open_share)


@torch.no_grad()
def answer_accuracy(model: torch.nn.Module, samples: list[dict], tokenizer, device: str) -> float:
    """Share of held-out samples whose greedy answer (16 new tokens at most, as the task asks) parses to
    the gold letter with the task's parser."""
    right = 0
    for sample in samples:
        length = sample["prompt_length"]
        inputs = {"input_ids": sample["input_ids"][None, :length],
                  "mm_token_type_ids": sample["mm_token_type_ids"][None, :length],
                  "pixel_values_videos": sample["pixel_values_videos"],
                  "video_grid_thw": sample["video_grid_thw"], "second_per_grid_ts": sample["second_per_grid_ts"]}
        output = model.generate(**{k: v.to(device) for k, v in inputs.items()}, max_new_tokens=16, do_sample=False)
        answer = tokenizer.decode(output[0, length:], skip_special_tokens=True)
        right += parse_choice(answer, sample["options"]) == sample["gold"]
    return right / max(len(samples), 1)


def train(
    out: Annotated[Path, typer.Option(help="checkpoint folder")],
    steps: int = 2000,
    batch: int = 8,
    lr: float = 1e-3,
    warmup: int = 100,
    workers: int = 8,
    seed: int = 0,
    eval_samples: int = 64,
    eval_every: int = 250,
    sparse_from: Annotated[int | None, typer.Option(help="attach AdaSpark from this step on")] = None,
    sparse_p: float = 0.7,
    hidden: int = 256,
    layers: int = 6,
    heads: int = 8,
    kv_heads: int = 2,
    vision_hidden: int = 128,
    vision_depth: int = 4,
    size: int = 448,
    length: float = 8.0,
    fps: float = 1.0,
    open_share: Annotated[float, typer.Option(help="share of training samples asked as open questions")] = 0.5,
    types: str = ",".join(EMBEDDED_NIAH.types),
    max_seconds: Annotated[float, typer.Option(help="stop early (then evaluate and save) after this long")] = 1e9,
    init: Annotated[Path | None, typer.Option(help="start from this checkpoint's weights")] = None,
    device: str = "cuda" if torch.cuda.is_available() else "cpu",
) -> None:
    """Train, evaluate on held-out samples every ``eval_every`` steps (saving each time), save to ``out``."""
    torch.manual_seed(seed)
    processor = build_processor()
    tokenizer = processor.tokenizer
    config = tiny_config(tokenizer, hidden, layers, heads, kv_heads, vision_hidden, vision_depth)
    config._attn_implementation = "sdpa"
    model = (Qwen2_5_VLForConditionalGeneration.from_pretrained(init, dtype=torch.float32, attn_implementation="sdpa")
             if init else Qwen2_5_VLForConditionalGeneration(config)).to(device)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.convert_tokens_to_ids("<|im_end|>")
    spec = partial(niah_stream_spec, types=tuple(types.split(",")), length=length, size=size, fps=fps)
    pad = partial(collate, pad_id=tokenizer.pad_token_id)
    loader = DataLoader(NiahStream(processor, spec(seed, open_share=open_share)), batch_size=batch,
                        num_workers=workers, collate_fn=pad, worker_init_fn=quiet_worker,
                        prefetch_factor=4 if workers else None, persistent_workers=workers > 0)
    held_out = list(DataLoader(NiahStream(processor, spec(HELD_OUT_SEED), count=eval_samples), batch_size=None,
                               num_workers=min(workers, 4), worker_init_fn=quiet_worker))
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.05, betas=(0.9, 0.95))
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s / steps, 1.0))))
    history: list[dict] = []
    sparse: SparseRuntime | None = None
    started = time.time()
    model.train()
    for step, batch_data in enumerate(loader):
        if step == steps or time.time() - started > max_seconds:
            break
        if sparse_from is not None and step == sparse_from:
            sparse = SparseRuntime.attach(model, AdaSparkConfig(p=sparse_p))
        inputs = {k: v.to(device) for k, v in batch_data.items() if isinstance(v, torch.Tensor)}
        with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=device != "cpu"):
            loss = model(**inputs).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        optimizer.zero_grad(set_to_none=True)
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            history.append(evaluate_and_save(model, processor, held_out, tokenizer, device, out, step + 1,
                                             loss.item(), sparse is not None, time.time() - started))
    if not history or history[-1]["step"] != step:
        history.append(evaluate_and_save(model, processor, held_out, tokenizer, device, out, step,
                                         loss.item(), sparse is not None, time.time() - started))
    if sparse is not None:
        sparse.detach()
    model.to(torch.bfloat16).save_pretrained(out)
    (out / "training.json").write_text(json.dumps(
        {"command": " ".join(sys.argv), "history": history,
         "parameters": sum(p.numel() for p in model.parameters())}, indent=1))


def evaluate_and_save(model: torch.nn.Module, processor, held_out: list[dict], tokenizer, device: str, out: Path,
                      step: int, loss: float, sparse: bool, seconds: float) -> dict:
    """Held-out accuracy now (printed as one JSON line), and a checkpoint in ``out`` (bf16 copy)."""
    model.eval()
    with torch.autocast(device_type=device.split(":")[0], dtype=torch.bfloat16, enabled=device != "cpu"):
        accuracy = answer_accuracy(model, held_out, tokenizer, device)
    model.train()
    row = {"step": step, "loss": loss, "held_out_accuracy": accuracy, "sparse": sparse, "seconds": round(seconds, 1)}
    print(json.dumps(row), flush=True)
    out.mkdir(parents=True, exist_ok=True)
    copy = type(model)(model.config)
    copy.load_state_dict(model.state_dict())
    copy.generation_config = model.generation_config
    copy.to(torch.bfloat16).save_pretrained(out)
    processor.save_pretrained(out)
    return row


if __name__ == "__main__":
    typer.run(train)
