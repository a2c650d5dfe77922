"""Test fixtures of the results file format: a small seeded results tree written with ``RunStore``.

The tree holds a dense run (split over two folders that share its config key), an AdaSpark p sweep,
AdaSpark ablation runs at p=0.8 (fixed ratio, no compensation, cube 2x2x2, attention-only, FFN-only)
and a peer method at two settings, each on the three tasks, plus a folder still being written (no
summary) and a stale record of another config. Predictions, FLOPs and layer statistics are made up:
this exercises the file format and the reports, not any model. Predictions are bare option letters, on
which every scoring rule reads the same choice; summary scores are the records' scores under the lmms
rule (``scores``, what lmms-eval computes) and the official rule (``scores_official``).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.datasets.scoring import score_records
from adaspark_eval.results.store import RunStore

P_SWEEP = (0.6, 0.8, 0.9)
ABLATIONS = {  # folder -> knobs changed from AdaSparkConfig(p=0.8)
    "fixed-ratio-0.4": {"fixed_ratio": 0.4},
    "compensation-none": {"compensation": "none"},
    "cube-2x2x2": {"cube": (2, 2, 2)},
    "attention-only": {"ffn": False},
    "ffn-only": {"attention": False},
}
PEER = ("fastv", (0.5, 0.7))
LAYERS = 4
DENSE_PREFILL = 2e13   # FLOPs of the dense LLM prefill of the first sample of a task
OTHER_FLOPS = 6e12     # vision encoder + decode, the same for every method
NIAH_DEPTHS = (0.1, 0.7)
NIAH_LENGTHS = (60.0, 120.0)
TRIES = 4
LETTERS = "ABCD"
NIAH_TYPES = ("ret_edit1", "cnt_edit1")  # alternate over the videos


def keep_fraction(method: str, config: AdaSparkConfig) -> float:
    """Fraction of the dense LLM prefill FLOPs a fixture run computes."""
    if method == "dense":
        return 1.0
    if method != "adaspark":
        return config.p
    kept = 0.2 + 0.5 * (config.fixed_ratio if config.fixed_ratio is not None else config.p)
    return kept + 0.2 * (not config.attention) + 0.1 * (not config.ffn)


def fixture_samples() -> list[dict[str, Any]]:
    """The questions of the fixture tasks: 6 VideoMME, 6 MLVU dev, 16 VideoNIAH tries."""
    samples = []
    for i in range(6):
        samples.append({"task": "videomme", "sample_id": f"vm{i}", "category": {
            "duration": ("short", "medium", "long")[i % 3], "domain": "Knowledge", "sub_category": "Astronomy",
            "task_type": ("Counting Problem", "OCR Problems")[i // 3]}})
        samples.append({"task": "mlvu_dev", "sample_id": f"ml{i}",
                        "category": {"task_type": ("plotQA", "needle", "count")[i % 3]}})
    for video, (depth, length) in enumerate((d, n) for d in NIAH_DEPTHS for n in NIAH_LENGTHS):
        type_ = NIAH_TYPES[video % len(NIAH_TYPES)]
        for attempt in range(TRIES):
            samples.append({"task": "videoniah", "sample_id": f"{video:05d}_{type_}_{attempt}",
                            "category": {"type": type_, "task": type_.split("_")[0]},
                            "niah": {"type": type_, "try": attempt, "depth": depth, "length": length,
                                     "video": f"videos/{video:05d}_{type_}.mp4",
                                     "question_id": f"{video:05d}_{type_}_{attempt}"}})
    return samples


def fixture_record(method: str, config: AdaSparkConfig, sample: dict[str, Any], index: int, seed: int) -> dict:
    """One made-up sample record: correct with a chance that grows with the kept fraction."""
    kept = keep_fraction(method, config)
    config_key = f"{method}-{config.key()}"
    rng = random.Random(f"{seed}/{config_key}/{sample['sample_id']}")
    answer = LETTERS[index % 4]
    correct = rng.random() < 0.25 + 0.75 * kept  # dense: always right
    parsed = answer if correct else LETTERS[(index + 1) % 4]
    dense = DENSE_PREFILL * (1 + index % 3)
    record = {
        **sample, "config_key": config_key, "method": method, "prompt": "question", "prediction": parsed,
        "parsed": parsed, "answer": answer, "correct": correct, "error": None,
        "flops": {"components": {"ffn": {"actual": int(dense * kept / 2), "dense": int(dense / 2)}},
                  "llm_prefill": _totals(dense * kept, dense), "total": _totals(dense * kept + OTHER_FLOPS, dense + OTHER_FLOPS)},
        "latency": {"prefill_s": round(kept * (1 + index % 3), 3), "total_s": round(kept * (1 + index % 3) + 0.5, 3)},
        "tokens": {"visual": 4096, "total": 4160},
    }
    if method == "adaspark":
        record["layers"] = [{"layer": layer, "kept_cube_fraction": round(min(1.0, kept * (0.7 + 0.2 * layer)), 4),
                             "ffn_active_fraction": round(min(1.0, kept * (1.3 - 0.2 * layer)), 4), "entropy": None}
                            for layer in range(LAYERS)]
    return record


def _totals(actual: float, dense: float) -> dict[str, float]:
    return {"actual": int(actual), "dense": int(dense), "reduction": 1 - int(actual) / int(dense)}


def fixture_scores(records: list[dict[str, Any]], rule: str) -> dict[str, float]:
    """Summary scores of the fixture under scoring ``rule``: ``<task>/<metric>`` of each task's records."""
    return {f"{task}/{metric}": value for task in dict.fromkeys(r["task"] for r in records)
            for metric, value in score_records(task, [r for r in records if r["task"] == task], rule).items()}


def write_run(folder: Path, method: str, config: AdaSparkConfig, tasks: tuple[str, ...], created: str, seed: int) -> None:
    """One run folder: its sample records of ``tasks`` and a summary, through ``RunStore``."""
    store = RunStore(folder)
    records = [fixture_record(method, config, sample, i, seed)
               for i, sample in enumerate(fixture_samples()) if sample["task"] in tasks]
    for record in records:
        store.append(record)
    store.write_summary({
        "run": folder.name, "model": "fixture", "method": method, "config": config.to_dict(),
        "config_key": records[0]["config_key"], "tasks": list(tasks), "scores": fixture_scores(records, "lmms"),
        "scores_official": fixture_scores(records, "official"),
        "flop_reduction": {"llm_prefill": sum(r["flops"]["llm_prefill"]["reduction"] for r in records) / len(records)},
        "latency": {"prefill_s": sum(r["latency"]["prefill_s"] for r in records) / len(records)},
        "n_samples": len(records), "n_errors": 0, "created": created,
    })


def build_results_tree(root: Path, seed: int = 0) -> Path:
    """Write the fixture results tree under ``root`` (deterministic in ``seed``) and return ``root``."""
    tasks = ("videomme", "mlvu_dev", "videoniah")
    runs = [("dense/part1", "dense", AdaSparkConfig(), tasks[:2]), ("dense/part2", "dense", AdaSparkConfig(), tasks[2:])]
    runs += [(f"sweep/p{p}", "adaspark", AdaSparkConfig(p=p), tasks) for p in P_SWEEP]
    runs += [(f"ablations/{name}", "adaspark", AdaSparkConfig(p=0.8, **knobs), tasks) for name, knobs in ABLATIONS.items()]
    runs += [(f"peers/{PEER[0]}-{p}", PEER[0], AdaSparkConfig(p=p), tasks) for p in PEER[1]]
    for i, (name, method, config, run_tasks) in enumerate(runs):
        write_run(root / name, method, config, run_tasks, f"2026-01-01T00:{i:02d}:00", seed)
    stale = fixture_record("adaspark", AdaSparkConfig(p=0.5), fixture_samples()[0], 0, seed)
    RunStore(root / "sweep/p0.8").append({**stale, "config_key": "adaspark-stale"})
    RunStore(root / "in-progress").append(fixture_record("adaspark", AdaSparkConfig(p=0.7), fixture_samples()[0], 0, seed))
    return root

