"""The in-run FLOP counter: per-sample FLOPs from what the sparse model recorded (``SparseRuntime.records``),
the model config and the visual grids. No trace, a handful of reductions per forward: cheap enough for
every sample of an evaluation.

    sparse = SparseRuntime.attach(model, config)
    model.generate(**inputs, max_new_tokens=8)
    flops = count_sample(model.config, sparse.records, video_grid_thw=inputs["video_grid_thw"])
    flops.llm_prefill.reduction, flops.to_dict()
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor
from transformers import PreTrainedConfig

from adaspark_eval.flops.analytic import Grid, llm_forward_flops, vision_flops
from adaspark_eval.flops.dims import ModelDims
from adaspark_eval.flops.sample import ComponentFlops, SampleFlops
from adaspark_eval.sparse.stats import ForwardRecord

GridsLike = Tensor | Sequence[Sequence[int]] | None


def count_sample(model_config: PreTrainedConfig | ModelDims, records: Sequence[ForwardRecord], *,
                 video_grid_thw: GridsLike = None, image_grid_thw: GridsLike = None,
                 sample: int | None = None) -> SampleFlops:
    """FLOPs of one sample, actual and dense, by component (2 per multiply-add).

    Args:
        model_config: ``model.config`` of the model that ran, or its ``ModelDims``.
        records: ``SparseRuntime.records`` after the sample ran: its prefill, then its decode steps (if any).
        video_grid_thw / image_grid_thw: (N, 3) the processor's grids of this sample's videos / images.
        sample: which sample of a batched run; needed only when the records hold more than one.
    """
    dims = model_config if isinstance(model_config, ModelDims) else ModelDims.from_config(model_config)
    if not records or records[0].phase != "prefill" or any(r.phase != "decode" for r in records[1:]):
        raise ValueError("records must be one prefill then its decode steps: pass SparseRuntime.records right after "
                         "the sample's prefill or generate call")
    batch = records[0].batch
    if sample is None and batch > 1:
        raise ValueError(f"the records hold a batch of {batch}: pass sample=i and the grids of sample i only")
    b = sample or 0
    if not 0 <= b < batch:
        raise ValueError(f"sample={sample} is outside the batch of {batch}: pass 0..{batch - 1}")
    vision = sum(vision_flops(dims.vision, g) for g in _grids(video_grid_thw) + _grids(image_grid_thw))
    prefill = _forward(dims, records[0], b)
    decode = [_forward(dims, r, b) for r in records[1:]]
    components = {"vision_encoder": ComponentFlops(vision, vision),
                  **{name: ComponentFlops(prefill[0][name], prefill[1][name]) for name in prefill[0]},
                  "decode": ComponentFlops(sum(sum(a.values()) for a, _ in decode),
                                           sum(sum(d.values()) for _, d in decode))}
    return SampleFlops(components)


def _forward(dims: ModelDims, record: ForwardRecord, b: int) -> tuple[dict[str, int], dict[str, int]]:
    """The LLM components of one recorded forward for sample ``b``: (actual, dense)."""
    layers = range(dims.text.layers)
    missing = [i for i in layers if i not in record.attention or i not in record.ffn]
    if missing:
        raise ValueError(f"the {record.phase} record has no statistics for layers {missing}: count records of a "
                         "model run with AdaSpark attached (SparseRuntime.attach), all of its layers included")
    attention = [record.attention[i] for i in layers]
    ffn = [record.ffn[i] for i in layers]
    if any(a.pairs is None or a.dense_pairs is None for a in attention):
        raise ValueError(f"the {record.phase} record lacks key/query pairs: the attention implementation must set "
                         "AttentionStats.pairs and dense_pairs")

    def total(values: list[Tensor | None]) -> int:
        present = [v for v in values if v is not None]
        # one device: a model split over several GPUs leaves each layer's counts on its own
        return int(torch.stack([v.to(present[0].device) for v in present])[:, b].sum()) if present else 0

    tokens = total([f.dense_tokens for f in ffn])
    rows = 1 if tokens else 0
    moe = set(dims.text.moe_layers)  # routed-expert layers: their kept tokens run the router and top-k experts

    def ffn_total(routed: bool, kept: bool) -> int:
        return total([f.tokens if kept else f.dense_tokens for i, f in enumerate(ffn) if (i in moe) == routed])

    actual = llm_forward_flops(
        dims.text, tokens=total([a.tokens if a.tokens is not None else f.dense_tokens for a, f in zip(attention, ffn)]),
        pairs=total([a.pairs for a in attention]), ffn_tokens=ffn_total(False, True), moe_tokens=ffn_total(True, True),
        selection_vectors=total([v for a in attention for v in (a.score_dots, a.key_means, a.query_means)]),
        logit_rows=rows)
    actual["selection"] += total([a.selection_flops for a in attention])
    dense = llm_forward_flops(dims.text, tokens=tokens, pairs=total([a.dense_pairs for a in attention]),
                              ffn_tokens=ffn_total(False, False), moe_tokens=ffn_total(True, False),
                              selection_vectors=0, logit_rows=rows)
    return actual, dense


def _grids(grid_thw: GridsLike) -> list[Grid]:
    if grid_thw is None:
        return []
    rows = grid_thw.tolist() if isinstance(grid_thw, Tensor) else grid_thw
    return [(int(t), int(h), int(w)) for t, h, w in rows]
