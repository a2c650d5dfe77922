"""Kernel tests run under Triton's CPU interpreter (``TRITON_INTERPRET=1``).

Triton reads the variable once, when it is first imported: ``triton.language``'s own functions are then
built for the interpreter or for the GPU. A test session has usually imported Triton before any kernel
test module (the tiny model's imports do, through transformers and torch), so setting the variable in a
test module comes too late. The kernel tests (``@needs_interpreter``) therefore skip in a session without
the variable, and ``test_kernels_interpreter.py`` runs them all in one fresh process with it set.
"""

from __future__ import annotations

import os

import pytest

INTERPRETED = os.environ.get("TRITON_INTERPRET") == "1"
needs_interpreter = pytest.mark.skipif(not INTERPRETED,
                                       reason="run by test_kernels_interpreter.py under TRITON_INTERPRET=1")
