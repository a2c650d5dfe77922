"""AdaSpark on a Hugging Face Qwen-VL model (Qwen2.5-VL, Qwen2-VL, Qwen3-VL dense and MoE: ``sparse.families``),
through transformers' own
extension points: an attention function registered as ``"adaspark"`` (with sdpa's mask builder), the
decoder MLPs swapped for ``SparseMLP`` (same parameters, same state-dict keys), a forward pre-hook on
the multimodal model that reads the token layout into a new ``ForwardState`` (``sparse.state``), and one
on each post-attention norm that decides the layer's kept FFN tokens (``FfnPlan``, ``sparse.ffn_plan``).
Nothing of transformers is edited.

    sparse = SparseRuntime.attach(model, AdaSparkConfig(p=0.8))
    model.generate(**inputs)          # sparse prefill, dense decode
    sparse.records[0].layer_summary(...)
    sparse.config = sparse.config.replace(p=0.6)   # no reload
    sparse.detach()                   # the stock model again
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Protocol

import torch
from torch import Tensor, nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.sparse.region import traced_as_one_op
from adaspark_eval.sparse.families import Family, family_of
from adaspark_eval.sparse.attention import AttentionRule, dense_pairs, select_units, sparse_attention
from adaspark_eval.sparse.ffn import FfnRule
from adaspark_eval.sparse.ffn_plan import FfnPlan, plan_ffn
from adaspark_eval.sparse.kernels import dispatch
from adaspark_eval.sparse.layout import TokenLayout, build_layout
from adaspark_eval.sparse.state import ForwardState
from adaspark_eval.sparse.stats import AttentionStats, FfnStats, ForwardRecord

IMPLEMENTATION = "adaspark"
_DENSE_IMPLEMENTATION = "sdpa"


class LayerRule(Protocol):
    """A peer method's say over each layer (``adaspark_eval.methods``), consulted by the runtime before its
    own config. Every hook may answer None: the layer then runs as the config says."""

    def prefill(self, inputs: dict[str, Any]) -> None:
        """A new sequence: the multimodal model's call arguments (``input_ids``, grids, ``attention_mask``)."""

    def attend(self, layer: int, query: Tensor, key: Tensor, value: Tensor, attention_mask: Tensor | None,
               scaling: float) -> tuple[Tensor, AttentionStats] | None:
        """The layer's attention: output (B, Sq, H, D) and its statistics (``dense_pairs`` is set by the
        runtime). query (B, H, Sq, D), key/value (B, Hkv, Sk, D) post-RoPE."""

    def ffn_keep(self, layer: int, q_len: int) -> Tensor | None:
        """(B, Sq) bool, tokens the layer's MLP computes (the others get no FFN update)."""


class SparseRuntime:
    """The AdaSpark controller of one model: its config, its hooks, the state of the forward in flight, and
    records.

    ``records`` holds one ``ForwardRecord`` per language-model call since the last prefill (the
    prefill first, then each decode step). ``state``: the ``ForwardState`` of the latest language-model
    call (its layout, and what every layer shares). ``rule``: a peer method's ``LayerRule`` (set by
    ``adaspark_eval.methods.attach``), or None.
    """

    def __init__(self, model: nn.Module, config: AdaSparkConfig) -> None:
        self.model = model
        self.config = config
        self.family: Family = family_of(model.config)
        self.enabled = True
        self.state = ForwardState(None)
        self.records: list[ForwardRecord] = []
        self.rule: LayerRule | None = None
        self._handles: list[Any] = []
        self._mlps: dict[int, nn.Module] = {}
        text_config = model.config.text_config
        self._previous_implementation = text_config._attn_implementation
        self.num_layers = text_config.num_hidden_layers
        self.video_token_id = model.config.video_token_id
        self.image_token_id = model.config.image_token_id
        self.spatial_merge_size = model.config.vision_config.spatial_merge_size

    @classmethod
    def attach(cls, model: nn.Module, config: AdaSparkConfig | None = None) -> SparseRuntime:
        """Make ``model`` sparse in place; returns its controller (also at ``model.adaspark``)."""
        if getattr(model, "adaspark", None) is not None:
            raise ValueError("AdaSpark is already attached to this model: change `model.adaspark.config` instead")
        register()
        self = cls(model, config or AdaSparkConfig())
        for layer in self.family.decoder_layers(model):
            index = layer.self_attn.layer_idx
            layer.self_attn.adaspark = self
            self._mlps[index] = layer.mlp
            layer.mlp = SparseMLP(layer.mlp, index, self, rows_3d=self.family.is_moe_block(layer.mlp))
            self._handles.append(
                layer.post_attention_layernorm.register_forward_pre_hook(self._ffn_hook(index))
            )
        self._handles.append(model.model.register_forward_pre_hook(self._on_forward, with_kwargs=True))
        model.config.text_config._attn_implementation = IMPLEMENTATION
        model.adaspark = self
        return self

    def detach(self) -> None:
        """Give the stock model back: original MLPs, attention implementation and no hooks."""
        for handle in self._handles:
            handle.remove()
        for layer in self.family.decoder_layers(self.model):
            layer.mlp = self._mlps[layer.self_attn.layer_idx]
            del layer.self_attn.adaspark
        self.model.config.text_config._attn_implementation = self._previous_implementation
        self.model.adaspark = None
        self.layout = None

    @property
    def layout(self) -> TokenLayout | None:
        """The layout of the sequence in flight, on the input device."""
        return self.state.layout

    @layout.setter
    def layout(self, layout: TokenLayout | None) -> None:
        """A new forward (or none, with None): a fresh ``ForwardState`` for ``layout``."""
        self.state = ForwardState(layout)

    def layout_on(self, device: torch.device) -> TokenLayout | None:
        """The layout in flight on ``device`` (``ForwardState.layout_on``)."""
        return self.state.layout_on(device)

    def layer_config(self, layer: int) -> tuple[AttentionRule | None, FfnRule | None]:
        """The rules of ``layer`` for the current forward; None where that module runs dense."""
        cfg = self.config
        if not self.enabled or layer in cfg.dense_layers or self.layout is None:
            return None, None
        decode = self.records[-1].phase == "decode"
        attn = None
        if cfg.attention and (not decode or cfg.sparse_decode):
            attn = AttentionRule(p=cfg.attn_p, fixed_ratio=cfg.fixed_ratio, select=cfg.select,
                                 text_queries=cfg.text_queries, text_keys=cfg.text_keys, decode=decode,
                                 sparse_decode=cfg.sparse_decode)
        ffn = None
        if cfg.ffn and not decode:
            ffn = FfnRule(p=cfg.ffn_p, fixed_ratio=cfg.fixed_ratio, group=cfg.ffn_group, score=cfg.ffn_score,
                          tau=cfg.ffn_tau, compensation=cfg.compensation)
        return attn, ffn

    @property
    def dense_decode(self) -> bool:
        """Whether this runtime's own config runs decode steps dense (no sparse decode attention; the FFN is
        always dense at decode). A peer method's rule may still change them (``Method.dense_decode``)."""
        cfg = self.config
        return not (self.enabled and cfg.attention and cfg.sparse_decode)

    @contextmanager
    def bypassed(self) -> Iterator[None]:
        """Language-model calls inside run as the stock dense model and leave no record (no layout in flight):
        a decode loop that drives the layers itself (``models.graph_decode``) then records its steps with
        ``record_dense_decode``. The state in flight comes back on leaving."""
        state, self.state = self.state, ForwardState(None)
        try:
            yield
        finally:
            self.state = state

    def record_dense_decode(self, kv_len: int) -> None:
        """Append the record a dense decode step of one token per sample over ``kv_len`` keys leaves (the
        hooks' record, for a batch without padding): every layer attends ``kv_len`` keys per query head and
        its FFN computes the one (text) token. Tensors on the CPU (the counter reads them there)."""
        bsz = self.records[0].batch
        heads = self.model.config.text_config.num_attention_heads
        pairs = torch.full((bsz,), kv_len * heads, dtype=torch.long)
        one, none = torch.ones(bsz, dtype=torch.long), torch.zeros(bsz, dtype=torch.long)
        record = ForwardRecord("decode", 1, kv_len, bsz)
        for layer in range(self.num_layers):
            record.attention[layer] = AttentionStats(pairs=pairs, dense_pairs=pairs)
            record.ffn[layer] = FfnStats(tokens=one, dense_tokens=one, visual_kept=none, visual=none)
        self.records.append(record)

    def _on_forward(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        """Pre-hook of the multimodal model: a new ``ForwardState`` for every language-model call, with a new
        layout at prefill and text appended to the last one at decode."""
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        cache = kwargs.get("past_key_values")
        past = cache.get_seq_length() if cache is not None else 0
        if input_ids is None:
            raise ValueError("AdaSpark needs input_ids to find the visual tokens: call the model with input_ids")
        bsz, q_len = input_ids.shape
        if past == 0 or self.layout is None:
            self.state = ForwardState(build_layout(
                input_ids,
                video_token_id=self.video_token_id,
                image_token_id=self.image_token_id,
                cube=self.config.cube,
                spatial_merge_size=self.spatial_merge_size,
                video_grid_thw=kwargs.get("video_grid_thw"),
                image_grid_thw=kwargs.get("image_grid_thw"),
                attention_mask=kwargs.get("attention_mask"),
            ))
            self.records = [ForwardRecord("prefill", q_len, q_len, bsz)]
            if self.rule is not None:
                self.rule.prefill({**kwargs, "input_ids": input_ids})
        else:
            self.state = ForwardState(self.layout.append_text(past + q_len - self.layout.seq_len))
            self.records.append(ForwardRecord("decode", q_len, past + q_len, bsz))

    def _ffn_hook(self, layer: int):
        def hook(module: nn.Module, args: tuple) -> None:
            with on_device(args[0].device):
                self.state.plans[layer] = self._plan_ffn(layer, args[0])

        return hook

    def take_plan(self, layer: int) -> FfnPlan | None:
        """``layer``'s FFN plan for this forward; None: the dense MLP."""
        return self.state.plans.pop(layer, None)

    def _plan_ffn(self, layer: int, residual: Tensor) -> FfnPlan | None:
        """``layer``'s FFN plan from ``residual`` (B, S, D), the stream entering its FFN block, with its ``FfnStats``
        put in the record; None where the MLP runs dense."""
        _, rule = self.layer_config(layer)
        layout = self.layout_on(residual.device)
        if layout is None:
            return None
        pruned = self.rule.ffn_keep(layer, residual.shape[1]) if self.rule is not None else None
        pruned = pruned.to(residual.device) if pruned is not None else None
        plan, self.records[-1].ffn[layer] = plan_ffn(residual, layout, rule, pruned, self.state, self.config.backend)
        return plan


class SparseMLP(nn.Module):
    """A decoder MLP (or routed-expert block) with AdaS-FFN. Holds the original module's children under the
    same names, so parameters and state-dict keys are unchanged; runs the original forward when dense.

    ``rows_3d``: the module takes (B, S, D) only (an MoE block); the kept rows (N, D) are then given as (1, N, D).
    The whole block, router included, runs on the kept tokens only."""

    def __init__(self, mlp: nn.Module, layer: int, runtime: SparseRuntime, rows_3d: bool = False) -> None:
        super().__init__()
        for name, child in mlp.named_children():
            self.add_module(name, child)
        self._dense = (mlp,)  # a tuple: not registered twice
        self.layer = layer
        self._runtime = (runtime,)
        self._rows_3d = rows_3d

    def _rows(self, rows: Tensor) -> Tensor:
        """The original module on ``rows`` (N, D) or (B, S, D)."""
        dense = self._dense[0]
        return dense(rows[None])[0] if self._rows_3d and rows.dim() == 2 else dense(rows)

    def forward(self, hidden: Tensor) -> Tensor:
        runtime, dense = self._runtime[0], self._dense[0]
        plan = runtime.take_plan(self.layer)
        if plan is None:
            return dense(hidden)
        functions = dispatch.ffn_functions(runtime.config.backend, hidden, runtime.state)
        with on_device(hidden.device):
            return functions.sparse_ffn(self._rows if self._rows_3d else dense, hidden, plan.keep, plan.groups, plan.compensation, kept=plan.kept())


def adaspark_attention_forward(
    module: nn.Module,
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attention_mask: Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    **kwargs: Any,
) -> tuple[Tensor, None]:
    """transformers attention function. query (B, H, Sq, D), key/value (B, Hkv, Sk, D) post-RoPE ->
    output (B, Sq, H, D). Runs sdpa unchanged where nothing is pruned. Under JIT tracing (fvcore) the layer's
    attention is one op, counted from the ``AttentionStats`` it records."""
    runtime: SparseRuntime | None = getattr(module, "adaspark", None)
    if runtime is None or runtime.layout is None:
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)
    record = runtime.records[-1]

    def attend(query: Tensor, key: Tensor, value: Tensor) -> Tensor:
        return _recorded_attention(runtime, record, module, query, key, value, attention_mask, dropout, scaling,
                                   **kwargs)

    with on_device(query.device):
        return traced_as_one_op(attend, query, key, value, stats=lambda: record.attention[module.layer_idx]), None


def on_device(device: torch.device) -> AbstractContextManager:
    """Make ``device`` CUDA's current device (Triton launches there) while a layer of a model split over
    several GPUs runs; nothing on the CPU."""
    return torch.cuda.device(device) if device.type == "cuda" else nullcontext()


def _recorded_attention(runtime: SparseRuntime, record: ForwardRecord, module: nn.Module, query: Tensor, key: Tensor,
                        value: Tensor, attention_mask: Tensor | None, dropout: float, scaling: float | None,
                        **kwargs: Any) -> Tensor:
    """The layer's attention, dense or sparse, with its ``AttentionStats`` put in ``record``. Shapes as
    ``adaspark_attention_forward``."""
    bsz, heads, q_len, head_dim = query.shape
    scale = scaling if scaling is not None else head_dim**-0.5
    dense = dense_pairs(attention_mask, q_len, key.shape[2], bsz, heads, query.device)
    planned = runtime.rule.attend(module.layer_idx, query, key, value, attention_mask, scale) if runtime.rule else None
    if planned is not None:
        output, stats = planned
        stats.dense_pairs = dense
        record.attention[module.layer_idx] = stats
        return output
    rule, _ = runtime.layer_config(module.layer_idx)
    layout = runtime.layout_on(query.device)
    if rule is None:
        record.attention[module.layer_idx] = AttentionStats(pairs=dense, dense_pairs=dense)
        return _dense(runtime, module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    fast = dispatch.attention(runtime.config.backend, query, key, value, attention_mask, layout, rule, scale,
                              runtime.state)
    if fast is not None:
        output, stats = fast
        stats.dense_pairs = dense
        record.attention[module.layer_idx] = stats
        return output
    selection = select_units(query, key, layout, rule, scale, runtime.config.query_chunk)
    stats = selection.stats
    stats.dense_pairs = dense
    record.attention[module.layer_idx] = stats
    if not selection.pruned:
        stats.pairs = dense
        return _dense(runtime, module, query, key, value, attention_mask, dropout, scaling, **kwargs)
    output, stats.pairs = sparse_attention(query, key, value, attention_mask, selection, layout.unit, scale)
    return output


def _dense(runtime: SparseRuntime, module: nn.Module, query: Tensor, key: Tensor, value: Tensor,
           attention_mask: Tensor | None, dropout: float, scaling: float | None, **kwargs: Any) -> Tensor:
    """Dense attention of a layer: flash-attn-4 with ``attn_impl=fa4`` where it applies
    (``dispatch.dense_attention``), else transformers' sdpa (``scaling`` passed on as given). Output (B, Sq, H, D)."""
    scale = scaling if scaling is not None else query.shape[-1] ** -0.5
    fast = dispatch.dense_attention(runtime.config.attn_impl, query, key, value, attention_mask, scale)
    if fast is not None:
        return fast
    return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                  **kwargs)[0]


def register() -> None:
    """Register the ``"adaspark"`` attention function and its (sdpa) mask builder with transformers."""
    AttentionInterface.register(IMPLEMENTATION, adaspark_attention_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(IMPLEMENTATION, sdpa_mask)
