"""GPU kernels of AdaSpark (Triton): AdaS-Attn prefill selection and sparse flash attention, and the
sparse FFN's selection and compensated scatter. ``dispatch`` decides when they replace the reference.

Modules other than ``dispatch`` and ``tiles`` import Triton; ``dispatch`` imports them only when used.
"""
