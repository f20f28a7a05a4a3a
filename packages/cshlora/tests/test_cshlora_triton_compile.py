"""The kernels compile for an H100 (sm_90) with the tiles the launchers would pick, without a GPU.

The interpreter tests (test_cshlora_triton.py) check the arithmetic but not what only the compiler
checks: constexpr globals, dot operand shapes and dtypes, shared memory of the chosen tiles. Triton
compiles ahead of time with its bundled ptxas, so those errors surface here on a CPU-only machine.
"""

import warnings

import pytest

triton = pytest.importorskip("triton")
pytest.importorskip("triton.backends.nvidia")
from cshlora.kernels import launch, load_lowrank  # noqa: E402

H100 = dict(arch=90, smem=232448)  # sm_90, 227 KiB opt-in shared memory per block


@pytest.fixture(scope="module")
def compiled_kernels(tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("TRITON_INTERPRET", raising=False)
        mp.setenv("TRITON_CACHE_DIR", str(tmp_path_factory.mktemp("triton_cache")))
        mp.setenv("TRITON_DEFAULT_FP_FUSION", "1")
        lk = load_lowrank()
        assert not lk.INTERPRETED
        yield lk


def compile_for_h100(kernel, pointer_types, constexprs, num_warps, num_stages=3):
    from triton.backends.compiler import GPUTarget

    target = GPUTarget("cuda", H100["arch"], 32)
    backend = triton.compiler.make_backend(target)

    def arg_type(name):
        if name in constexprs:
            return "constexpr"
        if name.endswith("_ptr"):
            return pointer_types.get(name, "*fp32")
        return "fp32" if name == "scaling" else "i32"

    signature = {name: arg_type(name) for name in kernel.arg_names}
    src = triton.compiler.ASTSource(fn=kernel, signature=signature, constexprs=constexprs)
    options = backend.parse_options({"num_warps": num_warps, "num_stages": num_stages})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        compiled = triton.compile(src, target=target, options=options.__dict__)
    assert compiled.metadata.shared <= H100["smem"], compiled.metadata.shared
    return compiled


@pytest.mark.parametrize(
    "dtype, m, has_ab, has_c",
    [("bf16", 8192, True, False), ("bf16", 512, True, False), ("fp32", 8192, True, False), ("bf16", 8192, False, True)],
)
def test_fused_gemm_compiles(compiled_kernels, dtype, m, has_ab, has_c):
    elt = 2 if dtype == "bf16" else 4
    cfg = launch.gemm_config(elt if has_ab else 4, m, H100["smem"])
    warps, stages = cfg.pop("num_warps"), cfg.pop("num_stages")
    ptr = f"*{dtype}"
    ab = ptr if has_ab else "*fp32"  # without a@b the launcher passes u, v in their place
    compile_for_h100(
        compiled_kernels._matmul_lowrank,
        {"a_ptr": ab, "b_ptr": ab, "bias_ptr": ptr, "c_ptr": ptr, "o_ptr": ptr},
        dict(HAS_AB=has_ab, HAS_BIAS=has_ab, HAS_C=has_c, PREC_AB="tf32", PREC_LR="tf32", RB=32, **cfg),
        warps,
        stages,
    )


@pytest.mark.parametrize("gate, has_var, r", [(1, True, 64), (2, False, 128), (0, False, 8)])
def test_row_kernels_compile(compiled_kernels, gate, has_var, r):
    bm, warps = launch.rows_config(8192)
    rp = max(16, r)
    flags = dict(GATE=gate, HAS_VAR=has_var, PREC="tf32", RP=rp, BM=bm)
    compile_for_h100(compiled_kernels._shrink, {"x_ptr": "*bf16"}, dict(BK=launch.ROWS_BLOCK_K, **flags), warps)
    compile_for_h100(compiled_kernels._bwd_rows, {"dy_ptr": "*bf16"}, dict(BN=launch.ROWS_BLOCK_K, **flags), warps)


@pytest.mark.parametrize("r", [16, 64, 128])
def test_reduction_kernel_compiles(compiled_kernels, r):
    bm, bn, warps = launch.LOWRANK_T_TILE
    compile_for_h100(compiled_kernels._lowrank_t, {"q_ptr": "*bf16"}, dict(PREC="tf32", BM=bm, BN=bn, RP=r), warps)
