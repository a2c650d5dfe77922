"""What one language-model forward computes once and every layer of it reads.

``SparseRuntime`` makes a new ``ForwardState`` at each call of the language model (a prefill, or one decode
step), so nothing here outlives the forward it was made for, and no cache is global: two runtimes never
share one. Code that runs the kernels outside a model (tests, ``benchmarks/``) may make its own.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any, TypeVar

import torch
from torch import Tensor

from adaspark_eval.sparse.ffn import fixed_ratio_kept, group_ids
from adaspark_eval.sparse.kernels.tiles import CubeTiles, build_tiles
from adaspark_eval.sparse.layout import TokenLayout

if TYPE_CHECKING:
    from adaspark_eval.sparse.ffn_plan import FfnPlan
    from adaspark_eval.sparse.kernels.ffn import GroupMembers
    from adaspark_eval.sparse.kernels.pairs import PairTables

T = TypeVar("T")


class ForwardState:
    """The layout of the sequence in flight and what is derived from it once per forward.

    Derived values are cached by the identity of what they come from (a layer may pass the layout in flight,
    a device copy of it, or a slice of it) and the knobs they depend on; each entry keeps its source alive, so
    an id is never reused within the forward.

    Attributes:
        layout: the layout in flight on the input device; None before the first forward and after detach.
        plans: each layer's ``FfnPlan`` (None: the dense MLP), from its FFN norm's hook to its MLP, which
            takes it out (``pop``).
    """

    def __init__(self, layout: TokenLayout | None) -> None:
        self.layout = layout
        self.plans: dict[int, FfnPlan | None] = {}
        self._cache: dict[tuple[Hashable, ...], tuple[object, Any]] = {}

    def layout_on(self, device: torch.device) -> TokenLayout | None:
        """The layout in flight on ``device``: a model split over several GPUs (``device_map``) reads a copy
        on each of them, made once per forward."""
        layout = self.layout
        if layout is None or layout.unit.device == device:
            return layout
        return self._once("layout_on", layout, lambda: layout.to(device), device)

    def group_ids(self, layout: TokenLayout, group: str) -> Tensor:
        """``ffn.group_ids(layout, group)``: (B, S) long, made once per forward. Every layer's FFN gets the same
        tensor, so the kernels' group lists of it (``group_members``) are built once too."""
        return self._once("group_ids", layout, lambda: group_ids(layout, group), group)

    def fixed_ratio_kept(self, groups: Tensor, ratio: float) -> int:
        """``ffn.fixed_ratio_kept(groups, ratio)`` of ``groups`` (B, S) from ``group_ids``, counted once per
        forward: its host sync happens once, not in every layer."""
        return self._once("fixed_ratio_kept", groups, lambda: fixed_ratio_kept(groups, ratio), ratio)

    def tiles(self, layout: TokenLayout, text_keys: str) -> CubeTiles:
        """``build_tiles(layout, text_keys)`` for the attention kernels, built once for all layers of a forward."""
        return self._once("tiles", layout, lambda: build_tiles(layout, text_keys), text_keys)

    def group_members(self, groups: Tensor) -> GroupMembers:
        """The FFN kernels' ``build_members(groups)`` of ``groups`` (B, S): the sort and its host sync once per
        forward, not twice per layer. Imports Triton (only the kernels ask)."""
        from adaspark_eval.sparse.kernels.ffn import build_members

        return self._once("group_members", groups, lambda: build_members(groups))

    def pair_tables(self, tiles: CubeTiles) -> PairTables:
        """``cube_pair_tables(tiles)`` (``select=cube`` pair counting), built once for all layers and heads of a
        forward. Imports Triton (only the kernels ask)."""
        from adaspark_eval.sparse.kernels.pairs import cube_pair_tables

        return self._once("pair_tables", tiles, lambda: cube_pair_tables(tiles))

    def _once(self, what: str, source: object, make: Callable[[], T], *knobs: Hashable) -> T:
        """``make()`` the first time ``what`` of ``source`` under ``knobs`` is asked in this forward."""
        key = (what, id(source), *knobs)
        if key not in self._cache:
            self._cache[key] = (source, make())  # the source kept alive: its id stays unique
        return self._cache[key][1]
