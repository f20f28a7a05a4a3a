"""Host-side launchers of the CS-HLoRA kernels: block sizes, grids, output buffers.

Every launcher takes its outputs as optional pre-allocated buffers (``out=`` ...) and allocates
missing ones through :func:`alloc`, so tests can poison every buffer with NaN (by passing their own,
or by patching ``alloc``) and check that each element was written. Inputs may be any strided 2-D
views: strides go to the kernels, nothing is made contiguous here. Arguments that a constexpr flag
switches off still need a valid pointer, so some other tensor of the call stands in for them.
"""

from __future__ import annotations

import functools

import torch

from .loader import load_lowrank

# Block edge used under the interpreter (CPU tests): small enough that test shapes span several
# ragged blocks, large enough that numpy-level interpretation stays quick. Tests may patch it.
INTERPRET_BLOCK = 32
# Rank chunk of the expand dot; a multiple of 16 (tl.dot's minimum) that keeps tiles in registers.
RANK_CHUNK = 32


def alloc(shape, dtype, device) -> torch.Tensor:
    """Every buffer the kernels write comes from here (a hook for poisoned-output tests)."""
    return torch.empty(shape, dtype=dtype, device=device)


def _pow2(n: int, lo: int = 16) -> int:
    return max(lo, 1 << max(0, (n - 1).bit_length()))


def _prec(*tensors: torch.Tensor) -> str:
    """tl.dot precision for fp32 operands: TF32 on tensor cores where torch would use it, else IEEE.

    Half-precision layers get TF32 for their fp32 adapter products (still finer than the bf16 the
    output is rounded to); fp32 layers follow ``torch.backends.cuda.matmul.allow_tf32`` like F.linear.
    """
    if any(t.device.type == "cuda" and t.dtype in (torch.float16, torch.bfloat16) for t in tensors):
        return "tf32"
    return "tf32" if torch.backends.cuda.matmul.allow_tf32 and tensors[0].device.type == "cuda" else "ieee"


# GPU tile choices. Untuned defaults (no GPU was available when they were written): running
# tools/bench_cshlora_kernels.py on the target GPU is how they get checked and tuned.
ROWS_BLOCK_K = 64  # reduction chunk of the row kernels (_shrink over d_in, _bwd_rows over d_out)
# (BM, BN, BK, warps, stages) for the fused GEMM, largest first; the first that fits shared memory wins.
GEMM_TILES_HALF = ((128, 256, 64, 8, 3), (128, 128, 64, 8, 3), (128, 128, 32, 4, 4), (64, 128, 32, 4, 3))
GEMM_TILES_FP32 = ((128, 128, 32, 8, 3), (128, 64, 32, 4, 3), (64, 64, 32, 4, 3))
LOWRANK_T_TILE = (64, 128, 4)  # (rows per step, columns per program, warps) of the split-M reduction


def rows_config(m: int) -> tuple[int, int]:
    """(rows per program, warps) for the memory-bound row kernels: enough programs to fill a GPU."""
    return (64, 4) if m >= 64 * 256 else (32, 4)


def gemm_config(elt_size: int, m: int, smem_bytes: int) -> dict:
    """Tiles of the fused GEMM for operands of ``elt_size`` bytes, whose pipeline fits ``smem_bytes``."""
    tiles = GEMM_TILES_HALF if elt_size <= 2 else GEMM_TILES_FP32
    if m < 1024:  # short inputs: smaller row tiles keep more programs in flight
        tiles = tuple(t for t in tiles if t[0] == 64) or tiles[-1:]
    fits = [t for t in tiles if t[4] * (t[0] * t[2] + t[2] * t[1]) * elt_size <= smem_bytes] or tiles[-1:]
    BM, BN, BK, warps, stages = fits[0]
    return dict(BM=BM, BN=BN, BK=BK, GROUP_M=8, num_warps=warps, num_stages=stages)


@functools.cache
def device_limits(device_index: int) -> tuple[int, int]:
    """(SM count, opt-in shared memory per block in bytes) of a CUDA device."""
    props = torch.cuda.get_device_properties(device_index)
    return props.multi_processor_count, getattr(props, "shared_memory_per_block_optin", 99 * 1024)


def _limits(t: torch.Tensor) -> tuple[int, int]:
    return device_limits(t.device.index if t.device.index is not None else torch.cuda.current_device())


def shrink(x, A, scaling, gate_mode, s=None, var=None, tau=None, sharp=None, table=None, xa=None, u=None):
    """``xa = x A^T`` and ``u = scaling * gate * xa``, both fp32 ``[M, R]``."""
    lk = load_lowrank()
    M, K = x.shape
    R = A.shape[0]
    xa = alloc((M, R), torch.float32, x.device) if xa is None else xa
    u = alloc((M, R), torch.float32, x.device) if u is None else u
    assert xa.is_contiguous() and u.is_contiguous()
    g = table if table is not None else xa
    if lk.INTERPRETED:
        BM = BK = INTERPRET_BLOCK
        warps = 4
    else:
        (BM, warps), BK = rows_config(M), ROWS_BLOCK_K
    lk._shrink[(triton_cdiv(M, BM),)](
        x, A, s if s is not None else xa, var if var is not None else xa, tau if tau is not None else A,
        sharp if sharp is not None else A, g, xa, u,
        M, K, R, x.stride(0), x.stride(1), A.stride(0), A.stride(1), g.stride(0), g.stride(1), float(scaling),
        GATE=gate_mode, HAS_VAR=var is not None, PREC=_prec(x, A), BM=BM, BK=BK, RP=_pow2(R), num_warps=warps,
    )  # fmt: skip
    return xa, u


def matmul_lowrank(a, b, u, v, bias=None, c=None, out=None, out_dtype=None):
    """``out = a @ b + u @ v (+ bias) (+ c)``; ``a``/``b`` may be None (then ``c`` is usually given).

    ``out`` may be ``c`` itself: every element is read and written by the same program.
    """
    lk = load_lowrank()
    M, R = u.shape
    N = v.shape[1]
    K = a.shape[1] if a is not None else 0
    if a is not None:
        assert a.dtype == b.dtype, (a.dtype, b.dtype)
    if out is None:
        dtype = out_dtype or (a.dtype if a is not None else c.dtype)
        out = alloc((M, N), dtype, u.device)
    a_, b_ = (a, b) if a is not None else (u, v)
    c_ = c if c is not None else out
    if lk.INTERPRETED:
        cfg = dict(BM=INTERPRET_BLOCK, BN=INTERPRET_BLOCK, BK=INTERPRET_BLOCK, GROUP_M=4, num_warps=4, num_stages=1)
    else:
        cfg = gemm_config(a_.element_size() if a is not None else 4, M, _limits(u)[1])
    grid = (triton_cdiv(M, cfg["BM"]) * triton_cdiv(N, cfg["BN"]),)
    lk._matmul_lowrank[grid](
        a_, b_, u, v, bias if bias is not None else out, c_, out,
        M, N, K, R, a_.stride(0), a_.stride(1), b_.stride(0), b_.stride(1), u.stride(0), u.stride(1),
        v.stride(0), v.stride(1), c_.stride(0), c_.stride(1), out.stride(0), out.stride(1),
        HAS_AB=a is not None, HAS_BIAS=bias is not None, HAS_C=c is not None,
        PREC_AB=_prec(a_) if a is not None else "ieee", PREC_LR=_prec(u, *([a] if a is not None else [c_])),
        RB=min(RANK_CHUNK, _pow2(R)), **cfg,
    )  # fmt: skip
    return out


def bwd_rows(dy, B, xa, scaling, gate_mode, s=None, var=None, tau=None, sharp=None, table=None, out=None):
    """Row-wise backward: returns ``dict(dxa, ds, dvar, dtau, dsharp, dtable)`` (absent ones None).

    ``dtau``/``dsharp`` come back summed over row blocks (fp32). ``out`` may map the same names to
    pre-allocated buffers (``dtau``/``dsharp`` there are the per-block partials, ``[blocks, R]``).
    """
    lk = load_lowrank()
    M, N = dy.shape
    R = B.shape[1]
    if lk.INTERPRETED:
        BM = BN = INTERPRET_BLOCK
        warps = 4
    else:
        (BM, warps), BN = rows_config(M), ROWS_BLOCK_K
    blocks = triton_cdiv(M, BM)
    out = dict(out or {})
    want = {
        "dxa": ((M, R), True),
        "ds": ((M,), gate_mode == 1),
        "dvar": ((M,), gate_mode == 1 and var is not None),
        "dtau": ((blocks, R), gate_mode == 1),
        "dsharp": ((blocks, R), gate_mode == 1),
        "dtable": ((M, R), gate_mode == 2),
    }
    for name, (shape, needed) in want.items():
        if needed and out.get(name) is None:
            out[name] = alloc(shape, torch.float32, dy.device)
        elif not needed:
            out[name] = None
    dxa = out["dxa"]
    d = lambda name: out[name] if out[name] is not None else dxa  # dummy pointers for switched-off outputs
    g = table if table is not None else xa
    lk._bwd_rows[(blocks,)](
        dy, B, xa, s if s is not None else xa, var if var is not None else xa, tau if tau is not None else B,
        sharp if sharp is not None else B, g, dxa, d("dtable"), d("ds"), d("dvar"), d("dtau"), d("dsharp"),
        M, N, R, dy.stride(0), dy.stride(1), B.stride(0), B.stride(1), g.stride(0), g.stride(1), float(scaling),
        GATE=gate_mode, HAS_VAR=var is not None, PREC=_prec(dy, B), BM=BM, BN=BN, RP=_pow2(R), num_warps=warps,
    )  # fmt: skip
    if gate_mode == 1:  # few block partials: sum them here, in a fixed order (deterministic)
        out["dtau"], out["dsharp"] = out["dtau"].sum(0), out["dsharp"].sum(0)
    return out


def lowrank_t(p, q, transpose_out=False, partials=None):
    """``P^T Q`` (fp32 ``[R, NC]``, or ``[NC, R]`` with ``transpose_out``) for ``P [M, R]``, ``Q [M, NC]``."""
    lk = load_lowrank()
    M, R = p.shape
    NC = q.shape[1]
    if lk.INTERPRETED:
        BM = BN = INTERPRET_BLOCK
        splits, warps = min(3, triton_cdiv(M, BM)), 4
    else:
        BM, BN, warps = LOWRANK_T_TILE
        sms = _limits(p)[0]
        # Enough programs to fill the GPU twice over, at most 8 partial copies of the (small) result.
        splits = max(1, min(8, triton_cdiv(2 * sms, triton_cdiv(NC, BN)), triton_cdiv(M, BM)))
    rows_per_split = triton_cdiv(triton_cdiv(M, splits), BM) * BM
    splits = triton_cdiv(M, rows_per_split)
    shape = (splits, NC, R) if transpose_out else (splits, R, NC)
    part = alloc(shape, torch.float32, p.device) if partials is None else partials
    assert tuple(part.shape) == shape, (tuple(part.shape), shape)
    sor, son = (part.stride(2), part.stride(1)) if transpose_out else (part.stride(1), part.stride(2))
    lk._lowrank_t[(triton_cdiv(NC, BN), splits)](
        p, q, part, M, NC, R, rows_per_split, p.stride(0), p.stride(1), q.stride(0), q.stride(1),
        part.stride(0), sor, son, PREC=_prec(q, p), BM=BM, BN=BN, RP=_pow2(R), num_warps=warps,
    )  # fmt: skip
    return part.sum(0)


def triton_cdiv(a: int, b: int) -> int:
    return -(-a // b)
