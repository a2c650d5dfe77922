"""The selection kernels fit a Hopper GPU's shared memory at every column count the dispatch admits: compiled
for sm_90 on the CPU (no GPU needed), at Qwen2.5-VL-7B's layout (head dim 128, 64-slot cube tiles)."""

import os

import pytest

triton = pytest.importorskip("triton")
pytest.importorskip("triton.backends.nvidia")
if os.environ.get("TRITON_INTERPRET") == "1":
    pytest.skip("the interpreter compiles nothing", allow_module_level=True)

from triton.backends.compiler import GPUTarget  # noqa: E402
from triton.compiler import ASTSource  # noqa: E402

from adaspark_eval.sparse.kernels import select  # noqa: E402
from adaspark_eval.sparse.kernels.dispatch import MAX_COLUMNS  # noqa: E402

HOPPER_SHARED = 232448  # bytes of shared memory one block may use on an H100 or H200 (227 KiB)
POINTERS = {"Q": "*bf16", "Means": "*bf16", "QMeans": "*bf16", "Entropy": "*fp32"}  # the others: int32
ALIGNED_INTS = ("num_units", "stride_b", "stride_h", "stride_s")  # multiples of 16 at these sizes


def shared_bytes(kernel, constants: dict[str, int], options: dict[str, int]) -> int:
    """Shared memory of ``kernel`` compiled for sm_90 with ``constants``, 16-byte aligned pointers (as torch
    allocates them) and the scalar arguments the launch passes."""
    signature, constexprs, attrs = {}, {}, {}
    for index, name in enumerate(kernel.arg_names):
        if name in constants:
            signature[name] = "constexpr"
            constexprs[(index,)] = constants[name]
        elif name in ("p", "ratio", "scale"):
            signature[name] = "fp32"
        else:
            signature[name] = POINTERS.get(name, "*i32") if name[0].isupper() else "i32"
            if name[0].isupper() or name in ALIGNED_INTS:
                attrs[(index,)] = [["tt.divisibility", 16]]
    compiled = triton.compile(ASTSource(kernel, signature, constexprs, attrs), target=GPUTarget("cuda", 90, 32),
                              options=options)
    return compiled.metadata.shared


@pytest.mark.parametrize("mode", ["token", "cube"])
@pytest.mark.parametrize("columns", sorted({1024, MAX_COLUMNS}))
def test_selection_kernel_fits_shared_memory_up_to_the_most_columns_dispatched(mode, columns):
    launch = select.launch_constants(mode, columns, tile=64, dim=128)
    options = {key: launch.pop(key) for key in ("num_warps", "num_stages")}
    kernel = select._select_token_kernel if mode == "token" else select._select_cube_kernel
    used = shared_bytes(kernel, {**launch, "KEEP_ALL": False, "FIXED": False}, options)
    assert used <= HOPPER_SHARED, f"{used} bytes at {columns} columns"
