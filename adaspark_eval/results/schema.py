"""The shape of what a run writes: one ``SampleRecord`` per line of ``samples.jsonl`` and one
``RunSummary`` in ``summary.json``. Scores are percentages (0..100); FLOPs are counted at 2 per
multiply-add; latencies are seconds."""

from __future__ import annotations

from typing import Any, TypedDict


class FlopTotals(TypedDict):
    actual: int
    dense: int
    reduction: float  # 1 - actual / dense


class SampleFlops(TypedDict):
    components: dict[str, dict[str, int]]  # name -> {"actual", "dense"}
    llm_prefill: FlopTotals
    total: FlopTotals


class LayerRecord(TypedDict):
    layer: int
    kept_cube_fraction: float
    ffn_active_fraction: float
    entropy: float | None


class SampleRecord(TypedDict, total=False):
    # required (RunStore.append checks these)
    task: str  # "videomme" | "mlvu_dev" | "videoniah"
    sample_id: str
    config_key: str  # "<method>-<hash>" of the knobs, model, video settings, dtype (lmms.model.run_key):
    # results of another config are never reused
    prediction: str | None  # raw model output; None when the sample failed
    answer: str  # gold
    correct: bool | None  # None when the sample failed
    error: str | None  # None, or the one-line reason (missing/corrupt video, ...)
    # filled when available
    method: str  # "adaspark", "dense", ...
    prompt: str
    parsed: str | None  # the answer parsed out of the prediction (e.g. an option letter)
    category: dict[str, str]  # task-specific breakdown, e.g. {"duration": "long", "task_type": "Counting"}
    flops: SampleFlops
    layers: list[LayerRecord]  # prefill, one entry per decoder layer
    latency: dict[str, float]  # {"prefill_s", "total_s"}
    tokens: dict[str, int]  # {"visual", "total", "generated"}
    blocks: dict[str, int]  # backend=fa4 only: {"kept_units", "block_units"}, (query cube, key unit) pairs kept and
    # computed by flash-attn-4's blocks over the prefill's layers (64-token cubes: the union's extra work)
    niah: dict[str, Any]  # VideoNIAH only: {"video", "type", "try", "question_id", "depth", "length", "needle_time",
    # "options"} ("options" since the scoring rules: older records lack it, see docs/scoring.md)


class RunSummary(TypedDict, total=False):
    run: str
    model: str
    method: str
    config: dict[str, Any]  # AdaSparkConfig.to_dict()
    config_key: str
    tasks: list[str]
    scores: dict[str, float]  # "<task>/<metric>" -> percent, e.g. "videomme/overall", "mlvu_dev/m_avg", as
    # lmms-eval computed them (the ``lmms`` rule; ``lenient`` for VideoNIAH)
    scores_official: dict[str, float]  # the same names under each benchmark's released evaluator (``official``
    # rule of datasets.scoring), recomputed from the run's records; absent in summaries written before it
    flop_reduction: dict[str, float]  # mean over scored samples: {"llm_prefill", "total"}
    latency: dict[str, float]  # mean {"prefill_s", "total_s"}
    n_samples: int
    n_errors: int
    versions: dict[str, str]
    git_revision: str
    created: str  # ISO 8601
    video: dict[str, Any]  # how videos were read: {"max_num_frames", "fps", "min_pixels", "max_pixels"}
    dtype: str
    limit: int | float | None  # lmms-eval's samples-per-task limit of the run, None for all
