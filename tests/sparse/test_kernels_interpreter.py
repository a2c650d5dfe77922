"""Runs the kernel tests (``tests/sparse/test_kernels_*.py``, ``tests/models/test_fused.py``) in one fresh
process under Triton's CPU interpreter; see ``interpreted.py`` for why they cannot run in this session's process."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sparse.interpreted import INTERPRETED

HERE = Path(__file__).resolve().parent


@pytest.mark.skipif(INTERPRETED, reason="this session runs the kernel tests itself")
def test_kernels_under_interpreter():
    pytest.importorskip("triton")
    files = sorted(str(p) for p in HERE.glob("test_kernels_*.py") if p.name != Path(__file__).name)
    files.append(str(HERE.parent / "models" / "test_fused.py"))
    command = [sys.executable, "-m", "pytest", "-q", "--noconftest", "-p", "no:cacheprovider", *files]
    result = subprocess.run(command, cwd=HERE.parents[1], env={**os.environ, "TRITON_INTERPRET": "1"},
                            capture_output=True, text=True, timeout=900, check=False)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert " passed" in result.stdout and " failed" not in result.stdout
