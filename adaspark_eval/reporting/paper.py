"""The paper's tables, laid out from the run configs: the main table (benchmarks x {dense, AdaSpark at
the chosen p}, with FLOP reduction), the peer methods at AdaSpark's FLOPs, and the ablation tables
(top-p vs fixed ratio, mean compensation, cube size, attention-only / FFN-only).

"AdaSpark" in the main table is the main series: every knob but ``p`` at its default. An ablation
table holds the AdaSpark configs that agree on every knob except the ablated ones and ``p``, wherever
the ablated knobs take two or more values (at the same ``p``, except for the fixed ratio, which
replaces ``p``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from adaspark_eval.reporting.aggregate import MAIN_SERIES, configs, costs, ordered_tasks, points
from adaspark_eval.config import RESULT_NEUTRAL
from adaspark_eval.reporting.labels import DEFAULT_KNOBS
from adaspark_eval.reporting.load import Results

TASK_NAMES = {"videomme": "VideoMME", "mlvu_dev": "MLVU dev", "videoniah": "VideoNIAH"}
METHOD_NAMES = {"dense": "Dense", "adaspark": "AdaSpark"}
REDUCTION = "FLOPs -% (LLM prefill)"
MATCHED = "at FLOPs of"
FLOPS_NOTE = "scores in %; FLOPs at 2 per multiply-add, reduction averaged over all samples of a row"


@dataclass(frozen=True)
class Ablation:
    """AdaSpark runs that differ only in ``knobs`` (and ``p``); ``same_p``: compare at equal ``p``."""

    title: str
    knobs: tuple[str, ...]
    same_p: bool = True


ABLATIONS = (
    Ablation("Top-p vs fixed ratio", ("fixed_ratio",), same_p=False),
    Ablation("Mean compensation on/off", ("compensation",)),
    Ablation("Cube size", ("cube",)),
    Ablation("Attention-only / FFN-only", ("attention", "ffn")),
)


def score_table(results: Results, keys: Sequence[str], columns: Sequence[str] = ()) -> pd.DataFrame:
    """Rows: configs ``keys`` (by label). Columns: the config ``columns`` given, each task's headline
    score (header ``"VideoMME (overall, lmms)"``: the metric and the scoring rule), then the LLM-prefill
    FLOP reduction over all the row's samples."""
    table_points = points(results)
    table_points = table_points[table_points["config_key"].isin(keys)]
    scores = table_points.pivot(index="config_key", columns="task", values="score")
    tasks = ordered_tasks(scores.columns)
    metrics = table_points.dropna(subset="metric").groupby("task")["metric"].agg(lambda m: m.mode()[0])
    headers = {task: f"{TASK_NAMES.get(task, task)} ({metrics[task]}, {results.rule(task)})" for task in tasks}
    table = configs(results).loc[list(keys), list(columns)].join(scores[tasks].rename(columns=headers))
    table[REDUCTION] = costs(results.samples, ["config_key"])["prefill_reduction"].reindex(table.index)
    table.index = configs(results).loc[list(keys), "label"]
    table.index.name = "config"
    return table.round({**{h: 1 for h in headers.values()}, REDUCTION: 1})


def main_table(results: Results, ps: Sequence[float] | None = None) -> pd.DataFrame:
    """Dense and AdaSpark (main series) at each of ``ps`` (default: every p run), one row each, rows
    named like ``Dense`` and ``AdaSpark p=0.8``; ``ValueError`` naming the p values run when one of
    ``ps`` was not."""
    table = configs(results)
    keys = [*table.index[table["method"] == "dense"], *_main_keys(table, ps)]
    out = score_table(results, keys)
    out.index = _paper_names(table, keys)
    out.index.name = "method"
    return out


def comparison_table(results: Results, ps: Sequence[float] | None = None) -> pd.DataFrame:
    """Peer methods at AdaSpark's FLOPs: for each AdaSpark main-series config (at each of ``ps``,
    default every p run) its row, then per peer method the config whose LLM-prefill FLOP reduction (mean
    over all its samples) is nearest to it (ties to the cheaper); ``score_table`` columns after
    ``MATCHED``, the AdaSpark row each row is matched to. Empty when no peer method was run."""
    table = configs(results)
    peers = table[~table["method"].isin(["dense", "adaspark"])]
    if peers.empty:
        return pd.DataFrame()
    reduction = costs(results.samples, ["config_key"])["prefill_reduction"]
    blocks = []
    for anchor in _main_keys(table, ps):
        distance = (reduction[peers.index] - reduction[anchor]).abs().round(6)  # percent; float noise is a tie
        nearest = (pd.DataFrame({"method": peers["method"], "distance": distance, "cheaper": -reduction[peers.index]})
                   .sort_values(["distance", "cheaper"], kind="stable").groupby("method", sort=False).head(1))
        block = score_table(results, [anchor, *nearest.index])
        block.insert(0, MATCHED, _paper_names(table, _main_keys(table, ps))[_main_keys(table, ps).index(anchor)])
        blocks.append(block)
    return pd.concat(blocks)


def ablation_table(results: Results, ablation: Ablation) -> pd.DataFrame:
    """The configs of ``ablation`` (``score_table`` with ``p`` and the ablated knobs as columns; ``p``
    left blank where a fixed ratio replaces it); empty when the runs hold no such ablation."""
    table = configs(results)
    adaspark = table[table["method"] == "adaspark"]
    shared = [k for k in DEFAULT_KNOBS if k in adaspark and k not in (*ablation.knobs, "p", *RESULT_NEUTRAL)]
    chosen: set[str] = set()
    for _, group in adaspark.groupby(shared, dropna=False, sort=False):
        if ablation.same_p:
            group = group.groupby("p").filter(lambda g: _variants(g, ablation.knobs) > 1)
        if _variants(group, ablation.knobs) > 1:
            chosen.update(group.index)
    out = score_table(results, [k for k in adaspark.index if k in chosen], ["p", *ablation.knobs])
    if "fixed_ratio" in out:
        out["p"] = out["p"].where(out["fixed_ratio"].isna())
    return out


def paper_tables(results: Results, ps: Sequence[float] | None = None) -> dict[str, pd.DataFrame]:
    """The main table and every ablation the runs hold, by title."""
    tables = {f"Main table ({FLOPS_NOTE})": main_table(results, ps)}
    comparison = comparison_table(results, ps)
    if not comparison.empty:
        tables[f"Peer methods at matched FLOPs ({FLOPS_NOTE})"] = comparison
    for ablation in ABLATIONS:
        table = ablation_table(results, ablation)
        if not table.empty:
            tables[f"Ablation: {ablation.title} ({FLOPS_NOTE})"] = table
    return tables


def _main_keys(table: pd.DataFrame, ps: Sequence[float] | None) -> list[str]:
    """Config keys of the AdaSpark main series at each of ``ps`` (default: every p run) in ``configs``
    order; ``ValueError`` naming the p values run when one of ``ps`` was not."""
    main = table[table["series"] == MAIN_SERIES]
    missing = sorted(set(ps or ()) - set(main["p"]))
    if missing:
        raise ValueError(f"no AdaSpark run with default knobs at p={', '.join(map(str, missing))}: "
                         f"runs exist at p={', '.join(map(str, sorted(main['p']))) or 'none'}")
    return list(main.index[main["p"].isin(ps or main["p"])])


def _variants(group: pd.DataFrame, knobs: Sequence[str]) -> int:
    """How many distinct settings of ``knobs`` the configs of ``group`` hold."""
    return len(group[list(knobs)].drop_duplicates())


def _paper_names(table: pd.DataFrame, keys: Sequence[str]) -> list[str]:
    """``_paper_name`` of each config, told apart where two would read the same: by how videos were read
    (``32 frames``, ``1 fps``) when that differs, else by config key."""
    names = [_paper_name(table.loc[key]) for key in keys]
    reading = [(f"{table.loc[key, 'fps']:g} fps" if pd.notna(table.loc[key].get("fps")) else
                f"{table.loc[key].get('frames'):g} frames" if pd.notna(table.loc[key].get("frames")) else None)
               for key in keys]
    out = []
    for name, read, key in zip(names, reading, keys):
        twins = [r for n, r in zip(names, reading) if n == name]
        if len(twins) > 1:
            name += f" ({read})" if read is not None and twins.count(read) == 1 else f" [{key}]"
        out.append(name)
    return out


def _paper_name(config: pd.Series) -> str:
    name = METHOD_NAMES.get(config["method"], config["method"])
    return name if config["method"] == "dense" else f"{name} p={config['p']}"
