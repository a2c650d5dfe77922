"""GPU kernels of AdaSpark (Triton): AdaS-Attn prefill selection and sparse flash attention, and the
sparse FFN's selection and compensated scatter. ``dispatch`` decides when they replace the reference.
``fused``: the fused elementwise ops (RMSNorm, rotary embedding, SiLU-and-multiply) that ``models.fused``
swaps into a model. Every Triton kernel of the package lives here.

Modules other than ``dispatch`` and ``tiles`` import Triton; ``dispatch`` imports them only when used.
"""
