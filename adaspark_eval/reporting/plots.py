"""Figures of a results tree, drawn on matplotlib's Agg canvas (no pyplot: no display, no global
state) and saved as PNG and PDF: accuracy vs LLM-prefill FLOPs per task (relative and absolute, one
curve per series, the dense point, the Pareto front), per-layer kept-cube and FFN-active fraction vs
p, and the VideoNIAH accuracy heatmap by needle depth x haystack length."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from adaspark_eval.reporting.aggregate import MAIN_SERIES, configs, layer_profile, niah_tables, points
from adaspark_eval.reporting.load import Results

FORMATS = ("png", "pdf")
DPI = 150
FLOPS_NOTE = "2 FLOPs per multiply-add"


def figure(width: float, height: float) -> Figure:
    """An empty figure on the Agg canvas."""
    fig = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def pareto_front(flops: pd.Series, score: pd.Series) -> pd.Index:
    """Index of the points no other point beats (no more FLOPs and a higher score), by FLOPs."""
    order = pd.DataFrame({"flops": flops, "score": score}).sort_values(["flops", "score"], ascending=[True, False])
    best = order["score"].cummax().shift(fill_value=-math.inf)
    return order.index[order["score"] > best]


def accuracy_vs_flops(table: pd.DataFrame, task: str, rule: str = "as run") -> Figure:
    """Score of ``task`` (under scoring ``rule``, named on the axis) against LLM-prefill FLOPs, relative
    to dense (left) and absolute (right), from an ``aggregate.points`` table."""
    data = table[table["task"] == task].dropna(subset=["score", "prefill_reduction"])
    data = data.assign(relative=100 - data["prefill_reduction"])
    fig = figure(11, 4.2)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, x, xlabel in zip(axes, ("relative", "prefill_tflops"),
                             ("LLM prefill FLOPs (% of dense)", f"LLM prefill TFLOPs per sample ({FLOPS_NOTE})")):
        for series, group in data.groupby("series", sort=False):
            group = group.sort_values(x)
            if series == "dense":
                ax.scatter(group[x], group["score"], marker="*", s=220, color="black", zorder=4, label="dense")
                continue
            ax.plot(group[x], group["score"], marker="o", label=series)
            if series == MAIN_SERIES:
                for _, point in group.iterrows():
                    ax.annotate(f"p={point['p']:g}", (point[x], point["score"]), textcoords="offset points",
                                xytext=(4, 4), fontsize=7)
        front = data.loc[pareto_front(data[x], data["score"])]
        ax.step(front[x], front["score"], where="post", linestyle="--", color="grey", zorder=1, label="Pareto front")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    metric = data["metric"].mode()[0] if data["metric"].notna().any() else "score"
    axes[0].set_ylabel(f"{task} {metric} (%, {rule} rule)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=8)
    fig.suptitle(f"{task}: accuracy vs FLOPs")
    return fig


def layer_sparsity(profile: pd.DataFrame) -> Figure | None:
    """Per-layer kept-cube fraction (left) and FFN-active fraction (right), one line per p, from an
    ``aggregate.layer_profile`` table; None when the runs recorded no layer statistics."""
    if profile.empty:
        return None
    fig = figure(11, 4.2)
    axes = fig.subplots(1, 2, sharex=True)
    ps = sorted(profile["p"].unique())
    colours = colormaps["viridis"](np.linspace(0.1, 0.9, len(ps)))
    for ax, column, title in zip(axes, ("kept_cube_fraction", "ffn_active_fraction"),
                                 ("AdaS-Attn: kept cube fraction", "AdaS-FFN: active token fraction")):
        for p, colour in zip(ps, colours):
            rows = profile[profile["p"] == p]
            ax.plot(rows["layer"], rows[column], marker=".", color=colour, label=f"p={p:g}")
        ax.set_title(title)
        ax.set_xlabel("decoder layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylim(0, 1.05)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction (mean over samples)")
    fig.legend(*axes[0].get_legend_handles_labels(), loc="outside right upper", fontsize=8)
    fig.suptitle("AdaSpark sparsity per layer")
    return fig


def niah_heatmap(tables: dict[str, pd.DataFrame], labels: pd.Series, rule: str = "as run") -> Figure | None:
    """One VideoNIAH accuracy heatmap (depth x length) per config of ``tables``, titled by ``labels``
    (config key -> label), tries judged by scoring ``rule`` (named on the colour bar); None when there is
    no VideoNIAH sample."""
    if not tables:
        return None
    columns = min(3, len(tables))
    rows = math.ceil(len(tables) / columns)
    fig = figure(4.2 * columns, 3.4 * rows)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    for ax, (key, table) in zip(axes, tables.items()):
        image = ax.imshow(table.to_numpy(dtype=float), vmin=0, vmax=100, cmap="RdYlGn", aspect="auto")
        ax.set_xticks(range(table.shape[1]), [f"{length:g}s" for length in table.columns])
        ax.set_yticks(range(table.shape[0]), [_depth_label(depth) for depth in table.index])
        for (i, j), value in np.ndenumerate(table.to_numpy(dtype=float)):
            if not np.isnan(value):
                ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8)
        ax.set_title(labels[key], fontsize=9)
        ax.set_xlabel("haystack length")
        ax.set_ylabel("needle depth")
    for ax in axes[len(tables):]:
        ax.set_axis_off()
    fig.colorbar(image, ax=axes.tolist(), label=f"accuracy (%, 4-try circular, {rule} rule)")
    fig.suptitle("VideoNIAH accuracy by needle depth x haystack length")
    return fig


def save(fig: Figure, out: Path, stem: str) -> list[Path]:
    """Write ``fig`` as ``out/<stem>.png`` and ``.pdf``; return the paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"{stem}.{fmt}" for fmt in FORMATS]
    for path in paths:
        fig.savefig(path, dpi=DPI)
    return paths


def plot_all(results: Results, out: Path) -> list[Path]:
    """Every figure of ``results`` under ``out`` (PNG and PDF); return the paths written."""
    return [path for stem, fig in figures(results).items() for path in save(fig, Path(out), stem)]


def figures(results: Results) -> dict[str, Figure]:
    """Every figure the results allow, by file stem: ``accuracy_vs_flops_<task>``, ``layer_sparsity``
    (main AdaSpark series), ``niah_depth_length`` (dense and the main AdaSpark series); scores under the
    results' scoring rules, named on the figures."""
    table = points(results)
    out = {f"accuracy_vs_flops_{task}": accuracy_vs_flops(table, task, results.rule(task))
           for task in table.dropna(subset=["score", "prefill_reduction"])["task"].unique()}
    table_configs = configs(results)
    compared = table_configs.index[table_configs["series"].isin(["dense", MAIN_SERIES])]
    niah = {key: value for key, value in niah_tables(results).items() if key in compared}
    optional = {"layer_sparsity": layer_sparsity(layer_profile(results)),
                "niah_depth_length": niah_heatmap(niah, table_configs["label"], results.rule("videoniah"))}
    return out | {stem: fig for stem, fig in optional.items() if fig is not None}


def _depth_label(depth: object) -> str:
    """``"0.2-0.4"`` for a depth bin, ``"0.3"`` for a single depth."""
    return f"{max(depth.left, 0):.1f}-{depth.right:.1f}" if isinstance(depth, pd.Interval) else f"{depth:g}"
