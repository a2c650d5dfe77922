"""Section ``prefill``: a whole 7B-architecture prefill with random bf16 weights, dense vs AdaSpark, with peak
memory, with transformers' eager elementwise ops and with ``models.fused``."""

from __future__ import annotations

import functools
import time
from typing import Any

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.flops.counter import count_sample
from adaspark_eval.models import fused
from adaspark_eval.sparse.qwen2_5_vl import SparseRuntime
from benchmarks.kernel_bench.common import build_7b, relative_error, video_inputs

ADASPARK_SETTINGS = [{"fixed_ratio": 0.5, "select": "cube"}, {"fixed_ratio": 0.25, "select": "cube"}]  # the sparse rows


def prefill_section(lengths: list[int], settings: list[dict[str, Any]], device: torch.device) -> list[dict[str, Any]]:
    model = build_7b(device)
    rows = []
    for tokens in lengths:
        ids, grid = video_inputs(tokens, device)
        forward = functools.partial(model, input_ids=ids, video_grid_thw=grid, logits_to_keep=1, use_cache=False)
        eager_logits = None
        for fused_ops, setting in [(f, s) for f in (False, True) for s in [{"dense": True}, *settings]]:
            (fused.fuse if fused_ops else fused.unfuse)(model)
            sparse = None if setting.get("dense") else SparseRuntime.attach(model, AdaSparkConfig(**setting))
            row = {"tokens": tokens, "fused_ops": fused_ops}
            with torch.no_grad(), sdpa_kernel([SDPBackend.CUDNN_ATTENTION, SDPBackend.FLASH_ATTENTION],
                                               set_priority=True):
                logits = forward().logits
                if sparse is None and not fused_ops:
                    eager_logits = logits
                elif sparse is None:
                    row["logits_relative_error_vs_eager"] = relative_error(logits, eager_logits)
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
                base = torch.cuda.memory_allocated()
                times = []
                for _ in range(3):
                    start = time.perf_counter()
                    forward()
                    torch.cuda.synchronize()
                    times.append((time.perf_counter() - start) * 1e3)
                peak = torch.cuda.max_memory_allocated() - base
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
