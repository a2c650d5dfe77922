"""The traced cross-check: fvcore's ``FlopCountAnalysis`` over one prefill forward, with our attention
handles, split into the in-run counter's components.

Linear layers, the patch convolution and the vision attention are counted by fvcore from shapes; each LLM
attention layer is one traced op counted from the pairs and selection work it recorded (``region``). The
rotary tables' matmul is left out, as everywhere in this package. A batch of one sample, no padding.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from fvcore.nn import FlopCountAnalysis
from torch import Tensor, nn

from adaspark_eval.config import AdaSparkConfig
from adaspark_eval.flops.analytic import MAC
from adaspark_eval.flops.handles import FVCORE_HANDLES
from adaspark_eval.sparse.runtime import SparseRuntime


class _Prefill(nn.Module):
    """The model called with named tensors given positionally (fvcore traces positional inputs), returning
    the next-token logits only, as generation computes them."""

    def __init__(self, model: nn.Module, names: tuple[str, ...]) -> None:
        super().__init__()
        self.model = model
        self.names = names

    def forward(self, *tensors: Tensor) -> Tensor:
        return self.model(**dict(zip(self.names, tensors)), use_cache=False, logits_to_keep=1).logits


@torch.no_grad()
def count_forward(model: nn.Module, inputs: Mapping[str, Tensor]) -> dict[str, int]:
    """FLOPs (2 per multiply-add) of one prefill forward of ``model`` on ``inputs`` (the processor's output, one
    sample), by component: ``vision_encoder``, ``projections``, ``attention``, ``selection``, ``ffn``, ``lm_head``.

    ``model`` runs as it is: with its AdaSpark config if attached, else dense (a dense AdaSpark is attached
    for the call, which runs the stock attention and MLP and records the pairs).
    """
    if inputs["input_ids"].shape[0] != 1:
        raise ValueError(f"fvcore counts one sample at a time: got a batch of {inputs['input_ids'].shape[0]}; "
                         "pass one sample's inputs")
    with _attached(model):
        wrapper = _Prefill(model, tuple(inputs))
        analysis = FlopCountAnalysis(wrapper, tuple(inputs.values())).set_op_handle(**FVCORE_HANDLES)
        analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False).tracer_warnings("none")
        per_module = analysis.by_module_and_operator()
        name_of = {module: name for name, module in wrapper.named_modules()}

        def macs(module: nn.Module, op: str | None = None) -> int:
            counts = per_module[name_of[module]]
            return sum(counts.values()) if op is None else counts[op]

        layers = model.adaspark.family.decoder_layers(model)
        components = {
            "vision_encoder": macs(model.model.visual),
            "projections": sum(macs(getattr(layer.self_attn, proj)) for layer in layers
                               for proj in ("q_proj", "k_proj", "v_proj", "o_proj")),
            "attention": sum(macs(layer.self_attn, "attention") for layer in layers),
            "selection": sum(macs(layer.self_attn, "selection") for layer in layers),
            "ffn": sum(macs(layer.mlp) for layer in layers),
            "lm_head": macs(model.lm_head),
        }
        unassigned = analysis.total() - sum(components.values()) - macs(model.model.language_model.rotary_emb)
    if unassigned:
        raise RuntimeError(f"fvcore counted {unassigned} multiply-adds outside the known components: "
                           f"{analysis.by_operator()}; add them to a component")
    return {name: MAC * value for name, value in components.items()}


@contextmanager
def _attached(model: nn.Module) -> Iterator[None]:
    """``model`` with AdaSpark attached: as it is, or a dense AdaSpark for the duration."""
    if getattr(model, "adaspark", None) is not None:
        yield
        return
    sparse = SparseRuntime.attach(model, AdaSparkConfig(attention=False, ffn=False))
    try:
        yield
    finally:
        sparse.detach()
