"""Closed-form gradient-descent learning curves of the random-features score model at finite d.

The loss at one diffusion time is quadratic in A, so from A(0) = 0 the trajectory is one matrix function of
the train feature covariance U = Q diag(λ) Qᵀ (``theory_notes/04_dynamics.md`` §1)::

    A(τ) = −√(p/Δ) Vᵀ Q diag(f(τ)) Qᵀ,     f_k(τ) = (1 − e^{−τλ_k})/λ_k            (gradient flow)
                                          f_k(τ) = (1 − (1 − ηλ_k)^{τ/η})/λ_k      (GD with step η, τ = kη)
                                          f_k(τ) = 1/(λ_k + 1/τ)                   (ridge-time proxy)

and every quadratic loss L_X(A) = 1 + Δ/(pd) Tr(A U_X Aᵀ) + 2√Δ/(d√p) Tr(A V_X) along it is::

    L_X(τ) = 1 + f(τ)ᵀ P_X f(τ) − 2 b_X·f(τ),   P_X = (Qᵀ U_X Q) ∘ (Ṽ Ṽᵀ)/d,   b_X = diag(Qᵀ V_X Ṽᵀ)/d,   Ṽ = QᵀV.

:func:`closed_form` does the eigendecomposition and the projections once (float64) and returns a
:class:`ClosedForm` whose call evaluates any number of times at O(T p²) per loss. :func:`finite_curves` builds it
for the per-class train losses (U_c^tr, V_c^tr), per-class population losses (U_c^pop, V_c^pop) and, optionally,
the per-class error to the exact *mixture* score (cross moments by Monte Carlo with a fixed seed), and returns
normalised errors ε_c = [L_c − (1 − S_c)]/S_c, S_c = Δ/Γ_c². :func:`iterate_gd` is the brute-force reference.

Example::

    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> phi, xi = rng.normal(size=(40, 6)), rng.normal(size=(40, 3))
    >>> U, V = phi.T @ phi / 40, phi.T @ xi / 40
    >>> cf = closed_form(U, V, U[None], V[None], delta=0.5, d=3)
    >>> L = cf(np.array([0.1, 1.0, 10.0]))            # (1, 3): the train loss along gradient flow
    >>> bool(L[0, 0] > L[0, 1] > L[0, 2])
    True
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..precision import float64
from ..model.activations import get_activation
from ..model.diffusion import class_score, delta as delta_t, forward_sample, mixture_score, noised_variances

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from jaxtyping import Array, ArrayLike, Float, Int

__all__ = ["ClosedForm", "closed_form", "finite_curves", "iterate_gd", "quadratic_loss", "FiniteCurves",
           "fresh_noise_excess"]

_KINDS = ("flow", "gd", "ridge")


def _f_weights(lam, taus, kind: str, step):
    """f_k(τ) of shape (T, p) for eigenvalues ``lam`` (p,) (module docstring); stable for small τλ."""
    lam = lam[None, :]
    tau = taus[:, None]
    if kind == "ridge":
        return tau / (1.0 + tau * lam)
    if kind == "flow":
        x = tau * lam
        small = jnp.abs(x) < 1e-8
        g = jnp.where(small, 1.0 - 0.5 * x, -jnp.expm1(-x) / jnp.where(small, 1.0, x))
        return tau * g
    # gd: (1 − (1 − ηλ)^k)/λ with k = τ/η steps; expm1/log1p for ηλ < 1/2, exact integer power otherwise
    k = jnp.round(tau / step)
    el = step * lam
    safe = el < 0.5
    via_log = -jnp.expm1(k * jnp.log1p(-jnp.where(safe, el, 0.0)))
    base = 1.0 - el  # may be negative when ηλ > 1 (still convergent for ηλ < 2): sign via the parity of k
    mag = jnp.exp(k * jnp.log(jnp.maximum(jnp.abs(base), 1e-300)))
    sign = jnp.where((base < 0) & (jnp.mod(k, 2.0) == 1.0), -1.0, 1.0)
    via_pow = 1.0 - jnp.where(k == 0, 1.0, sign * mag)
    num = jnp.where(safe, via_log, via_pow)
    tiny = jnp.abs(lam) < 1e-300
    return jnp.where(tiny, k * step, num / jnp.where(tiny, 1.0, lam))


class ClosedForm(eqx.Module):
    """Cached spectral data of one finite problem; call with times to get losses (X, T). See module doc."""

    lam: jax.Array  # (p,) eigenvalues of U
    P: jax.Array  # (X, p, p)
    b: jax.Array  # (X, p)

    @float64
    def __call__(self, taus, kind: str = "flow", step: float | None = None) -> jax.Array:
        """Losses L_X(τ), shape (X, T), for gradient flow, GD with step η (τ multiples of η) or ridge proxy."""
        if kind not in _KINDS:
            raise ValueError(f"kind must be one of {_KINDS}, got {kind!r}")
        if kind == "gd":
            if step is None or not step > 0:
                raise ValueError(f"kind='gd' needs a positive step, got {step}")
            if step * float(jnp.max(self.lam)) >= 2.0:
                raise ValueError(f"GD step {step} ≥ 2/λ_max = {2 / float(jnp.max(self.lam)):.4g}: diverges")
        taus = jnp.atleast_1d(jnp.asarray(taus, jnp.float64))
        if bool(jnp.any(taus < 0)):
            raise ValueError("taus must be non-negative")
        return _evaluate(self.lam, self.P, self.b, taus, kind, step)

    @float64
    def asymptote(self, rtol: float = 1e-14) -> jax.Array:
        """τ → ∞ limit (f = 1/λ; also the GD limit for η < 2/λ_max), shape (X,).

        Directions with λ ≤ rtol·λ_max get f = 0 (pseudo-inverse): V has no weight on exactly null directions
        (uᵀUu = 0 ⇒ uᵀφ = 0 a.s. ⇒ uᵀV = 0). The cut-off must stay at the level of rounding (~1e-14): under strong
        centroids, partly saturated tanh neurons give genuine eigenvalues down to ~1e-13·λ_max that still carry
        memorisation (notes 04 §6: a cut at 1e-10 dropped 1–5% of ε^tr(∞) and biased τ_mem).
        """
        lmax = jnp.max(self.lam)
        if not float(lmax) > 0:
            raise ValueError("U has no positive eigenvalue: nothing is learned")
        keep = self.lam > rtol * lmax
        f = jnp.where(keep, 1.0 / jnp.where(keep, self.lam, 1.0), 0.0)
        return 1.0 + jnp.einsum("k,xkl,l->x", f, self.P, f) - 2.0 * self.b @ f


@jax.jit(static_argnames=("kind",))
def _evaluate(lam, P, b, taus, kind, step):
    f = _f_weights(lam, taus, kind, step)  # (T, p)
    quad = jnp.einsum("tk,xkl,tl->xt", f, P, f)
    return 1.0 + quad - 2.0 * jnp.einsum("xk,tk->xt", b, f)


@float64
def closed_form(U: Float[ArrayLike, "p p"], V: Float[ArrayLike, "p d"], U_X: Float[ArrayLike, "X p p"],
                V_X: Float[ArrayLike, "X p d"], *, delta: float | Float[Array, ""], d: int) -> ClosedForm:
    """Eigendecompose U (p, p) once and project the loss pairs (U_X (X, p, p), V_X (X, p, d)).

    ``delta`` = Δ_t enters only through the time unit (A's prefactor √(p/Δ) cancels in the losses); it is kept
    in the signature so the call reads like the loss. Returns a :class:`ClosedForm`.
    """
    U = jnp.asarray(U, jnp.float64)
    V = jnp.asarray(V, jnp.float64)
    U_X = jnp.asarray(U_X, jnp.float64)
    V_X = jnp.asarray(V_X, jnp.float64)
    p = U.shape[0]
    if U.shape != (p, p) or V.shape != (p, d):
        raise ValueError(f"U must be (p, p) and V (p, d) = ({p}, {d}); got {U.shape}, {V.shape}")
    if U_X.ndim != 3 or U_X.shape[1:] != (p, p) or V_X.shape != (U_X.shape[0], p, d):
        raise ValueError(f"U_X must be (X, {p}, {p}) and V_X (X, {p}, {d}); got {U_X.shape}, {V_X.shape}")
    if not float(delta) > 0:
        raise ValueError(f"delta must be positive, got {delta}")
    lam, Q = jnp.linalg.eigh(0.5 * (U + U.T))
    Vt = Q.T @ V  # (p, d)
    G = Vt @ Vt.T / d  # ṼṼᵀ/d
    P = jnp.einsum("ik,xij,jl->xkl", Q, U_X, Q) * G[None]
    b = jnp.einsum("ik,xij,kj->xk", Q, V_X, Vt) / d
    return ClosedForm(lam=lam, P=P, b=b)


def quadratic_loss(A: Float[ArrayLike, "*batch d p"], U_X: Float[ArrayLike, "p p"], V_X: Float[ArrayLike, "p d"], *,
                   delta: float | Float[ArrayLike, ""], p: int, d: int) -> Float[Array, "*batch"]:
    """L_X(A) = 1 + Δ/(pd) Tr(A U_X Aᵀ) + 2√Δ/(d√p) Tr(A V_X) for A (..., d, p) (the model's DSM loss)."""
    quad = jnp.einsum("...ik,kl,...il->...", A, U_X, A)
    lin = jnp.einsum("...ik,ki->...", A, V_X)
    return 1.0 + delta / (p * d) * quad + 2.0 * jnp.sqrt(delta) / (d * np.sqrt(p)) * lin


@float64
def iterate_gd(U: Float[ArrayLike, "p p"], V: Float[ArrayLike, "p d"], eta: float, steps: Int[ArrayLike, "S"], *,
               delta: float | Float[ArrayLike, ""], p: int) -> Float[Array, "S d p"]:
    """Full-batch GD on the exact (noise-averaged) loss, A_{k+1} = A_k − η(A_k U + √(p/Δ) Vᵀ), A_0 = 0.

    This is −η (pd/2Δ) ∇L, i.e. step η in τ units. ``steps`` (sorted ints) are the iterations at which A is
    recorded; returns A of shape (len(steps), d, p). Reference for the closed form, not for production.
    """
    U = jnp.asarray(U, jnp.float64)
    V = jnp.asarray(V, jnp.float64)
    steps = np.asarray(steps, dtype=int)
    if steps.ndim != 1 or np.any(np.diff(steps) < 0) or np.any(steps < 0):
        raise ValueError("steps must be a sorted 1-d array of non-negative integers")
    force = -jnp.sqrt(p / delta) * V.T  # (d, p)

    @jax.jit
    def run(A, n):
        return jax.lax.fori_loop(0, n, lambda _, a: a + eta * (force - a @ U), A)

    A = jnp.zeros_like(force)
    out, done = [], 0
    for s in steps:
        A = run(A, int(s - done))
        done = int(s)
        out.append(A)
    return jnp.stack(out)


class FiniteCurves(eqx.Module):
    """Per-class curves of one finite problem as a function of τ (build with :func:`finite_curves`).

    Calling it returns a dict of (K, T) arrays: ``loss_train``, ``loss_test``, ``eps_train``, ``eps_test`` and,
    if cross moments were given, ``eps_mixture`` (Γ_c² E_{x∼c}||s_A − ∇log p_t||²/d, ≈ ε_c^te where classes are
    separable). :meth:`asymptote` gives the τ → ∞ values (K,).
    """

    cf: ClosedForm
    S: jax.Array  # (K,) Δ/Γ_c²
    gam2: jax.Array  # (K,) Γ_c²
    mix_const: jax.Array | None  # (K,) Γ_c² (E||w||² − 2 E s_c*·w)/d, w = s_c* − s_mix, or None
    num_classes: int = eqx.field(static=True)

    @float64
    def __call__(self, taus, kind: str = "flow", step: float | None = None) -> dict:
        return self._package(self.cf(taus, kind, step))

    @float64
    def asymptote(self, rtol: float = 1e-14) -> dict:
        """τ → ∞ values (K, 1); ``rtol`` is the pseudo-inverse cut-off of :meth:`ClosedForm.asymptote`."""
        return self._package(self.cf.asymptote(rtol)[:, None])

    @float64
    def spectral_masses(self, rtol: float = 1e-14) -> tuple[jax.Array, jax.Array]:
        """Eigenvalues λ (p,) of U and the per-class loss masses m (K, p) in ε units (``theory_notes/11``).

        m_c,k = b_c,k/(λ_k S_c), b_c,k = (q_kᵀ V_c^tr Vᵀ q_k)/d the class-c share of V's weight on eigen-direction
        k (the train rows of the closed form), so Σ_c (n_c/n) S_c m_c,k = v_k/λ_k and the total train loss is
        exactly 1 − Σ_k (v_k/λ_k) h(λ_k τ). Directions with λ ≤ ``rtol``·λ_max get zero mass (the pseudo-inverse
        cut of :meth:`ClosedForm.asymptote`). Feed to :func:`rfdiff.theory.timescales.spectral_times`.
        """
        lam = self.cf.lam
        keep = lam > rtol * jnp.max(lam)
        inv = jnp.where(keep, 1.0 / jnp.where(keep, lam, 1.0), 0.0)
        return lam, self.cf.b[:self.num_classes] * inv[None, :] / self.S[:, None]

    def _package(self, L):
        K = self.num_classes
        S = self.S[:, None]
        out = {"loss_train": L[:K], "loss_test": L[K:2 * K]}
        out["eps_train"] = (out["loss_train"] - (1.0 - S)) / S
        out["eps_test"] = (out["loss_test"] - (1.0 - S)) / S
        if self.mix_const is not None:
            cross = self.gam2[:, None] * (L[2 * K:] - 1.0)  # 2 Γ_c² E(s_A·w)/d
            out["eps_mixture"] = out["eps_test"] + cross + self.mix_const[:, None]
        return out


@float64
def finite_curves(problem, moments, pop_moments, *, mixture_mc: int = 0, seed: int = 0,
                  loss_weights=None) -> FiniteCurves:
    """Per-class closed-form curves of a realised problem (``rfdiff.finite.features.realise``).

    ``moments`` (train: U, V, U_class, V_class) and ``pop_moments`` = (U_pop (K,p,p), V_pop (K,p,d)) come from
    ``rfdiff.finite.features``. With ``mixture_mc > 0`` the cross moments with the exact mixture score are estimated
    from ``mixture_mc`` fresh samples per class (fixed ``seed``), giving ``eps_mixture``.
    """
    mix, model = problem.mixture, problem.model
    p, d = int(problem.p), int(problem.d)
    if loss_weights is not None:
        from ..theory.loss_weights import normalise_loss_weights
        from .features import weighted_moments

        w = normalise_loss_weights(loss_weights, mix.proportions)
        moments = weighted_moments(moments, problem.class_fractions, w)
    t = jnp.asarray(model.t, jnp.float64)
    dl = delta_t(t)
    gam2 = noised_variances(mix, t)
    U_pop, V_pop = pop_moments
    U_X = [moments.U_class, U_pop]
    V_X = [moments.V_class, V_pop]
    mix_const = None
    if mixture_mc > 0:
        D, const = _mixture_cross_moments(problem, mixture_mc, seed)
        # extra rows with U_X = 0, V_X = D_c/√Δ: L_row − 1 = 2/(d√p) Tr(A D_c) = 2 E(s_A·w)/d (notes §2)
        U_X.append(jnp.zeros((mix.num_classes, p, p)))
        V_X.append(D / jnp.sqrt(dl))
        mix_const = gam2 * const
    cf = closed_form(moments.U, moments.V, jnp.concatenate(U_X), jnp.concatenate(V_X), delta=dl, d=d)
    return FiniteCurves(cf=cf, S=dl / gam2, gam2=gam2, mix_const=mix_const, num_classes=mix.num_classes)


def _mixture_cross_moments(problem, n_mc: int, seed: int):
    """Monte Carlo (fixed seed) of D_c = E_{x∼c}[φ(x_t) wᵀ] (K, p, d) and (E||w||² − 2 E s_c*·w)/d (K,),
    with w = s_c*(x_t) − ∇log p_t(x_t), x_t drawn from class c at the problem's diffusion time."""
    mix, model = problem.mixture, problem.model
    d = int(problem.d)
    t = jnp.asarray(model.t, jnp.float64)
    act = get_activation(model.activation)
    Wt = jnp.asarray(problem.W, jnp.float64) / np.sqrt(d)
    key = jax.random.key(seed)
    Ds, consts = [], []
    for c in range(mix.num_classes):
        key, k1, k2 = jax.random.split(key, 3)
        labels = jnp.full((n_mc,), c)
        x0, _ = mix.sample(k1, n_mc, d, centroids=problem.centroids, labels=labels)
        xt, _ = forward_sample(k2, x0, t)
        sc = class_score(xt, t, mix, problem.centroids, c)
        w = sc - mixture_score(xt, t, mix, problem.centroids)
        phi = act.fn(xt @ Wt.T)
        Ds.append(phi.T @ w / n_mc)
        consts.append((jnp.mean(jnp.sum(w * w, -1)) - 2 * jnp.mean(jnp.sum(sc * w, -1))) / d)
    return jnp.stack(Ds), jnp.stack(consts)


@float64
def fresh_noise_excess(U: Float[ArrayLike, "p p"], U_X: Float[ArrayLike, "X p p"], U_noise: Float[ArrayLike, "p p"],
                       lr: float, n: int, m: int, steps: Int[ArrayLike, "S"]) -> Float[Array, "X S"]:
    """Predicted excess of E L_X over the noise-averaged GD curve after ``steps`` fresh-noise GD steps.

    Linear-noise estimate (``theory_notes/06_simulation.md`` §2): with gradient noise of row covariance
    (p/Δ) U_noise/(n m) per step (U_noise = U without control variate, E(φ−φ̄)(φ−φ̄)ᵀ with it) and U = Q Λ Qᵀ,

        excess_X(k) = (η̂²/(n m)) Σ_ab (QᵀU_XQ)_ab (QᵀU_noiseQ)_ab (1 − r_ab^k)/(1 − r_ab),
        r_ab = (1 − η̂λ_a)(1 − η̂λ_b),

    which for U_noise = U_X = U and η̂λ ≪ 1 reduces to η̂ Tr U/(2 n m) = η̂ ψ_p E φ²/(2 ψ_n m) at stationarity.
    Shapes: U, U_noise (p, p), U_X (X, p, p), ``steps`` (T,) → (X, T), raw loss units (divide by S_c for ε).
    """
    lam, Q = jnp.linalg.eigh(jnp.asarray(U, jnp.float64))
    if lr * float(lam[-1]) >= 2.0:
        raise ValueError(f"lr = {lr} ≥ 2/λ_max(U) = {2 / float(lam[-1]):.4g}: GD diverges")
    ux = jnp.einsum("ia,xij,jb->xab", Q, jnp.asarray(U_X, jnp.float64), Q)
    un = Q.T @ jnp.asarray(U_noise, jnp.float64) @ Q
    r = (1 - lr * lam)[:, None] * (1 - lr * lam)[None, :]
    k = jnp.asarray(np.asarray(steps, np.float64))[:, None, None]
    # Σ_{j<k} r^j = (1 − r^k)/(1 − r); r ∈ (−1, 1) may be negative when η̂λ > 1, so take r^k by sign and modulus
    sign = jnp.where((r < 0)[None] & (jnp.mod(k, 2.0) == 1.0), -1.0, 1.0)
    rk = sign * jnp.exp(k * jnp.log(jnp.abs(r))[None])
    geo = (1.0 - rk) / (1.0 - r)[None]  # (T, p, p)
    return lr**2 / (n * m) * jnp.einsum("xab,ab,tab->xt", ux, un, geo)
