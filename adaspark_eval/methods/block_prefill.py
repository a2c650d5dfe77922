"""The per-layer rule shared by the block-sparse prefill peers (XAttention, FlexPrefill): each layer's prefill
attention runs over the key blocks the method keeps; decode steps, a prefill of one block and the FFN stay
dense."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from torch import Tensor

from adaspark_eval.sparse.blocks import attend_blocks, num_blocks
from adaspark_eval.sparse.layout import PAD
from adaspark_eval.sparse.stats import AttentionStats

if TYPE_CHECKING:
    from adaspark_eval.sparse.runtime import SparseRuntime


class BlockPrefillRule:
    """A ``LayerRule`` on ``runtime``'s prefills, in blocks of ``block`` positions; subclasses say which blocks
    are kept (``choose``). ``blocks``: (B, H, Qb, Kb) kept blocks of each layer of the last prefill."""

    def __init__(self, runtime: SparseRuntime, block: int) -> None:
        self.runtime = runtime
        self.block = block
        self.blocks: dict[int, Tensor] = {}

    def prefill(self, inputs: dict[str, Any]) -> None:
        self.blocks = {}

    def choose(self, layer: int, query: Tensor, key: Tensor, real: Tensor,
               scaling: float) -> tuple[Tensor, dict[str, Tensor]]:
        """(B, H, Qb, Kb) kept blocks of ``layer`` and the estimation's costs by ``AttentionStats`` field.

        Args:
            query: (B, H, S, D); key: (B, Hkv, S, D), post-RoPE; real: (S,) positions that are not padding.
        """
        raise NotImplementedError

    def attend(self, layer: int, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
               scaling: float) -> tuple[Tensor, AttentionStats] | None:
        """Block-sparse attention over the kept blocks (None at decode and for a prefill of one block)."""
        if self.runtime.records[-1].phase == "decode" or query.shape[2] != key.shape[2]:
            return None
        if num_blocks(query.shape[2], self.block) < 2:
            return None
        real = self.runtime.layout_on(query.device).unit != PAD
        keep, costs = self.choose(layer, query, key, real, scaling)
        self.blocks[layer] = keep
        output, stats = attend_blocks(query, key, value, attention_mask, keep, self.block,
                                      self.runtime.config.query_chunk, scaling, real, self.runtime.config.backend)
        for name, cost in costs.items():
            setattr(stats, name, cost)
        return output, stats

    def ffn_keep(self, layer: int, q_len: int) -> None:
        return None
