"""Triton kernels of the fused CS-HLoRA layer (device code only; launchers live in ``launch.py``).

Notation: ``x [M, K]`` rows of the input, ``A [R, K]``, ``B [N, R]``, ``c`` the LoRA scaling, and
per row ``m`` the gate ``g[m, k] = sigmoid(a_k (tau_k - s_m) q_mk)`` with
``q = rsqrt(1 + pi/8 a^2 var_m)`` (``q = 1`` without a variance: the loaded var is 0).

Forward:  ``xa = x A^T``, ``u = c g xa`` (``_shrink``), then ``y = x W^T + bias + u B^T`` in one
GEMM whose accumulator also takes the low-rank product (``_matmul_lowrank``): no pass over ``y``
beyond the base GEMM's own store.
Backward: ``dU = dY B`` with the gate gradients reduced in the same kernel (``_bwd_rows``), then
``dA = dxa^T x`` and ``dB = dY^T u`` as split-M reductions (``_lowrank_t``), and
``dX = dY W + dxa A`` with the same fused GEMM as the forward.

Gate modes (``GATE``): 0 none (plain LoRA), 1 continuous (computed here from s, var, tau, a),
2 table (a precomputed ``[M, R]`` gate, e.g. the bucketed baseline; its gradient is written out).
Everything that touches the fp32 adapter is accumulated in fp32. All offsets that scale with the
number of rows are int64: ``M * K`` overflows int32 for long packed batches.

This module is imported lazily (see ``kernels/__init__.py``): ``triton.jit`` decides at decoration
time whether a kernel runs compiled or in the interpreter (``TRITON_INTERPRET=1``). The kernels call
triton builtins only, never the ``@jit`` helpers of ``triton.language.standard`` (``tl.zeros``,
``tl.sum``, ``tl.sigmoid``, ``tl.cdiv``): those are decorated once, when triton is first imported,
and bitsandbytes, peft and torch._dynamo import triton early, so under the interpreter they would be
compiled functions the interpreter cannot call. Hence ``tl.full``, ``tl.reduce(.., _add)`` and ``_sigmoid``.
"""

from __future__ import annotations

import math

import triton
import triton.language as tl

# Recorded so the loader can re-decorate the kernels if the interpreter setting changed since import.
INTERPRETED = bool(triton.knobs.runtime.interpret)

# E[sigmoid(z)] ~ sigmoid(m / sqrt(1 + pi v / 8)), as in gate.py. Written as literals in the kernels:
# a tl.constexpr global works compiled but not under the interpreter (constexpr * tensor fails there).
PROBIT = math.pi / 8.0  # = 0.39269908169872414 (a wrong literal fails the variance tests)


@triton.jit
def _add(a, b):
    return a + b


@triton.jit
def _sigmoid(z):
    return 1.0 / (1.0 + tl.exp(-z))  # exp overflow to inf gives exactly 0, as wanted


@triton.jit
def _row_gate(s_ptr, v_ptr, tau_ptr, sh_ptr, rm, rr, M, R, HAS_VAR: tl.constexpr):
    """Gate of rows ``rm`` x ranks ``rr``; also returns ``tau - s``, ``q`` and ``a`` for the backward."""
    s = tl.load(s_ptr + rm, mask=rm < M, other=0.0).to(tl.float32)[:, None]
    if HAS_VAR:
        v = tl.load(v_ptr + rm, mask=rm < M, other=0.0).to(tl.float32)[:, None]
    else:
        v = tl.full(s.shape, 0.0, tl.float32)
    tau = tl.load(tau_ptr + rr, mask=rr < R, other=0.0).to(tl.float32)[None, :]
    a = tl.load(sh_ptr + rr, mask=rr < R, other=0.0).to(tl.float32)[None, :]
    d = tau - s
    q = 1.0 / tl.sqrt(1.0 + 0.39269908169872414 * a * a * v)  # PROBIT
    return _sigmoid(a * d * q), d, q, a


@triton.jit
def _shrink(
    x_ptr, a_ptr, s_ptr, v_ptr, tau_ptr, sh_ptr, g_ptr, xa_ptr, u_ptr,
    M, K, R, sxm, sxk, sar, sak, sgm, sgr, scaling,
    GATE: tl.constexpr, HAS_VAR: tl.constexpr, PREC: tl.constexpr,
    BM: tl.constexpr, BK: tl.constexpr, RP: tl.constexpr,
):  # fmt: skip
    """``xa = x A^T`` and ``u = c g xa`` for one block of rows (all ranks at once: R <= RP)."""
    rm = tl.program_id(0) * BM + tl.arange(0, BM)
    rr = tl.arange(0, RP)
    rk = tl.arange(0, BK)
    rm64 = rm.to(tl.int64)
    acc = tl.full((BM, RP), 0.0, tl.float32)
    for k0 in range(0, K, BK):
        kk = k0 + rk
        x_mask = (rm[:, None] < M) & (kk[None, :] < K)
        xt = tl.load(x_ptr + rm64[:, None] * sxm + kk[None, :] * sxk, mask=x_mask, other=0.0)
        a_mask = (rr[None, :] < R) & (kk[:, None] < K)
        at = tl.load(a_ptr + rr[None, :] * sar + kk[:, None] * sak, mask=a_mask, other=0.0)  # A^T tile
        acc = tl.dot(xt.to(tl.float32), at.to(tl.float32), acc, input_precision=PREC)
    out_mask = (rm[:, None] < M) & (rr[None, :] < R)
    offs = rm64[:, None] * R + rr[None, :]  # xa and u are contiguous [M, R]
    tl.store(xa_ptr + offs, acc, mask=out_mask)
    if GATE == 1:
        g, d, q, a = _row_gate(s_ptr, v_ptr, tau_ptr, sh_ptr, rm, rr, M, R, HAS_VAR)
        acc = acc * g
    elif GATE == 2:
        acc = acc * tl.load(g_ptr + rm64[:, None] * sgm + rr[None, :] * sgr, mask=out_mask, other=0.0).to(tl.float32)
    tl.store(u_ptr + offs, acc * scaling, mask=out_mask)


@triton.jit
def _matmul_lowrank(
    a_ptr, b_ptr, u_ptr, v_ptr, bias_ptr, c_ptr, o_ptr,
    M, N, K, R, sam, sak, sbk, sbn, sum_, sur, svr, svn, scm, scn, som, son,
    HAS_AB: tl.constexpr, HAS_BIAS: tl.constexpr, HAS_C: tl.constexpr,
    PREC_AB: tl.constexpr, PREC_LR: tl.constexpr,
    BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, RB: tl.constexpr, GROUP_M: tl.constexpr,
):  # fmt: skip
    """``o = a @ b + u @ v (+ bias) (+ c)``: the base GEMM with the low-rank expand in its accumulator.

    Forward: a=x, b=W^T, u=c·g·xa, v=B^T. Backward: a=dY, b=W, u=dxa, v=A. Without ``a`` (HAS_AB=0;
    a base that is not a plain dense weight) it adds the low-rank product to ``c``, possibly in place.
    """
    pid = tl.program_id(0)
    # Grouped tile order: GROUP_M row blocks share each column block of b while it sits in L2.
    num_m, num_n = (M + BM - 1) // BM, (N + BN - 1) // BN
    group = pid // (GROUP_M * num_n)
    first_m = group * GROUP_M
    size_m = tl.minimum(num_m - first_m, GROUP_M)
    pid_m = first_m + (pid % (GROUP_M * num_n)) % size_m
    pid_n = (pid % (GROUP_M * num_n)) // size_m
    rm = pid_m * BM + tl.arange(0, BM)
    rn = pid_n * BN + tl.arange(0, BN)
    rm64 = rm.to(tl.int64)
    mm, nn = rm[:, None] < M, rn[None, :] < N
    acc = tl.full((BM, BN), 0.0, tl.float32)
    if HAS_AB:
        rk = tl.arange(0, BK)
        for k0 in range(0, K, BK):
            kk = k0 + rk
            at = tl.load(a_ptr + rm64[:, None] * sam + kk[None, :] * sak, mask=mm & (kk[None, :] < K), other=0.0)
            bt = tl.load(b_ptr + kk[:, None] * sbk + rn[None, :] * sbn, mask=(kk[:, None] < K) & nn, other=0.0)
            acc = tl.dot(at, bt, acc, input_precision=PREC_AB)
    rr = tl.arange(0, RB)
    for r0 in range(0, R, RB):
        kr = r0 + rr
        ut = tl.load(u_ptr + rm64[:, None] * sum_ + kr[None, :] * sur, mask=mm & (kr[None, :] < R), other=0.0)
        vt = tl.load(v_ptr + kr[:, None] * svr + rn[None, :] * svn, mask=(kr[:, None] < R) & nn, other=0.0)
        acc = tl.dot(ut.to(tl.float32), vt.to(tl.float32), acc, input_precision=PREC_LR)
    if HAS_BIAS:
        acc += tl.load(bias_ptr + rn, mask=rn < N, other=0.0).to(tl.float32)[None, :]
    if HAS_C:
        acc += tl.load(c_ptr + rm64[:, None] * scm + rn[None, :] * scn, mask=mm & nn, other=0.0).to(tl.float32)
    tl.store(o_ptr + rm64[:, None] * som + rn[None, :] * son, acc.to(o_ptr.dtype.element_ty), mask=mm & nn)


@triton.jit
def _bwd_rows(
    dy_ptr, b_ptr, xa_ptr, s_ptr, v_ptr, tau_ptr, sh_ptr, g_ptr,
    dxa_ptr, dg_ptr, ds_ptr, dv_ptr, dtau_ptr, dsh_ptr,
    M, N, R, sdm, sdn, sbn, sbr, sgm, sgr, scaling,
    GATE: tl.constexpr, HAS_VAR: tl.constexpr, PREC: tl.constexpr,
    BM: tl.constexpr, BN: tl.constexpr, RP: tl.constexpr,
):  # fmt: skip
    """``dU = dY B`` for a block of rows, and everything that follows from it row by row.

    Writes ``dxa = c g dU`` ([M, R], feeds dA and dX). For the continuous gate, with
    ``dz = c dU xa g (1 - g)``: per row ``ds = -sum_k dz a q`` and
    ``dvar = -pi/16 sum_k dz a^3 (tau - s) q^3``; per block the partial column sums
    ``dtau = sum_m dz a q`` and ``da = sum_m dz (tau - s) q^3`` (summed over blocks on the host,
    deterministic). For a gate table, writes ``dG = c dU xa``.
    """
    pid = tl.program_id(0)
    rm = pid * BM + tl.arange(0, BM)
    rr = tl.arange(0, RP)
    rn0 = tl.arange(0, BN)
    rm64 = rm.to(tl.int64)
    acc = tl.full((BM, RP), 0.0, tl.float32)
    for n0 in range(0, N, BN):
        rn = n0 + rn0
        dy_mask = (rm[:, None] < M) & (rn[None, :] < N)
        dyt = tl.load(dy_ptr + rm64[:, None] * sdm + rn[None, :] * sdn, mask=dy_mask, other=0.0)
        b_mask = (rn[:, None] < N) & (rr[None, :] < R)
        bt = tl.load(b_ptr + rn[:, None] * sbn + rr[None, :] * sbr, mask=b_mask, other=0.0)
        acc = tl.dot(dyt.to(tl.float32), bt.to(tl.float32), acc, input_precision=PREC)
    mask = (rm[:, None] < M) & (rr[None, :] < R)
    offs = rm64[:, None] * R + rr[None, :]  # dxa, xa and dG are contiguous [M, R]
    du = acc * scaling
    if GATE == 0:
        tl.store(dxa_ptr + offs, du, mask=mask)
    else:
        xa = tl.load(xa_ptr + offs, mask=mask, other=0.0)
        if GATE == 1:
            g, d, q, a = _row_gate(s_ptr, v_ptr, tau_ptr, sh_ptr, rm, rr, M, R, HAS_VAR)
            tl.store(dxa_ptr + offs, du * g, mask=mask)
            dz = du * xa * g * (1.0 - g)  # zero on padded rows/ranks: dU and xa are zero there
            dz_aq = dz * a * q
            dz_dq3 = dz * d * q * q * q
            tl.store(ds_ptr + rm, -tl.reduce(dz_aq, 1, _add), mask=rm < M)
            if HAS_VAR:
                dv = -0.19634954084936207 * tl.reduce(dz_dq3 * a * a * a, 1, _add)  # -PROBIT / 2
                tl.store(dv_ptr + rm, dv, mask=rm < M)
            tl.store(dtau_ptr + pid * R + rr, tl.reduce(dz_aq, 0, _add), mask=rr < R)
            tl.store(dsh_ptr + pid * R + rr, tl.reduce(dz_dq3, 0, _add), mask=rr < R)
        else:
            g = tl.load(g_ptr + rm64[:, None] * sgm + rr[None, :] * sgr, mask=mask, other=0.0).to(tl.float32)
            tl.store(dxa_ptr + offs, du * g, mask=mask)
            tl.store(dg_ptr + offs, du * xa, mask=mask)


@triton.jit
def _lowrank_t(
    p_ptr, q_ptr, o_ptr, M, NC, R, rows_per_split, spm, spr, sqm, sqn, sos, sor, son,
    PREC: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, RP: tl.constexpr,
):  # fmt: skip
    """Partial ``P^T Q`` over one split of the rows: ``o[split, r, n] = sum_m P[m, r] Q[m, n]``.

    dA (P=dxa, Q=x) and dB (P=u, Q=dY; the output strides write it as [N, R]). A reduction over
    M with R small: the grid is column blocks x row splits, and the host sums the few splits.
    """
    pid_n, pid_s = tl.program_id(0), tl.program_id(1)
    rn = pid_n * BN + tl.arange(0, BN)
    rr = tl.arange(0, RP)
    rm0 = tl.arange(0, BM)
    start = pid_s * rows_per_split
    end = tl.minimum(start + rows_per_split, M)
    acc = tl.full((RP, BN), 0.0, tl.float32)
    for m0 in range(start, end, BM):
        rm = m0 + rm0
        rm64 = rm.to(tl.int64)
        p_mask = (rr[:, None] < R) & (rm[None, :] < end)
        pt = tl.load(p_ptr + rr[:, None] * spr + rm64[None, :] * spm, mask=p_mask, other=0.0)  # P^T tile
        q_mask = (rm[:, None] < end) & (rn[None, :] < NC)
        qt = tl.load(q_ptr + rm64[:, None] * sqm + rn[None, :] * sqn, mask=q_mask, other=0.0)
        acc = tl.dot(pt.to(tl.float32), qt.to(tl.float32), acc, input_precision=PREC)
    out = o_ptr + pid_s.to(tl.int64) * sos + rr[:, None] * sor + rn[None, :] * son
    tl.store(out, acc, mask=(rr[:, None] < R) & (rn[None, :] < NC))
