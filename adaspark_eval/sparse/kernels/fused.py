"""Fused elementwise kernels for Qwen2.5-VL's language model: RMSNorm, rotary embedding, SiLU-and-multiply.

Transformers runs each of these as several PyTorch ops, each a full pass over a (tokens, width) tensor
(RMSNorm alone: widen to float32, square, mean, scale, narrow, weight); at 64k tokens they are about a tenth
of a 7B prefill, the same in the dense model and in AdaSpark, so they dilute what sparsity saves. Each kernel
here does one read and one write, and rounds where transformers' eager ops round, so results equal eager
mode up to float32 summation order and ``exp``/``rsqrt`` rounding (a last-bit difference in a few elements).

The launch functions take tensors on a CUDA device, or on the CPU under ``TRITON_INTERPRET=1`` (the tests);
``models.fused`` decides where they replace transformers' ops.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch import Tensor

RMS_NORM_WARPS = 8  # warps per RMSNorm program (one row of the hidden states each)
ROWS_PER_PROGRAM = 4  # SiLU-and-multiply: rows of the (tokens, intermediate) activations per program
SILU_MUL_BLOCK = 1024  # SiLU-and-multiply: most columns per program


@triton.jit
def _rounded(x, dtype: tl.constexpr):
    """float32 ``x`` rounded to ``dtype`` (to nearest, ties to even) and widened back. For bfloat16 by integer
    arithmetic: a plain narrow-and-widen lets the compiler fuse the product before it with the sum after it
    into one bfloat16 multiply-add, which rounds once where eager mode rounds twice (seen on an H200)."""
    if dtype == tl.bfloat16:
        bits = x.to(tl.uint32, bitcast=True)
        out = ((bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000).to(tl.float32, bitcast=True)
    else:
        out = x.to(dtype).to(tl.float32)
    return out


@triton.jit
def _rms_norm_kernel(X, W, Y, stride_x, stride_y, width, eps, BLOCK: tl.constexpr):
    """Row ``program_id`` of ``Y = W * narrow(X * rsqrt(mean(X^2) + eps))`` (X: (rows, width))."""
    row = tl.program_id(0).to(tl.int64)
    cols = tl.arange(0, BLOCK)
    inside = cols < width
    x = tl.load(X + row * stride_x + cols, mask=inside, other=0.0).to(tl.float32)
    normed = _rounded(x / tl.sqrt(tl.sum(x * x, 0) / width + eps), X.dtype.element_ty)  # eager narrows, then weighs
    w = tl.load(W + cols, mask=inside, other=0.0)
    tl.store(Y + row * stride_y + cols, (w.to(tl.float32) * normed).to(Y.dtype.element_ty), mask=inside)


def rms_norm(x: Tensor, weight: Tensor, eps: float) -> Tensor:
    """``Qwen2_5_VLRMSNorm`` of ``x`` in one pass.

    Args:
        x: (..., width); weight: (width,).
    Returns:
        (..., width), contiguous, in the dtype eager mode gives (``weight``'s and ``x``'s promoted).
    """
    rows = x.reshape(-1, x.shape[-1]).contiguous()  # a no-op for hidden states
    out = torch.empty(rows.shape, dtype=torch.promote_types(weight.dtype, x.dtype), device=x.device)
    _rms_norm_kernel[(rows.shape[0],)](rows, weight, out, rows.stride(0), out.stride(0), rows.shape[1], eps,
                                       BLOCK=triton.next_power_of_2(rows.shape[1]), num_warps=RMS_NORM_WARPS)
    return out.view(x.shape)


@triton.jit
def _rotary_kernel(X, Y, Cos, Sin, heads, seq, sx_b, sx_h, sx_s, sy_b, sy_h, sy_s, sc_b, sc_s,
                   HEADS: tl.constexpr, HALF: tl.constexpr):
    """Token ``program_id`` (b, s), every head: ``Y = X cos + rotate_half(X) sin``, each product and the sum
    rounded to X's dtype as eager mode rounds them."""
    token = tl.program_id(0)
    b = (token // seq).to(tl.int64)
    s = (token % seq).to(tl.int64)
    h = tl.arange(0, HEADS)[:, None]
    d = tl.arange(0, HALF)[None, :]
    inside = h < heads
    x = X + b * sx_b + s * sx_s + h * sx_h + d
    x1 = tl.load(x, mask=inside, other=0.0).to(tl.float32)
    x2 = tl.load(x + HALF, mask=inside, other=0.0).to(tl.float32)
    trig = b * sc_b + s * sc_s + d
    c1, c2 = tl.load(Cos + trig).to(tl.float32), tl.load(Cos + trig + HALF).to(tl.float32)
    s1, s2 = tl.load(Sin + trig).to(tl.float32), tl.load(Sin + trig + HALF).to(tl.float32)
    dtype = Y.dtype.element_ty
    y1 = _rounded(x1 * c1, dtype) + _rounded(-x2 * s1, dtype)
    y2 = _rounded(x2 * c2, dtype) + _rounded(x1 * s2, dtype)
    y = Y + b * sy_b + s * sy_s + h * sy_h + d
    tl.store(y, y1.to(dtype), mask=inside)
    tl.store(y + HALF, y2.to(dtype), mask=inside)


def rotary_embedding(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotary embedding of ``x`` as transformers' ``apply_rotary_pos_emb`` gives it for one of its two inputs.

    Args:
        x: (B, H, S, D) queries or keys, any strides but the last dim contiguous.
        cos, sin: (B or 1, S, D).
    Returns:
        (B, H, S, D) in ``x``'s dtype, laid out as ``torch.empty_like(x)``.
    """
    bsz, heads, seq, dim = x.shape
    out = torch.empty_like(x)
    cos, sin = (t.expand(bsz, -1, -1).contiguous() for t in (cos, sin))
    _rotary_kernel[(bsz * seq,)](x, out, cos, sin, heads, seq, *x.stride()[:3], *out.stride()[:3], cos.stride(0),
                                 cos.stride(1), HEADS=triton.next_power_of_2(heads), HALF=dim // 2)
    return out


@triton.jit
def _silu_mul_kernel(Gate, Up, Out, rows, width, stride_g, stride_u, stride_o, ROWS: tl.constexpr,
                     BLOCK: tl.constexpr):
    """``narrow(silu(gate)) * up``, rounded as eager mode rounds, for ``ROWS`` rows x ``BLOCK`` columns."""
    row = (tl.program_id(0) * ROWS + tl.arange(0, ROWS)).to(tl.int64)[:, None]
    col = tl.program_id(1) * BLOCK + tl.arange(0, BLOCK)[None, :]
    inside = (row < rows) & (col < width)
    gate = tl.load(Gate + row * stride_g + col, mask=inside, other=0.0).to(tl.float32)
    up = tl.load(Up + row * stride_u + col, mask=inside, other=0.0).to(tl.float32)
    dtype = Out.dtype.element_ty
    silu = _rounded(gate / (1.0 + tl.exp(-gate)), dtype)
    tl.store(Out + row * stride_o + col, (silu * up).to(dtype), mask=inside)


def silu_mul(gate: Tensor, up: Tensor) -> Tensor:
    """``silu(gate) * up`` in one pass.

    Args:
        gate, up: (..., width), one shape.
    Returns:
        (..., width), contiguous, in ``gate``'s dtype.
    """
    g, u = (x.reshape(-1, x.shape[-1]).contiguous() for x in (gate, up))  # no-ops for projections
    out = torch.empty(g.shape, dtype=gate.dtype, device=gate.device)
    block = min(SILU_MUL_BLOCK, triton.next_power_of_2(g.shape[1]))
    grid = (triton.cdiv(g.shape[0], ROWS_PER_PROGRAM), triton.cdiv(g.shape[1], block))
    _silu_mul_kernel[grid](g, u, out, g.shape[0], g.shape[1], g.stride(0), u.stride(0), out.stride(0),
                           ROWS=ROWS_PER_PROGRAM, BLOCK=block)
    return out.view(gate.shape)
