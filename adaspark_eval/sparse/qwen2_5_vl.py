"""The old name of ``sparse.runtime`` (named after its first family; it serves every family now). Importing
from here still works and warns once; import from ``adaspark_eval.sparse.runtime``."""

from __future__ import annotations

import warnings

from adaspark_eval.sparse.runtime import LayerRule, SparseMLP, SparseRuntime, adaspark_attention_forward, register

__all__ = ["LayerRule", "SparseMLP", "SparseRuntime", "adaspark_attention_forward", "register"]

warnings.warn("adaspark_eval.sparse.qwen2_5_vl is now adaspark_eval.sparse.runtime: import from there",
              DeprecationWarning, stacklevel=2)
