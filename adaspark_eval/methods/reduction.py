"""Visual tokens removed before the language model: what VisionZip and DyCoke share on the runtime.

A method of this kind looks at the prefill's input embeddings (and at what it recorded in the vision
encoder) just before the language model runs, and decides which visual tokens go on (``kept``, (B, S)
bool) and, for some of them, a new embedding (VisionZip's contextual tokens). From layer 0 on a removed
token is no key for any query, at prefill and at every decode step, and is counted as not computed (no
projections, no attention row, no FFN: ``AttentionStats.tokens``, pairs of kept queries and keys only,
``FfnStats.tokens``). The method's own selection work is counted in layer 0's
``AttentionStats.selection_flops``.

Positions: the sequence is not shortened. transformers computes the 3-D rotary positions of the whole
prompt from ``input_ids`` (``get_rope_index``) before the language model runs, so every kept token keeps the
position the stock model gives it, and decode tokens continue after the full prompt (the full prompt's
rope deltas), as in the stock model. Removed tokens stay in the KV cache, never read.

Attention on the kept tokens (``kept_tokens.kept_attention``, on every backend): for one sample without a
padding mask the kept keys and values (and, at prefill, the kept queries) are gathered and attended in one
causal SDPA call; a padded batch takes the reference path (``kept_tokens.pruned_attention``, in query
chunks). A removed row's attention output is zero and its FFN is skipped, so its residual stream stays what
it was; nothing of it reaches a kept token.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adaspark_eval.methods.kept_tokens import kept_attention
from adaspark_eval.sparse.layout import PAD
from adaspark_eval.sparse.stats import AttentionStats

if TYPE_CHECKING:
    from adaspark_eval.sparse.runtime import SparseRuntime

KINDS = ("image", "video")  # the order in which transformers encodes and scatters them


class ReducedRule:
    """The runtime side of a method that removes visual tokens before the language model.

    Subclasses implement ``reduce``: per kind (image, video) of the prefill, the embeddings of its tokens
    in, which stay and their (possibly new) embeddings out. ``kept``: (B, S) bool of the prefill in flight
    (None: nothing removed). The rule's hook on the language model removes itself once the rule is no
    longer its runtime's (replaced by ``configure``, or detached).
    """

    def __init__(self, runtime: SparseRuntime) -> None:
        self.runtime = runtime
        self.kept: Tensor | None = None
        self.selection_flops: Tensor | None = None
        self.inputs: dict[str, Any] = {}
        language_model = runtime.model.model.language_model
        self._handle = language_model.register_forward_pre_hook(self._before_llm, with_kwargs=True)

    def active(self) -> bool:
        """Whether this rule is still its runtime's; a stale rule's hook removes itself."""
        if self.runtime.rule is self and getattr(self.runtime.model, "adaspark", None) is self.runtime:
            return True
        self._handle.remove()
        return False

    def prefill(self, inputs: dict[str, Any]) -> None:
        self.kept, self.selection_flops, self.inputs = None, None, inputs

    def reduce(self, kind: str, embeds: Tensor, grids: Sequence[tuple[int, int, int]]
               ) -> tuple[Tensor, Tensor, list[int]]:
        """One kind's tokens of the batch.

        Args:
            kind: ``image`` or ``video``.
            embeds: (N, D) the input embeddings of that kind's tokens, grid after grid (row-major over the
                batch, as transformers scatters them).
            grids: the LLM grids ``(t, h, w)`` (in tokens) of those ``N`` tokens, in order.
        Returns:
            kept (N,) bool, the embeddings (N, D) (new for tokens the method rewrites), and the FLOPs of the
            selection of each grid.
        """
        raise NotImplementedError

    def _before_llm(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[tuple, dict] | None:
        if not self.active() or self.runtime.layout is None or self.runtime.records[-1].phase != "prefill":
            return None
        embeds, input_ids = kwargs.get("inputs_embeds"), self.inputs.get("input_ids")
        if embeds is None or input_ids is None or embeds.shape[1] != input_ids.shape[1]:
            return None
        input_ids = input_ids.to(embeds.device)
        kept = torch.ones(input_ids.shape, dtype=torch.bool, device=embeds.device)
        flops = torch.zeros(input_ids.shape[0], dtype=torch.long, device=embeds.device)
        embeds = embeds.clone()
        merge = self.runtime.spatial_merge_size
        for kind in KINDS:
            grid_thw = self.inputs.get(f"{kind}_grid_thw")
            mask = input_ids == getattr(self.runtime, f"{kind}_token_id")
            if grid_thw is None or not bool(mask.any()):
                continue
            grids = [(int(t), int(h) // merge, int(w) // merge) for t, h, w in grid_thw.tolist()]
            kind_kept, kind_embeds, grid_flops = self.reduce(kind, embeds[mask], grids)
            kept[mask] = kind_kept
            embeds[mask] = kind_embeds.to(embeds.dtype)
            sample = torch.nonzero(mask)[:, 0]  # the sample of each of the kind's tokens
            starts = torch.tensor([0] + [t * h * w for t, h, w in grids], device=embeds.device).cumsum(0)[:-1]
            flops.index_add_(0, sample[starts], torch.tensor(grid_flops, dtype=torch.long, device=embeds.device))
        self.kept, self.selection_flops = kept, flops  # also when nothing was removed: the selection ran
        return args, {**kwargs, "inputs_embeds": embeds}

    def keys(self, layer: int, key_len: int, device: torch.device) -> Tensor | None:
        """(B, Sk) bool keys the layer reads (the kept prompt tokens, then every generated token); None: all."""
        if self.kept is None:
            return None
        return F.pad(self.kept.to(device), (0, key_len - self.kept.shape[1]), value=True)

    def attend(self, layer: int, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
               scaling: float) -> tuple[Tensor, AttentionStats] | None:
        """Every layer reads the kept keys only (None where nothing was removed)."""
        keys = self.keys(layer, key.shape[2], key.device)
        if keys is None:
            return None
        layout = self.runtime.layout_on(query.device)
        output, stats = kept_attention(query, key, value, attention_mask, keys, layout.unit != PAD, scaling,
                                       self.runtime.config.query_chunk)
        if layer == 0 and self.runtime.records[-1].phase == "prefill":
            stats.selection_flops = self.selection_flops
        return output, stats

    def ffn_keep(self, layer: int, q_len: int) -> Tensor | None:
        """The kept tokens at prefill; decode tokens are kept."""
        if self.kept is None or q_len != self.kept.shape[1]:
            return None
        return self.kept
