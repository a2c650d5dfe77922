"""``tl.dot`` that also runs under ``TRITON_INTERPRET=1``.

Triton's interpreter (seen in 3.8) multiplies bf16 operands as their raw 16-bit patterns, so under it
the operands are widened to float32 first: the products of two 16-bit floats are exact in float32 either
way, so the result is the one the GPU's tensor cores give with float32 accumulation.
"""

from __future__ import annotations

import os

import triton
import triton.language as tl

INTERPRETED = tl.constexpr(os.environ.get("TRITON_INTERPRET", "0") == "1")


@triton.jit
def dot(a, b, acc):
    """``acc + a @ b`` with float32 accumulation; a (M, K), b (K, N), acc (M, N) float32."""
    if INTERPRETED:
        result = tl.dot(a.to(tl.float32), b.to(tl.float32), acc)
    else:
        result = tl.dot(a, b, acc)
    return result
