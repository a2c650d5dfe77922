"""Section ``prefill``: a whole prefill with random bf16 weights, dense vs AdaSpark, with peak memory: the
Qwen2.5-VL-7B architecture with transformers' eager elementwise ops and with ``models.fused`` (which covers
Qwen2.5-VL's modules only), and the Qwen3-VL-8B architecture (its timestamped video form, eager ops).

    python benchmarks/bench_kernels.py --out OUT --sections prefill --prefill-models qwen3-vl-8b --update ...
"""

from __future__ import annotations

import functools
import time
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.flops.counter import count_sample
from adaspark_eval.models import fused
from adaspark_eval.sparse.runtime import SparseRuntime
from adaspark_eval.sparse.families import family_of
from benchmarks.kernel_bench.common import PREFILL_MODELS, build_prefill_model, relative_error, video_inputs

ADASPARK_SETTINGS = [{"fixed_ratio": 0.5, "select": "cube"}, {"fixed_ratio": 0.25, "select": "cube"}]  # the sparse rows


def prefill_section(lengths: list[int], settings: list[dict[str, Any]], device: torch.device,
                    models: tuple[str, ...] = PREFILL_MODELS, toy: bool = False) -> list[dict[str, Any]]:
    """Rows of ``models`` (known config names) at each of ``lengths``; ``toy``: 2-layer narrow models
    (``common.prefill_config``), which also run on the CPU (no peak memory there)."""
    rows = []
    for name in models:
        model = build_prefill_model(name, device, toy)
        rows += _model_rows(name, model, lengths, settings, device)
        del model
    return rows


def _model_rows(name: str, model: torch.nn.Module, lengths: list[int], settings: list[dict[str, Any]],
                device: torch.device) -> list[dict[str, Any]]:
    family = family_of(model.config)
    cuda = device.type == "cuda"
    rows = []
    for tokens in lengths:
        ids, grid = video_inputs(tokens, device, timestamps=family.timestamps)
        extra = {"mm_token_type_ids": (ids == model.config.video_token_id).long() * 2} if family.timestamps else {}
        forward = functools.partial(model, input_ids=ids, video_grid_thw=grid, logits_to_keep=1, use_cache=False,
                                    **extra)
        eager_logits = None
        fused_choices = (False, True) if family.window_attention else (False,)  # models.fused: Qwen2.5-VL's modules
        for fused_ops, setting in [(f, s) for f in fused_choices for s in [{"dense": True}, *settings]]:
            (fused.fuse if fused_ops else fused.unfuse)(model)
            sparse = None if setting.get("dense") else SparseRuntime.attach(model, AdaSparkConfig(**setting))
            row = {"model": name, "tokens": tokens, "fused_ops": fused_ops}
            backends = [SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION] if cuda else [SDPBackend.MATH]
            with torch.no_grad(), sdpa_kernel(backends, set_priority=True):
                logits = forward().logits
                if sparse is None and not fused_ops:
                    eager_logits = logits
                elif sparse is None:
                    row["logits_relative_error_vs_eager"] = relative_error(logits, eager_logits)
                sync = torch.cuda.synchronize if cuda else (lambda: None)
                sync()
                if cuda:
                    torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated() if cuda else 0
                times = []
                for _ in range(3):
                    start = time.perf_counter()
                    forward()
                    sync()
                    times.append((time.perf_counter() - start) * 1e3)
                peak = torch.cuda.max_memory_allocated() - base if cuda else 0
            row.update(setting="dense (SDPA cuDNN)" if sparse is None else setting, ms=sorted(times)[1],
                       peak_activation_gib=peak / 2**30)
            if sparse is not None:
                flops = count_sample(model.config, sparse.records, video_grid_thw=grid).llm_prefill
                row.update(flop_actual=flops.actual, flop_dense=flops.dense, flop_ratio=flops.dense / flops.actual)
                sparse.detach()
            rows.append(row)
            print(f"  prefill {row}", flush=True)
    fused.unfuse(model)
    return rows
