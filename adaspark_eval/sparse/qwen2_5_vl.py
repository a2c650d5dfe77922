"""AdaSpark on a Hugging Face ``Qwen2_5_VLForConditionalGeneration``, through transformers' own
extension points: an attention function registered as ``"adaspark"`` (with sdpa's mask builder), the
decoder MLPs swapped for ``SparseMLP`` (same parameters, same state-dict keys), a forward pre-hook on
the multimodal model that reads the token layout, and one on each post-attention norm that decides the
layer's kept FFN tokens (``FfnPlan``). Nothing of transformers is edited.

    sparse = SparseRuntime.attach(model, AdaSparkConfig(p=0.8))
    model.generate(**inputs)          # sparse prefill, dense decode
    sparse.records[0].layer_summary(...)
    sparse.config = sparse.config.replace(p=0.6)   # no reload
    sparse.detach()                   # the stock model again
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from typing import Any, NamedTuple, Protocol

import torch
from torch import Tensor, nn
from transformers import AttentionInterface
from transformers.integrations.sdpa_attention import sdpa_attention_forward
from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.sparse.region import traced_as_one_op
from adaspark_eval.sparse.attention import AttentionRule, dense_pairs, select_units, sparse_attention
from adaspark_eval.sparse.ffn import FfnRule, fixed_ratio_kept, group_ids
from adaspark_eval.sparse.kernels import dispatch
from adaspark_eval.sparse.layout import PAD, TokenLayout, build_layout
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


class FfnPlan(NamedTuple):
    """What a layer's sparse MLP runs, decided from the residual stream before the layer's FFN norm: the
    kept-token count then travels to the host while the GPU still runs the norm, and the MLP starts without
    waiting for the GPU to drain (a host sync per layer otherwise leaves it idle). Under a fixed ratio the
    count follows from the group sizes (``ffn.fixed_ratio_kept``), and no layer waits at all.

    Attributes:
        keep: (B, S) bool tokens the MLP computes; groups: (B, S) their groups (``ffn.group_ids``).
        compensation: what skipped tokens get (``mean`` or ``none``).
        count: () int64 ``keep.sum()``, on the host once ``ready`` has passed (``ready`` None: already there).
    """

    keep: Tensor
    groups: Tensor
    compensation: str
    count: Tensor
    ready: torch.cuda.Event | None

    def kept(self) -> int:
        """Kept tokens (waits for the count's copy only, not for the GPU's later work)."""
        if self.ready is not None:
            self.ready.synchronize()
        return int(self.count)


def count_ahead(keep: Tensor) -> tuple[Tensor, torch.cuda.Event | None]:
    """``keep.sum()`` copied to pinned host memory without blocking, and the event that marks its arrival
    (None on the CPU)."""
    count = keep.sum()
    if count.device.type != "cuda":
        return count, None
    host = torch.empty((), dtype=count.dtype, pin_memory=True)
    host.copy_(count, non_blocking=True)
    ready = torch.cuda.Event()
    ready.record()
    return host, ready


class SparseRuntime:
    """The AdaSpark state of one model: its config, the layout of the sequence in flight, and records.

    ``records`` holds one ``ForwardRecord`` per language-model call since the last prefill (the
    prefill first, then each decode step). ``rule``: a peer method's ``LayerRule`` (set by
    ``adaspark_eval.methods.attach``), or None.
    """

    def __init__(self, model: nn.Module, config: AdaSparkConfig) -> None:
        self.model = model
        self.config = config
        self.enabled = True
        self._layout: TokenLayout | None = None
        self._layout_copies: dict[torch.device, TokenLayout] = {}
        self._groups: dict[tuple[int, str], tuple[TokenLayout, Tensor]] = {}
        self._fixed_kept: dict[tuple[int, float], tuple[Tensor, int]] = {}
        self.records: list[ForwardRecord] = []
        self.rule: LayerRule | None = None
        self._plans: dict[int, FfnPlan | None] = {}
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
        decoder_layers = model.model.language_model.layers
        for layer in decoder_layers:
            index = layer.self_attn.layer_idx
            layer.self_attn.adaspark = self
            self._mlps[index] = layer.mlp
            layer.mlp = SparseMLP(layer.mlp, index, self)
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
        for layer in self.model.model.language_model.layers:
            layer.mlp = self._mlps[layer.self_attn.layer_idx]
            del layer.self_attn.adaspark
        self.model.config.text_config._attn_implementation = self._previous_implementation
        self.model.adaspark = None
        self.layout = None

    @property
    def layout(self) -> TokenLayout | None:
        """The layout of the sequence in flight, on the input device."""
        return self._layout

    @layout.setter
    def layout(self, layout: TokenLayout | None) -> None:
        self._layout, self._layout_copies, self._groups, self._fixed_kept = layout, {}, {}, {}

    def group_ids(self, layout: TokenLayout, group: str) -> Tensor:
        """``ffn.group_ids`` of ``layout`` (the one in flight, or a slice or device copy of it), made once per
        forward: every layer's FFN gets the same tensor, so the kernels build its group lists once."""
        key = (id(layout), group)
        if key not in self._groups:
            self._groups[key] = (layout, group_ids(layout, group))  # the layout kept alive: its id stays unique
        return self._groups[key][1]

    def fixed_ratio_kept(self, groups: Tensor, ratio: float) -> int:
        """``ffn.fixed_ratio_kept`` of ``groups`` (from ``group_ids``), counted once per forward: its host sync
        happens once, not in every layer."""
        key = (id(groups), ratio)
        if key not in self._fixed_kept:
            self._fixed_kept[key] = (groups, fixed_ratio_kept(groups, ratio))  # groups kept alive: the id stays unique
        return self._fixed_kept[key][1]

    def layout_on(self, device: torch.device) -> TokenLayout | None:
        """The layout in flight on ``device``: a model split over several GPUs (``device_map``) reads a copy
        on each of them, made once per forward."""
        layout = self._layout
        if layout is None or layout.unit.device == device:
            return layout
        if device not in self._layout_copies:
            self._layout_copies[device] = layout.to(device)
        return self._layout_copies[device]

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

    def _on_forward(self, module: nn.Module, args: tuple, kwargs: dict) -> None:
        """Pre-hook of the multimodal model: a new layout at prefill, text appended at decode."""
        input_ids = kwargs.get("input_ids", args[0] if args else None)
        cache = kwargs.get("past_key_values")
        past = cache.get_seq_length() if cache is not None else 0
        if input_ids is None:
            raise ValueError("AdaSpark needs input_ids to find the visual tokens: call the model with input_ids")
        bsz, q_len = input_ids.shape
        if past == 0 or self.layout is None:
            self.layout = build_layout(
                input_ids,
                video_token_id=self.video_token_id,
                image_token_id=self.image_token_id,
                cube=self.config.cube,
                spatial_merge_size=self.spatial_merge_size,
                video_grid_thw=kwargs.get("video_grid_thw"),
                image_grid_thw=kwargs.get("image_grid_thw"),
                attention_mask=kwargs.get("attention_mask"),
            )
            self.records = [ForwardRecord("prefill", q_len, q_len, bsz)]
            if self.rule is not None:
                self.rule.prefill({**kwargs, "input_ids": input_ids})
        else:
            self.layout = self.layout.append_text(past + q_len - self.layout.seq_len)
            self.records.append(ForwardRecord("decode", q_len, past + q_len, bsz))

    def _ffn_hook(self, layer: int):
        def hook(module: nn.Module, args: tuple) -> None:
            with on_device(args[0].device):
                self._plans[layer] = self._plan_ffn(layer, args[0])

        return hook

    def take_plan(self, layer: int) -> FfnPlan | None:
        """``layer``'s FFN plan for this forward; None: the dense MLP."""
        return self._plans.pop(layer, None)

    def _plan_ffn(self, layer: int, residual: Tensor) -> FfnPlan | None:
        """The kept tokens of ``layer``'s FFN from ``residual`` (B, S, D), the stream entering its FFN block, and
        their ``FfnStats``; None where the MLP runs dense."""
        _, rule = self.layer_config(layer)
        layout = self.layout_on(residual.device)
        if layout is None:
            return None
        q_len = residual.shape[1]
        layout_now = _query_slice(layout, q_len)
        valid = layout_now.unit != PAD
        visual = layout_now.is_visual
        pruned = self.rule.ffn_keep(layer, q_len) if self.rule is not None else None
        pruned = pruned.to(residual.device) if pruned is not None else None
        if rule is None:
            keep = torch.ones_like(visual) if pruned is None else pruned
        else:
            groups = self.group_ids(layout_now, rule.group)
            keep = dispatch.ffn_functions(self.config.backend, residual).keep_tokens(residual, groups, rule)
        self.records[-1].ffn[layer] = FfnStats(
            tokens=(keep & valid).sum(dim=1),
            dense_tokens=valid.sum(dim=1),
            visual_kept=(keep & visual).sum(dim=1),
            visual=visual.sum(dim=1),
        )
        if rule is None and pruned is None:
            return None
        if rule is None:  # tokens a method pruned: no FFN update
            groups, compensation = self.group_ids(layout_now, "cube"), "none"
        else:
            compensation = rule.compensation
        if rule is not None and rule.fixed_ratio is not None:  # the count follows from the groups: no sync
            return FfnPlan(keep, groups, compensation, torch.tensor(self.fixed_ratio_kept(groups, rule.fixed_ratio)),
                           None)
        return FfnPlan(keep, groups, compensation, *count_ahead(keep))


class SparseMLP(nn.Module):
    """A decoder MLP with AdaS-FFN. Holds the original MLP's children under the same names, so
    parameters and state-dict keys are unchanged; runs the original forward when dense."""

    def __init__(self, mlp: nn.Module, layer: int, runtime: SparseRuntime) -> None:
        super().__init__()
        for name, child in mlp.named_children():
            self.add_module(name, child)
        self._dense = (mlp,)  # a tuple: not registered twice
        self.layer = layer
        self._runtime = (runtime,)

    def forward(self, hidden: Tensor) -> Tensor:
        runtime, dense = self._runtime[0], self._dense[0]
        plan = runtime.take_plan(self.layer)
        if plan is None:
            return dense(hidden)
        functions = dispatch.ffn_functions(runtime.config.backend, hidden)
        with on_device(hidden.device):
            return functions.sparse_ffn(dense, hidden, plan.keep, plan.groups, plan.compensation, kept=plan.kept())


def _query_slice(layout: TokenLayout, q_len: int) -> TokenLayout:
    """The layout restricted to the newest ``q_len`` positions (unit tables are kept whole)."""
    if q_len == layout.seq_len:
        return layout
    return TokenLayout(
        unit=layout.unit[:, -q_len:], is_visual=layout.is_visual[:, -q_len:], grid=layout.grid[:, -q_len:],
        unit_first=layout.unit_first, unit_last=layout.unit_last, unit_is_visual=layout.unit_is_visual,
        unit_size=layout.unit_size, cube_volume=layout.cube_volume,
    )


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
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)[0]
    fast = dispatch.attention(runtime.config.backend, query, key, value, attention_mask, layout, rule, scale)
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
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout,
                                      scaling=scaling, **kwargs)[0]
    output, stats.pairs = sparse_attention(query, key, value, attention_mask, selection, layout.unit, scale)
    return output


def register() -> None:
    """Register the ``"adaspark"`` attention function and its (sdpa) mask builder with transformers."""
    AttentionInterface.register(IMPLEMENTATION, adaspark_attention_forward)
    ALL_MASK_ATTENTION_FUNCTIONS.register(IMPLEMENTATION, sdpa_mask)
