"""Decode steps of ``--decode graph`` (``models.graph_decode``) against transformers' ``generate``, with AdaSpark
attached: the same tokens and records, and the time per decode step.

    PYTHONPATH=. python3 benchmarks/decode_graph.py --model tiny --out decode_graph.json          # any device
    PYTHONPATH=. python3 benchmarks/decode_graph.py --model CHECKPOINT --prompt-tokens 11500       # a GPU

``--model tiny``: the tiny model with a video prompt, in float32 and bfloat16 (``--dtypes``). A checkpoint: a
text prompt of ``--prompt-tokens`` random ids (the KV length a 32-frame question has), in bfloat16. Per dtype:
whether the new tokens and the per-layer records equal ``generate``'s, the graphs captured, and the seconds per
decode step of each loop (``--tokens`` new tokens, best of ``--repeats``; the first graph call, which captures,
is timed apart as ``first_call_s``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.models.graph_decode import GraphDecoder
from adaspark_eval.sparse.runtime import SparseRuntime


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _records(runtime: SparseRuntime) -> list[Any]:
    return [(r.phase, r.kv_len, {i: int(a.pairs.sum()) for i, a in r.attention.items()},
             {i: int(f.tokens.sum()) for i, f in r.ffn.items()}) for r in runtime.records]


def compare(model: Any, inputs: dict[str, Any], tokens: int, repeats: int) -> dict[str, Any]:
    """``generate`` and ``GraphDecoder`` on ``inputs`` (runtime attached): equality and seconds per step."""
    runtime = model.adaspark
    eos = -1  # never produced: both loops run to ``tokens``

    def run_generate() -> torch.Tensor:
        return model.generate(**inputs, eos_token_id=eos, pad_token_id=0, do_sample=False, num_beams=1,
                              max_new_tokens=tokens, use_cache=True)

    def run_prefill() -> torch.Tensor:
        return model.generate(**inputs, eos_token_id=eos, pad_token_id=0, do_sample=False, num_beams=1,
                              max_new_tokens=1, use_cache=True)

    def best(function: Any) -> tuple[float, Any]:
        times, out = [], None
        for _ in range(repeats):
            _sync()
            start = time.perf_counter()
            out = function()
            _sync()
            times.append(time.perf_counter() - start)
        return min(times), out

    with torch.no_grad():
        prefill_s, _ = best(run_prefill)
        generate_s, reference = best(run_generate)
        reference_records = _records(runtime)
        decoder = GraphDecoder(model)
        _sync()
        start = time.perf_counter()
        decoder.generate(inputs, tokens, eos, 0)
        _sync()
        first_call_s = time.perf_counter() - start
        graph_s, sequences = best(lambda: decoder.generate(inputs, tokens, eos, 0))
        graph_records = _records(runtime)
    steps = tokens - 1
    new = reference.shape[1] - inputs["input_ids"].shape[1]
    same = sequences[:, -new:] == reference[:, -new:]
    return {
        "prompt_tokens": int(inputs["input_ids"].shape[1]), "new_tokens": int(new), "graph": decoder.graph,
        "captures": decoder.captures, "capacity": decoder.kv.capacity if decoder.kv is not None else None,
        "tokens_equal": bool(same.all()), "first_difference": int((~same[0]).nonzero()[0]) if not same.all() else None,
        "records_equal": graph_records == reference_records,
        "prefill_s": round(prefill_s, 4), "first_call_s": round(first_call_s, 4),
        "generate_step_ms": round((generate_s - prefill_s) / steps * 1e3, 3),
        "graph_step_ms": round((graph_s - prefill_s) / steps * 1e3, 3),
    }


def tiny_inputs(processor: Any, device: str) -> dict[str, Any]:
    import numpy as np

    from adaspark_eval.models.prompt import video_prompt

    video = np.random.RandomState(0).randint(0, 256, (8, 84, 112, 3), dtype=np.uint8)
    return video_prompt(processor, [video], "Which colour appears first?").to(device)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--prompt-tokens", type=int, default=11500)
    parser.add_argument("--tokens", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    result: dict[str, Any] = {"device": torch.cuda.get_device_name(0) if device == "cuda" else "cpu",
                              "torch": torch.__version__, "model": args.model, "rows": []}
    for dtype in args.dtypes.split(","):
        if args.model == "tiny":
            from adaspark_eval.models.tiny import build_tiny

            model, processor = build_tiny(seed=0, dtype=getattr(torch, dtype))
            model = model.to(device)
            inputs = tiny_inputs(processor, device)
            config = AdaSparkConfig(fixed_ratio=0.5, cube=(2, 2, 2))
        else:
            from adaspark_eval.models.loading import load_model

            model = load_model(args.model, device=device, dtype=dtype).model
            generator = torch.Generator().manual_seed(0)
            ids = torch.randint(1000, 100000, (1, args.prompt_tokens), generator=generator)
            inputs = {"input_ids": ids.to(device), "attention_mask": torch.ones_like(ids).to(device)}
            config = AdaSparkConfig(p=1.0)
        runtime = SparseRuntime.attach(model, config)
        row = {"dtype": dtype, **compare(model, inputs, args.tokens, args.repeats)}
        runtime.detach()
        print(json.dumps(row), flush=True)
        result["rows"].append(row)
        del model
        if device == "cuda":
            torch.cuda.empty_cache()
    if args.out is not None:
        args.out.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    sys.exit(main())
