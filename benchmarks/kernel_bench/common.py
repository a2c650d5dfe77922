"""What the kernel benchmarks (``benchmarks/bench_kernels.py``) share: Qwen2.5-VL-7B's shapes, the benchmark
sequence and its layout, structured random inputs, the attention and FFN rules, a random MLP, the prefill
model's config, and the timer.

A sequence of ``L`` tokens is 192 text tokens, one video of ``(L - 256) / 256`` temporal groups of 16 x 16
LLM tokens (448 x 448 frames) and 64 text tokens; cubes are 4 x 4 x 4. In Qwen3-VL's form (``timestamps``)
each temporal group is its own ``<t seconds><|vision_start|>...<|vision_end|>`` (6 timestamp tokens), so the
same ``L`` holds fewer groups and the text after the video fills the rest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
import transformers
from torch import Tensor
from triton.testing import do_bench

from adaspark_eval.flops.dims import known_config
from adaspark_eval.sparse.families import family_of
from adaspark_eval.sparse import ffn as reference_ffn
from adaspark_eval.sparse.attention import AttentionRule
from adaspark_eval.sparse.layout import TokenLayout, build_layout

HEADS, KV_HEADS, HEAD_DIM = 28, 4, 128
HIDDEN, INTERMEDIATE = 3584, 18944
VIDEO_TOKEN, VISION_START, VISION_END = 151656, 151652, 151653
PREFIX, SUFFIX, FRAME = 192, 64, 16  # text tokens before / after the video; LLM tokens per frame side
CUBE = (4, 4, 4)
DENSITIES = (0.5, 0.25, 0.1)
LONGEST = PREFIX + SUFFIX + 511 * FRAME * FRAME  # 131,072 tokens: 2,048 candidate cubes
STAMP = 6  # text tokens of a "<t seconds>" timestamp (Qwen3-VL)
PREFILL_MODELS = ("qwen2.5-vl-7b", "qwen3-vl-8b")  # the whole-prefill section's architectures


def median_ms(fn: Callable[[], Any], rep: int = 300) -> float:
    """Median time of ``fn`` in ms (do_bench: warm-up, CUDA events, L2 flushed between runs)."""
    return float(do_bench(fn, warmup=50, rep=rep, return_mode="median"))


def video_inputs(tokens: int, device: torch.device, timestamps: bool = False) -> tuple[Tensor, Tensor]:
    """input_ids (1, tokens) and video_grid_thw (1, 3) of the benchmark sequence (see the module doc);
    ``timestamps``: Qwen3-VL's form, a timestamp and vision markers around each temporal group."""
    groups = (tokens - PREFIX - SUFFIX) // (FRAME * FRAME)
    if groups * FRAME * FRAME + PREFIX + SUFFIX != tokens:
        raise SystemExit(f"--lengths: {tokens} - {PREFIX + SUFFIX} must be a multiple of {FRAME * FRAME}")
    gen = torch.Generator().manual_seed(tokens)
    text = torch.randint(0, 150000, (PREFIX + SUFFIX,), generator=gen)
    if timestamps:
        groups = (tokens - PREFIX - SUFFIX) // (FRAME * FRAME + STAMP + 2)
        stamps = torch.randint(0, 150000, (groups, STAMP), generator=gen)
        video = torch.cat([torch.cat([stamps[g], torch.tensor([VISION_START]), torch.full((FRAME * FRAME,), VIDEO_TOKEN),
                                      torch.tensor([VISION_END])]) for g in range(groups)])
        rest = torch.randint(0, 150000, (tokens - PREFIX - video.numel(),), generator=gen)
        ids = torch.cat([text[:PREFIX], video, rest])
        return ids[None].to(device), torch.tensor([[groups, 2 * FRAME, 2 * FRAME]], device=device)
    ids = torch.cat([text[: PREFIX - 1], torch.tensor([VISION_START]),
                     torch.full((groups * FRAME * FRAME,), VIDEO_TOKEN), torch.tensor([VISION_END]),
                     text[PREFIX - 1 : -2]])
    return ids[None].to(device), torch.tensor([[groups, 2 * FRAME, 2 * FRAME]], device=device)


def bench_layout(tokens: int, device: torch.device) -> TokenLayout:
    ids, grid = video_inputs(tokens, device)
    return build_layout(ids, video_token_id=VIDEO_TOKEN, image_token_id=-1, cube=CUBE, video_grid_thw=grid)


def cube_structured(layout: TokenLayout, heads: int, dim: int, noise: float, dtype: torch.dtype,
                    gen: torch.Generator) -> Tensor:
    """(1, heads, S, dim): a random vector per (head, unit) plus ``noise`` times a random vector per token, so
    that tokens of one cube are alike, as in real video."""
    device = layout.unit.device
    base = torch.randn(1, heads, layout.num_units, dim, device=device, generator=gen)
    token = torch.randn(1, heads, layout.seq_len, dim, device=device, generator=gen)
    return (base[:, :, layout.unit[0].clamp_min(0)] + noise * token).to(dtype)


def qkv(layout: TokenLayout, heads: int, kv_heads: int, dim: int, dtype: torch.dtype) -> tuple[Tensor, ...]:
    gen = torch.Generator(device=layout.unit.device).manual_seed(0)
    q = cube_structured(layout, heads, dim, 0.5, dtype, gen)
    k = cube_structured(layout, kv_heads, dim, 1.0, dtype, gen)
    v = torch.randn(1, kv_heads, layout.seq_len, dim, device=layout.unit.device, generator=gen).to(dtype)
    return q, k, v


def rule_of(select: str, p: float, fixed_ratio: float | None) -> AttentionRule:
    return AttentionRule(p=p, fixed_ratio=fixed_ratio, select=select, text_queries="dense", text_keys="all",
                         decode=False, sparse_decode=False)


def relative_error(a: Tensor, b: Tensor) -> float:
    a, b = a.double(), b.double()
    return float((a - b).norm() / b.norm())


def random_mlp(device: torch.device, scale: float) -> Callable[[Tensor], Tensor]:
    """A Qwen2 MLP (gate/up 3584 -> 18944, SiLU, down) with random bf16 weights."""
    gen = torch.Generator(device=device).manual_seed(2)
    gate, up = (torch.randn(INTERMEDIATE, HIDDEN, device=device, generator=gen).mul_(scale).bfloat16()
                for _ in range(2))
    down = torch.randn(HIDDEN, INTERMEDIATE, device=device, generator=gen).mul_(scale).bfloat16()
    return lambda x: F.linear(F.silu(F.linear(x, gate)) * F.linear(x, up), down)


def ffn_rule(p: float, fixed_ratio: float | None) -> reference_ffn.FfnRule:
    return reference_ffn.FfnRule(p=p, fixed_ratio=fixed_ratio, group="cube", score="l1", tau=1.0,
                                 compensation="mean")


def prefill_config(name: str, toy: bool = False) -> transformers.PreTrainedConfig:
    """The config of known model ``name`` for a prefill benchmark: a 1-block vision tower (unused: the
    benchmark sequence has no pixels, so neither are Qwen3-VL's DeepStack additions), 3D RoPE as the real
    checkpoints (Qwen3-VL's interleaved), sdpa attention. ``toy``: the same architecture 2 layers deep and
    narrow (hidden 128, head dim 32), for a CPU test of the section."""
    config = known_config(name)
    family = family_of(config)
    text = config.text_config
    config.vision_config.depth = 1
    if family.window_attention:
        config.vision_config.fullatt_block_indexes = [0]
        text.rope_parameters = {"rope_type": "default", "rope_theta": 1e6, "mrope_section": [16, 24, 24]}
    else:  # Qwen3-VL
        config.vision_config.deepstack_visual_indexes = []
        text.rope_parameters = {"rope_type": "default", "rope_theta": 5e6, "mrope_section": [24, 20, 20],
                                "mrope_interleaved": True}
    if toy:
        text.hidden_size, text.num_hidden_layers, text.intermediate_size = 128, 2, 256
        text.num_attention_heads, text.num_key_value_heads, text.head_dim = 4, 2, 32
        text.rope_parameters = {**text.rope_parameters, "mrope_section": [6, 5, 5] if family.deepstack else [4, 6, 6]}
        config.vision_config.out_hidden_size = 128
        if family.window_attention:
            config.vision_config.hidden_size, config.vision_config.intermediate_size = 32, 64
    text.max_position_embeddings = 131072
    config._attn_implementation = "sdpa"
    return config


def build_prefill_model(name: str, device: torch.device, toy: bool = False) -> torch.nn.Module:
    """The architecture of known model ``name`` with random bf16 weights on ``device`` (``prefill_config``);
    ``toy``: float32 weights (faster on a CPU)."""
    config = prefill_config(name, toy)
    torch.manual_seed(0)
    with torch.device(device):
        model = getattr(transformers, family_of(config).model_class)._from_config(
            config, dtype=torch.float32 if toy else torch.bfloat16)
    return model.eval()


def build_7b(device: torch.device) -> transformers.Qwen2_5_VLForConditionalGeneration:
    """Qwen2.5-VL-7B's architecture with random bf16 weights on ``device`` (``prefill_config``)."""
    return build_prefill_model("qwen2.5-vl-7b", device)
