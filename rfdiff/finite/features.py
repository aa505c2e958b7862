"""The random-features score model and its finite-d feature moments.

Model (``theory_notes/01_model.md``)::

    s_A(x) = A σ(W x/√d)/√p,   W ∈ R^{p×d} i.i.d. N(0, 1) fixed,   A ∈ R^{d×p} trained.

At one diffusion time t the denoising score-matching loss over n training points is exactly quadratic in A::

    L(A) = 1/(n d) Σ_ν E_ξ ||√Δ_t s_A(e^{-t} x^ν + √Δ_t ξ) + ξ||²
         = 1 + Δ/(p d) Tr(A U Aᵀ) + 2√Δ/(d√p) Tr(A V),
    U = (1/n) Σ_ν E_ξ[φ φᵀ]  (p×p),   V = (1/n) Σ_ν E_ξ[φ ξᵀ] = √Δ diag(â) W/√d  (p×d, Stein),

with φ = σ(W x_t/√d) and â_i = (1/n) Σ_ν E_ξ σ'(h_i^ν).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from ..precision import float64
from ..model.activations import derivative_moments, gaussian_expectation, ge_coefficients, get_activation
from ..model.mixture import GaussianMixture
from ..model.rf import RFModel

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from jaxtyping import Array, ArrayLike, Float, Key

__all__ = [
    "FiniteProblem",
    "FeatureMoments",
    "realise",
    "train_moments",
    "population_moments",
    "loss_from_moments",
    "weighted_moments",
]


# ================================================================================ finite-d realisation
class FiniteProblem(eqx.Module):
    """One finite-d realisation: weights ``W`` (p, d), training inputs ``x0`` (n, d) with ``labels`` (n,),
    the ``centroids`` (K, d) they were drawn around, and the specs they came from."""

    W: jax.Array
    x0: jax.Array
    labels: jax.Array
    centroids: jax.Array
    mixture: GaussianMixture
    model: RFModel

    @property
    def d(self) -> int:
        return self.W.shape[1]

    @property
    def p(self) -> int:
        return self.W.shape[0]

    @property
    def n(self) -> int:
        return self.x0.shape[0]

    @property
    def class_fractions(self) -> np.ndarray:
        """Empirical f_c = n_c / n, shape (K,)."""
        return np.bincount(np.asarray(self.labels), minlength=self.mixture.num_classes) / self.n


@float64
def realise(key: Key[Array, ""], mixture: GaussianMixture, model: RFModel, d: int) -> FiniteProblem:
    """Sample W ~ N(0,1)^{p×d}, centroids with Gram d·M, and n = round(ψ_n d) training points (n_c = π_c n).

    Example::

        >>> prob = realise(jax.random.key(0), GaussianMixture.create([.5, .5], [1., 4.]),
        ...                RFModel(4.0, 2.0, 0.01, "tanh"), d=50)
        >>> prob.W.shape, prob.x0.shape
        ((200, 50), (100, 50))
    """
    if int(d) < 1:
        raise ValueError(f"d must be a positive integer, got {d}")
    p, n = model.sizes(int(d))
    if p < 1 or n < 1:
        raise ValueError(f"psi_p*d and psi_n*d must give at least one neuron and one sample, got p={p}, n={n}")
    kw, kc, kx = jax.random.split(key, 3)
    W = jax.random.normal(kw, (p, d), dtype=jnp.float64)
    mu = mixture.centroids(kc, d)
    x0, labels = mixture.sample(kx, n, d, centroids=mu)
    return FiniteProblem(W=W, x0=x0, labels=labels, centroids=mu, mixture=mixture, model=model)


class FeatureMoments(NamedTuple):
    """Noise-averaged feature moments of a training set (float64).

    ``U`` (p, p) = (1/n) Σ_ν E_ξ φφᵀ,  ``V`` (p, d) = (1/n) Σ_ν E_ξ φ ξᵀ, and their class-c versions
    ``U_class`` (K, p, p), ``V_class`` (K, p, d) averaged over the n_c training points of class c only, so that
    U = Σ_c f_c U_class[c]. ``U_class``/``V_class`` are None when ``per_class=False``.
    """

    U: jax.Array
    V: jax.Array
    U_class: jax.Array | None
    V_class: jax.Array | None


@float64
def weighted_moments(moments: FeatureMoments, fractions, loss_weights) -> FeatureMoments:
    """The moments of the class-weighted DSM loss Σ_c f_c w_c L_c: U = Σ_c f_c w_c U_class[c], V likewise.

    ``fractions`` f (K,) the empirical n_c/n (``FiniteProblem.class_fractions``), ``loss_weights`` w (K,)
    (normalised Σ_c π_c w_c = 1, :func:`rfdiff.theory.loss_weights.normalise_loss_weights`; None returns
    ``moments`` unchanged). The per-class moments stay unweighted: the per-class losses are measured as before
    (``theory_notes/10_reweighting.md``).
    """
    if loss_weights is None:
        return moments
    if moments.U_class is None:
        raise ValueError("loss_weights need per-class moments (train_moments(..., per_class=True))")
    om = jnp.asarray(fractions, jnp.float64) * jnp.asarray(loss_weights, jnp.float64)
    if om.shape != (moments.U_class.shape[0],):
        raise ValueError(f"loss_weights must have {moments.U_class.shape[0]} entries, got {om.shape}")
    return FeatureMoments(jnp.tensordot(om, moments.U_class, 1), jnp.tensordot(om, moments.V_class, 1),
                          moments.U_class, moments.V_class)


def _preactivation_means(problem: FiniteProblem, x0):
    # mean of h = W̃ x_t over the noise: e^{-t} W̃ x0, shape (p, m)
    return jnp.exp(-problem.model.t) * (problem.W @ x0.T) / jnp.sqrt(problem.d)


def _mehler_order(act, means, std, cov, rtol, k_cap, n_nodes):
    """Smallest Mehler order whose two next terms are below ``rtol`` in relative Frobenius norm.

    Term k of the off-diagonal series is (cov^{∘k}/k!) ∘ (B_k B_kᵀ)/m with B_k = E σ^{(k)}; its Frobenius norm
    is estimated by ||cov^{∘k}/k!||_F · mean_i(b_k²) on a subsample of the points. Raises when no order up to
    ``k_cap`` reaches ``rtol`` (strongly correlated neurons at very small d).
    """
    sub = means[:, :: max(1, means.shape[1] // 32)]
    b = derivative_moments(act, sub, std, k_cap, n_nodes=n_nodes)  # (p, s, k_cap+1)
    amp = jnp.mean(b**2, axis=(0, 1))  # (k_cap+1,)
    off = cov - jnp.diag(jnp.diag(cov))
    # ||U||_F ≥ ||diag U||_F ≈ √p · mean_i E σ(h_i)²
    esq = gaussian_expectation(lambda h: act.fn(h) ** 2, sub, std, kinks=act.kinks, n_nodes=n_nodes)
    scale = jnp.sqrt(cov.shape[0]) * jnp.mean(esq)
    power = jnp.ones_like(off)
    est = []
    for k in range(k_cap + 1):
        est.append(float(jnp.linalg.norm(power) * amp[k] / scale))
        power = power * off / (k + 1)
    for k in range(k_cap - 1):
        if est[k + 1] < rtol and est[k + 2] < rtol:
            return k
    raise RuntimeError(f"Mehler series for the noise average did not converge by order {k_cap}: estimated "
                       f"relative residual {min(est[-2:]):.2e} > rtol {rtol:.0e}. The neurons are too correlated "
                       "(d too small for this diffusion time/variance); use method='monte_carlo'.")


def _mehler_second_moment(act, means, var_diag, cov, k_max, n_nodes, chunk, rtol=1e-9, k_cap=40):
    """Σ_ν E σ(h^ν) σ(h^ν)ᵀ for h^ν ~ N(means[:, ν], cov), by the Mehler series.

    Mehler/Price: for i ≠ j, E σ(h_i)σ(h_j) = Σ_k cov_ij^k/k! E σ^{(k)}(h_i) E σ^{(k)}(h_j); the diagonal
    E σ(h_i)² is computed directly. ``k_max=None`` picks the order from a residual estimate (``rtol``).
    Returns (sum (p, p), Σ_ν E σ'(h^ν) (p,)). Chunked over ν to bound memory.
    """
    p, m = means.shape
    std = jnp.sqrt(var_diag)[:, None]
    if k_max is None:
        k_max = _mehler_order(act, means, std, cov, rtol, k_cap, n_nodes)
    off = cov - jnp.diag(jnp.diag(cov))
    total = jnp.zeros((p, p))
    diag = jnp.zeros((p,))
    slope = jnp.zeros((p,))
    for s in range(0, m, chunk):
        mu = means[:, s:s + chunk]
        b = derivative_moments(act, mu, std, max(k_max, 1), n_nodes=n_nodes)  # (p, c, k+1)
        power = jnp.ones_like(off)
        for k in range(k_max + 1):
            total = total + power * (b[..., k] @ b[..., k].T)
            power = power * off / (k + 1)  # cov^{∘(k+1)}/(k+1)!
        diag = diag + jnp.sum(gaussian_expectation(lambda h: act.fn(h) ** 2, mu, std, kinks=act.kinks,
                                                   n_nodes=n_nodes), axis=1)
        slope = slope + jnp.sum(b[..., 1], axis=1)
    total = total - jnp.diag(jnp.diag(total)) + jnp.diag(diag)
    return total, slope


def _bivariate_second_moment(act, mean, cov, n_nodes: int = 48, rows: int = 16):
    """E σ(h_i) σ(h_j) for h ~ N(mean, cov), every pair by 2-D Gauss–Hermite quadrature, shape (p, p).

    h_i = m_i + s_i g₁, h_j = m_j + s_j (ρ_ij g₁ + √(1−ρ_ij²) g₂). Used when the Mehler series is too slow.
    """
    g, w = np.polynomial.hermite_e.hermegauss(n_nodes)
    g, w = jnp.asarray(g), jnp.asarray(w / np.sqrt(2 * np.pi))
    std = jnp.sqrt(jnp.diag(cov))
    rho = jnp.clip(cov / (std[:, None] * std[None, :]), -1.0, 1.0)
    p = mean.shape[0]
    fi = act.fn(mean[:, None] + std[:, None] * g[None, :])  # (p, N): σ(h_i) at g₁ nodes

    @jax.jit
    def block(fi_b, rho_b):
        # rho_b (r, p); inner over g₂ for each (i, j, g₁)
        hj = (mean[None, :, None, None] + std[None, :, None, None]
              * (rho_b[:, :, None, None] * g[None, None, :, None]
                 + jnp.sqrt(1 - rho_b**2)[:, :, None, None] * g[None, None, None, :]))
        inner = jnp.sum(act.fn(hj) * w[None, None, None, :], axis=-1)  # (r, p, N)
        return jnp.sum(fi_b[:, None, :] * inner * w[None, None, :], axis=-1)

    out = [block(fi[s:s + rows], rho[s:s + rows]) for s in range(0, p, rows)]
    tot = jnp.concatenate(out, axis=0)
    esq = gaussian_expectation(lambda h: act.fn(h) ** 2, mean, std, kinks=act.kinks)
    return tot - jnp.diag(jnp.diag(tot)) + jnp.diag(esq)


def _chunk_size(p, n_nodes, budget=2.5e7):
    return max(1, int(budget // (p * n_nodes)))


@float64
def train_moments(problem: FiniteProblem, method: str = "exact", *, per_class: bool = True,
                  k_max: int | None = None, n_noise: int = 64, n_nodes: int = 96,
                  key: Key[Array, ""] | None = None) -> FeatureMoments:
    """Noise-averaged moments U, V of the training set, per class (see :class:`FeatureMoments`).

    ``method``:

    * ``"exact"``: E_ξ done analytically. h^ν ~ N(e^{-t} W̃x^ν, Δ W̃W̃ᵀ); the off-diagonal of E_ξ φφᵀ by the
      Mehler series (order ``k_max``, or chosen so the estimated truncation error is < 1e-9 relative), the diagonal and
      V = √Δ diag(â) W̃ (Stein's lemma) exactly. This is "the true U".
    * ``"gaussian_equivalent"``: the Gaussian-equivalent model of ``theory_notes/02_gaussian_equivalence.md``
      with per-neuron coefficients at the realised shifts e^{-t} w̃_i·μ_c and row norms:
      φ ≃ μ0 + a e^{-t} W̃(x − μ_c) + v ω + (noise part), noise-averaged in closed form (``key`` draws ω).
    * ``"monte_carlo"``: ``n_noise`` noise draws per training point (``key`` required).
    """
    if method not in ("exact", "gaussian_equivalent", "monte_carlo"):
        raise ValueError(f"method must be 'exact', 'gaussian_equivalent' or 'monte_carlo', got {method!r}")
    act = get_activation(problem.model.activation)
    t = jnp.asarray(problem.model.t, jnp.float64)
    dlt = -jnp.expm1(-2 * t)
    d, p = problem.d, problem.p
    Wt = problem.W / jnp.sqrt(d)
    labels = np.asarray(problem.labels)
    K = problem.mixture.num_classes
    groups = [np.flatnonzero(labels == c) for c in range(K)] if per_class else [np.arange(problem.n)]
    Us, Vs = [], []
    for idx in groups:
        if idx.size == 0:
            Us.append(jnp.zeros((p, p)))
            Vs.append(jnp.zeros((p, d)))
            continue
        x = problem.x0[idx]
        if method == "exact":
            cov = dlt * (Wt @ Wt.T)
            tot, slope = _mehler_second_moment(act, _preactivation_means(problem, x), jnp.diag(cov), cov, k_max,
                                               n_nodes, _chunk_size(p, n_nodes))
            Us.append(tot / idx.size)
            Vs.append(jnp.sqrt(dlt) * (slope / idx.size)[:, None] * Wt)
        elif method == "monte_carlo":
            if key is None:
                raise ValueError("method='monte_carlo' needs a PRNG key")
            key, sub = jax.random.split(key)
            U, V = _monte_carlo_moments(act, problem, x, sub, n_noise, dlt)
            Us.append(U)
            Vs.append(V)
        else:
            if key is None:
                raise ValueError("method='gaussian_equivalent' needs a PRNG key (it draws the non-linear parts ω)")
            key, sub = jax.random.split(key)
            U, V = _ge_moments(act, problem, idx, sub, dlt)
            Us.append(U)
            Vs.append(V)
    if not per_class:
        return FeatureMoments(Us[0], Vs[0], None, None)
    f = jnp.asarray(problem.class_fractions)
    U_class, V_class = jnp.stack(Us), jnp.stack(Vs)
    return FeatureMoments(jnp.tensordot(f, U_class, 1), jnp.tensordot(f, V_class, 1), U_class, V_class)


def _monte_carlo_moments(act, problem, x, key, n_noise, dlt, chunk=256):
    d, p = problem.d, problem.p
    Wt = problem.W / jnp.sqrt(d)
    U = jnp.zeros((p, p))
    V = jnp.zeros((p, d))
    m = x.shape[0]
    xt0 = jnp.exp(-problem.model.t) * x
    for s in range(0, m, chunk):
        xs = xt0[s:s + chunk]
        for r in range(n_noise):
            key, sub = jax.random.split(key)
            xi = jax.random.normal(sub, xs.shape, dtype=jnp.float64)
            phi = act.fn((xs + jnp.sqrt(dlt) * xi) @ Wt.T)  # (c, p)
            U = U + phi.T @ phi
            V = V + phi.T @ xi
    return U / (m * n_noise), V / (m * n_noise)


def _ge_moments(act, problem, idx, key, dlt):
    """Gaussian-equivalent U, V for the training points ``idx`` (all of one class when per-class)."""
    d = problem.d
    Wt = problem.W / jnp.sqrt(d)
    t = problem.model.t
    labels = np.asarray(problem.labels)[idx]
    x = problem.x0[idx]
    rown2 = jnp.sum(Wt**2, axis=1)  # ||w̃_i||², ≈ 1 ± √(2/d)
    covd = problem.mixture.covariance_diagonal(d)  # (K, d)
    U = jnp.zeros((problem.p, problem.p))
    V = jnp.zeros((problem.p, d))
    for c in np.unique(labels):
        sel = labels == c
        xc = x[sel]
        shift = jnp.exp(-t) * (Wt @ problem.centroids[c])  # (p,)
        data_var = jnp.exp(-2 * t) * ((Wt**2) @ covd[c])  # per-neuron data variance
        co = ge_coefficients(act, shift, data_var, dlt * rown2)
        omega = jax.random.normal(jax.random.fold_in(key, int(c)), (problem.p, xc.shape[0]), dtype=jnp.float64)
        G = (co.mu0[:, None] + co.a[:, None] * (jnp.exp(-t) * (Wt @ (xc - problem.centroids[c][None, :]).T))
             + jnp.sqrt(jnp.clip(co.v2, 0.0))[:, None] * omega)
        Dc = co.a[:, None] * Wt
        U = U + G @ G.T + xc.shape[0] * (dlt * (Dc @ Dc.T) + jnp.diag(co.s2))
        V = V + xc.shape[0] * jnp.sqrt(dlt) * Dc
    return U / len(idx), V / len(idx)


@float64
def population_moments(problem: FiniteProblem, *, k_max: int | None = None, n_nodes: int = 96):
    """Exact class-population moments at time t: ``U_pop`` (K, p, p) = E_{x∼c} E_ξ φφᵀ and
    ``V_pop`` (K, p, d) = E_{x∼c} E_ξ φ ξᵀ = √Δ diag(E σ'(h)) W̃.

    For x ∼ class c, h = W̃ x_t ~ N(e^{-t} W̃μ_c, W̃ C_c W̃ᵀ) with C_c = e^{-2t} Cov_c + Δ I; the off-diagonal
    second moment follows from the Mehler series (order ``k_max`` or automatic), the diagonal exactly.
    """
    act = get_activation(problem.model.activation)
    t = jnp.asarray(problem.model.t, jnp.float64)
    dlt = -jnp.expm1(-2 * t)
    d = problem.d
    Wt = problem.W / jnp.sqrt(d)
    covd = problem.mixture.covariance_diagonal(d)
    Us, Vs = [], []
    for c in range(problem.mixture.num_classes):
        cov = (Wt * (jnp.exp(-2 * t) * covd[c] + dlt)[None, :]) @ Wt.T
        mean = (jnp.exp(-t) * (Wt @ problem.centroids[c]))[:, None]
        try:
            tot, slope = _mehler_second_moment(act, mean, jnp.diag(cov), cov, k_max, n_nodes, 1)
        except RuntimeError:
            # strongly correlated neurons (small d): the series converges too slowly; do each pair by 2-D
            # Gauss–Hermite quadrature instead (cost p² N², affordable exactly where this happens)
            if problem.p > 3000:
                raise
            tot = _bivariate_second_moment(act, mean[:, 0], cov)
            slope = derivative_moments(act, mean[:, 0], jnp.sqrt(jnp.diag(cov)), 1, n_nodes=n_nodes)[:, 1]
        Us.append(tot)
        Vs.append(jnp.sqrt(dlt) * slope[:, None] * Wt)
    return jnp.stack(Us), jnp.stack(Vs)


def loss_from_moments(A: Float[Array | np.ndarray, "d p"], U_X: Float[Array | np.ndarray, "p p"],
                      V_X: Float[Array | np.ndarray, "p d"], t: float | Float[Array, ""], p: int,
                      d: int) -> Float[Array, ""]:
    """DSM loss 1 + Δ/(pd) Tr(A U_X Aᵀ) + 2√Δ/(d√p) Tr(A V_X) for A (d, p), U_X (p, p), V_X (p, d)."""
    dlt = -jnp.expm1(-2 * jnp.asarray(t))
    return 1 + dlt / (p * d) * jnp.sum((A @ U_X) * A) + 2 * jnp.sqrt(dlt) / (d * jnp.sqrt(p)) * jnp.sum(A * V_X.T)
