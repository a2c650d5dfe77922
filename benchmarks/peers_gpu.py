"""The peer methods on the GPU at long-video lengths: one whole prefill (vision encoder and LLM, random
pixels) of Qwen2.5-VL-7B's architecture with random bf16 weights, per method at its default settings,
with the time, the peak memory above the weights, and the FLOP reduction the method's own count gives.
It shows that each method runs at 16k-64k visual tokens without a full attention matrix (a method that
materialised one at 64k would need 64k^2 x 28 heads x 2 bytes = 215 GiB per layer: out of memory).

    PYTHONPATH=. python3 benchmarks/peers_gpu.py --out OUT [--tokens 16384 65536] [--methods dense,xattention,...]

Writes ``peers_gpu.json`` and prints a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch
import transformers
from torch.nn.attention import SDPBackend, sdpa_kernel

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from adaspark_eval.config import AdaSparkConfig  # noqa: E402
from adaspark_eval.data.video import VideoSettings  # noqa: E402
from adaspark_eval.flops.dims import ModelDims, known_config  # noqa: E402
from adaspark_eval.methods import METHODS, attach, make_method  # noqa: E402

PATCH, MERGE, TEMPORAL = 14, 2, 2  # Qwen2.5-VL's ViT: 14-pixel patches, 2x2 merged, 2 frames per temporal group
FRAME_TOKENS = 32 * 32  # LLM tokens per temporal group (a 896x896 frame pair)
PREFIX, SUFFIX = 14, 40  # text before and after the video (chat template, question)
DEFAULT_METHODS = "dense,adaspark,xattention,flexprefill,visionzip,dycoke,fastv"


def build(device: torch.device, layers: int | None) -> torch.nn.Module:
    """Qwen2.5-VL-7B's architecture (its whole vision tower) with random bf16 weights on ``device``."""
    config = known_config("qwen2.5-vl-7b")
    if layers:
        config.text_config.num_hidden_layers = layers
    config._attn_implementation = "sdpa"
    torch.manual_seed(0)
    with torch.device(device):
        model = transformers.Qwen2_5_VLForConditionalGeneration._from_config(config, dtype=torch.bfloat16)
    return model.eval()


def video_sample(model: torch.nn.Module, tokens: int, device: torch.device) -> dict[str, torch.Tensor]:
    """A prompt of about ``tokens`` tokens around one video of random pixels, as the processor lays it out."""
    config = model.config
    groups = max(1, (tokens - PREFIX - SUFFIX) // FRAME_TOKENS)
    side = 32 * MERGE  # patches per frame side
    grid = torch.tensor([[groups, side, side]], device=device)
    gen = torch.Generator(device="cpu").manual_seed(tokens)
    pixels = torch.rand(groups * side * side, 3 * TEMPORAL * PATCH * PATCH, generator=gen).to(device, torch.bfloat16)
    text = torch.randint(0, 150000, (PREFIX + SUFFIX,), generator=gen)
    ids = torch.cat([text[:PREFIX - 1], torch.tensor([config.vision_start_token_id]),
                     torch.full((groups * FRAME_TOKENS,), config.video_token_id),
                     torch.tensor([config.vision_end_token_id]), text[PREFIX - 1:-2]])[None].to(device)
    types = (ids == config.video_token_id).long() * 2
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "pixel_values_videos": pixels,
            "video_grid_thw": grid, "mm_token_type_ids": types}


def one_row(model: torch.nn.Module, name: str, tokens: int, device: torch.device, repeats: int) -> dict[str, Any]:
    """Time (median of ``repeats`` after a warm-up), peak memory and FLOPs of one prefill under method ``name``."""
    inputs = video_sample(model, tokens, device)
    method = make_method(name, {"fixed_ratio": "0.5"} if name == "topk" else {})
    runtime = attach(model, method, AdaSparkConfig())
    row: dict[str, Any] = {"method": name, "tokens": int(inputs["input_ids"].shape[1]), "settings": method.settings()}
    try:
        with torch.no_grad(), sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION,
                                           SDPBackend.EFFICIENT_ATTENTION], set_priority=True):
            model(**inputs, logits_to_keep=1, use_cache=False)  # warm-up (kernel compiles)
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            times = []
            for _ in range(repeats):
                runtime.records.clear()
                start = time.perf_counter()
                model(**inputs, logits_to_keep=1, use_cache=False)
                torch.cuda.synchronize()
                times.append((time.perf_counter() - start) * 1e3)
            row["peak_gib"] = (torch.cuda.max_memory_allocated() - base) / 2**30
        row["ms"] = sorted(times)[len(times) // 2]
        flops = method.count(ModelDims.from_config(model.config), runtime.records,
                             video_grid_thw=inputs["video_grid_thw"], image_grid_thw=None, video=VideoSettings())
        row.update(llm_prefill_reduction=flops.llm_prefill.reduction, total_reduction=flops.total.reduction)
    except torch.OutOfMemoryError as error:
        row["error"] = f"out of memory: {str(error).splitlines()[0][:120]}"
        torch.cuda.empty_cache()
    except Exception as error:  # noqa: BLE001 - a benchmark row records why it failed and goes on
        row["error"] = f"{type(error).__name__}: {str(error).splitlines()[0][:200]}"
    finally:
        runtime.detach()
    print(json.dumps(row), flush=True)
    return row


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--tokens", type=int, nargs="+", default=[16384, 65536])
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--layers", type=int, help="decoder layers (default: the 7B's 28)")
    args = parser.parse_args(argv)
    names = args.methods.split(",")
    unknown = [n for n in names if n not in METHODS]
    if unknown:
        raise SystemExit(f"unknown methods {unknown}: choose from {', '.join(METHODS)}")
    device = torch.device("cuda")
    model = build(device, args.layers)
    rows = [one_row(model, name, tokens, device, args.repeats) for tokens in args.tokens for name in names]
    environment = {"device": torch.cuda.get_device_name(), "torch": torch.__version__,
                   "transformers": transformers.__version__}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers_gpu.json").write_text(json.dumps({"environment": environment, "rows": rows}, indent=1))
    print("\n| tokens | method | ms | vs dense | peak GiB | LLM prefill FLOPs -% | total FLOPs -% |\n|---|---|---|---|---|---|---|")
    dense = {r["tokens"]: r.get("ms") for r in rows if r["method"] == "dense"}
    for r in rows:
        if "error" in r:
            print(f"| {r['tokens']} | {r['method']} | {r['error']} | | | | |")
            continue
        speed = f"{dense[r['tokens']] / r['ms']:.2f}x" if dense.get(r["tokens"]) else ""
        print(f"| {r['tokens']} | {r['method']} | {r['ms']:.0f} | {speed} | {r['peak_gib']:.1f} | "
              f"{100 * r['llm_prefill_reduction']:.1f} | {100 * r['total_reduction']:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1:])
