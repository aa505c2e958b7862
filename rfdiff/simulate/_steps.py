"""Jitted kernels of the RF trainer: gradient estimators in τ units, memory-bounded feature products.

All gradients are returned in the time unit of the theory (``theory_notes/06_simulation.md`` §1)::

    G(A) = (p d / (2Δ)) ∇_A L = (1/n) Σ_ν E_ξ[ A φ φᵀ + √(p/Δ) ξ φᵀ ] = A U + √(p/Δ) Vᵀ,

so plain gradient descent with step ``η̂`` is ``A ← A − η̂ G`` and ``k`` steps cover a training time ``τ = k η̂``.

Stochastic estimators replace E_ξ by ``m`` draws per training point; the control variates subtract terms
of zero mean given x₀ (``√(p/Δ) ξ φ̄ᵀ`` with ``φ̄ = σ(e^{-t} W x₀/√d)``, and the ξ-linear parts of the feature
products, see :func:`grad_sampled`). Feature products are
accumulated over row chunks with ``lax.scan`` so memory is ``O(d p + chunk·p)`` whatever the batch size.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from ..model.activations import get_activation

__all__ = ["pad_rows", "grad_exact", "grad_sampled", "draw_noise", "eval_rows", "run_segment"]


def pad_rows(x, chunk: int):
    """Pad the leading axis of ``x`` with zeros to a multiple of ``chunk`` and reshape to (n_chunks, chunk, ...)."""
    n = x.shape[0]
    n_chunks = max(1, -(-n // chunk))
    pad = n_chunks * chunk - n
    x = jnp.concatenate([x, jnp.zeros((pad,) + x.shape[1:], x.dtype)], axis=0) if pad else x
    return x.reshape((n_chunks, chunk) + x.shape[1:])


def grad_exact(A, U, V, delta_t):
    """Noise-averaged gradient in τ units, A U + √(p/Δ) Vᵀ. Shapes A (d, p), U (p, p), V (p, d)."""
    p = U.shape[0]
    return A @ U + jnp.sqrt(p / delta_t).astype(A.dtype) * V.T


def grad_sampled(A, W, x0, xi, t, activation: str, control_variate: str, chunk: int, row_weights=None):
    """Stochastic DSM gradient in τ units from explicit noise draws (``theory_notes/06_simulation.md`` §3).

    ``x0`` (B, d) training points, ``xi`` (B, m, d) noise draws (m per point), ``W`` (p, d); c = √(p/Δ),
    φ = σ(h̄ + η) with h̄ = e^{-t} W̃x₀, η = √Δ W̃ξ, φ̄ = σ(h̄), δ = σ'(h̄) ⊙ η (linearisation of φ − φ̄). Returns
    (1/(B m)) Σ_{ν,j} of

    * ``"none"``:   A φφᵀ + c ξ φᵀ                                    (the plain per-sample DSM gradient)
    * ``"simple"``: A φφᵀ + c ξ (φ − φ̄)ᵀ                              (minus the zero-mean c ξ φ̄ᵀ)
    * ``"linear"``: A (φφᵀ − δφ̄ᵀ − φ̄δᵀ) + c ξ (φ − φ̄ − δ)ᵀ + c√Δ W̃ᵀ diag σ'(h̄)

    "linear" also removes the ξ-linear part of the A-term and replaces ξδᵀ by its exact mean √Δ W̃ᵀdiag σ'(h̄);
    every removed term is linear in ξ or has its mean added back, so the expectation is unchanged. Rows are
    accumulated over chunks of ``chunk`` training points; zero-padded rows are masked out. ``row_weights`` (B,):
    the class-weighted loss, each point's terms multiplied by its class weight w_c (None: all 1).
    """
    act = get_activation(activation).fn
    d = W.shape[1]
    p = W.shape[0]
    b, m = xi.shape[0], xi.shape[1]
    dt = A.dtype
    delta_t = -jnp.expm1(-2.0 * t)
    scale = jnp.sqrt(p / delta_t).astype(dt)
    decay = jnp.exp(-t).astype(dt)
    sq = jnp.sqrt(delta_t).astype(dt)
    wt = (W / jnp.sqrt(float(d))).astype(dt)
    mask = pad_rows(jnp.ones((b,), dt), chunk)
    weighted = row_weights is not None  # static: the unweighted path stays exactly the original arithmetic
    rw = pad_rows(row_weights.astype(dt), chunk) if weighted else mask
    x0c, xic = pad_rows(x0, chunk), pad_rows(xi, chunk)

    def body(acc, inp):
        xb, eb, mk, wk = inp  # (C, d), (C, m, d), (C,), (C,) (wk = mk when unweighted, then unused)
        hbar = decay * xb @ wt.T  # (C, p)
        eta = sq * eb @ wt.T  # (C, m, p)
        phi = act(hbar[:, None, :] + eta) * mk[:, None, None]  # (C, m, p); padded rows contribute nothing
        out = phi @ A.T  # (C, m, d)
        # every accumulated term is linear in one per-row factor: weight that factor by the row's class weight
        if weighted:
            out, eb = out * wk[:, None, None], eb * wk[:, None, None]
        if control_variate == "linear":
            phibar, dphi = jax.jvp(act, (hbar,), (jnp.ones_like(hbar),))  # σ(h̄), σ'(h̄)
            phibar, dphi = phibar * mk[:, None], dphi * mk[:, None]
            lin = dphi[:, None, :] * eta  # δ (C, m, p)
            resid = phi - phibar[:, None, :] - lin
            acc = acc + jnp.einsum("cmd,cmp->dp", out, phi) + scale * jnp.einsum("cmd,cmp->dp", eb, resid)
            la, pa = lin @ A.T, phibar @ A.T
            if weighted:
                la, pa = la * wk[:, None, None], pa * wk[:, None]
            acc = acc - jnp.einsum("cmd,cp->dp", la, phibar)
            acc = acc - jnp.einsum("cd,cmp->dp", pa, lin)
            dsum = (wk @ dphi) if weighted else jnp.sum(dphi, axis=0)
            return acc + (scale * sq * m) * wt.T * dsum[None, :], None
        acc = acc + jnp.einsum("cmd,cmp->dp", out + scale * eb, phi)
        if control_variate == "simple":
            phibar = act(hbar) * mk[:, None]  # (C, p)
            acc = acc - scale * jnp.einsum("cd,cp->dp", jnp.sum(eb, axis=1), phibar)
        return acc, None

    acc, _ = jax.lax.scan(body, jnp.zeros_like(A), (x0c, xic, mask, rw))
    return acc / jnp.asarray(b * m, dt)


def draw_noise(key, idx, m: int, d: int, dtype, fixed: bool, step):
    """Noise draws (B, m, d) for training points ``idx`` (B,).

    fixed: ξ_νj depends only on (key, ν) — a fixed bank of m draws per point, regenerated on the fly so it
    costs no memory. fresh: ξ depends on (key, step, ν), new every step. Either way the draw of a given
    (step, point) is independent of how the run is split into segments, which makes resume bit-identical.
    """
    base = key if fixed else jax.random.fold_in(key, step)
    keys = jax.vmap(lambda i: jax.random.fold_in(base, i))(idx)
    return jax.vmap(lambda k: jax.random.normal(k, (m, d), dtype))(keys)


def eval_rows(A, W, xt, xi, onehot, target, t, activation: str, chunk: int):
    """Per-class sums over evaluation rows, chunked: returns (loss_sum (K,), score_sq_sum (K,)).

    loss row  = [Δ ||s||² + 2√Δ ξ·s]/d (the exact E||ξ||²/d = 1 is added by the caller, removing its noise);
    score row = ||s − target||²/d where target is the exact mixture score at x_t (``None``: not computed).
    ``s = A σ(W x_t/√d)/√p``; ``onehot`` (N, K) is zero on padded rows.
    """
    act = get_activation(activation).fn
    p, d = W.shape
    dt = A.dtype
    delta_t = -jnp.expm1(-2.0 * t).astype(dt)
    wt = (W / jnp.sqrt(float(d))).astype(dt)
    inv_sqrt_p = jnp.asarray(1.0 / jnp.sqrt(float(p)), dt)

    def body(acc, inp):
        x, e, oh = inp[:3]
        s = act(x @ wt.T) @ A.T * inv_sqrt_p  # (C, d)
        lrow = (delta_t * jnp.sum(s * s, axis=1) + 2.0 * jnp.sqrt(delta_t) * jnp.sum(e * s, axis=1)) / d
        srow = jnp.sum((s - inp[3]) ** 2, axis=1) / d if len(inp) == 4 else jnp.zeros_like(lrow)
        return (acc[0] + lrow @ oh, acc[1] + srow @ oh), None

    k = onehot.shape[1]
    init = (jnp.zeros((k,), dt), jnp.zeros((k,), dt))
    args = tuple(pad_rows(a, chunk) for a in (xt, xi, onehot) + (() if target is None else (target,)))
    (ls, ss), _ = jax.lax.scan(body, init, args)
    return ls, ss


def run_segment(step_fn, state, start, stop):
    """Apply ``state = step_fn(state, k)`` for k = start..stop-1 in one compiled while loop.

    ``start``/``stop`` are traced, so every segment length reuses one executable (no retrace per log
    interval), and the result does not depend on where segments are cut.
    """
    return jax.lax.fori_loop(start, stop, lambda k, s: step_fn(s, k), state)
