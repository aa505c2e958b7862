"""Per-class speciation times of the backward diffusion: theory (closed forms, exact law, spinodal, Biroli).

With the exact score the backward process reproduces the forward joint law of (x_t, class of x_0), so the class
posterior ``P(c | x_t)`` is the committor: the probability that a trajectory passing through x_t ends in c.
For x_t drawn from class c (``x_t = m_c + Γ_c z``, ``m_c = e^{-t}μ_c``, ``Γ_c² = e^{-2t}σ_c² + Δ_t``) the
log-odds against c' is (theory_notes/05_speciation.md, eq. (2))::

    ℓ_cc' = log(π_c/π_c') + (ρ−1)/2 ||z||² + (Γ_c/Γ_c'²) z·δ + ||δ||²/(2Γ_c'²) − (d/2) log ρ,
    ρ = Γ_c²/Γ_c'²,  δ = m_c − m_c',
    E ℓ_cc' = log(π_c/π_c') + KL_cc'(t),   KL_cc' = (d/2)(ρ − 1 − log ρ) + ||δ||²/(2Γ_c'²),
    Var ℓ_cc' = d(ρ−1)²/2 + Γ_c²||δ||²/Γ_c'⁴.

Two per-class statistics of ``P(c | x_t)`` over ``x_t ~ p_t(·|c)`` are computed:

* ``"median"``: the median of ``P(c|x_t)`` (the reference definition, threshold θ = 0.9 by default);
* ``"clone"``: ``φ_c(t) = E[P(c|x_t)]``, the probability that two independent clones branched at t end in the
  same class given that one ends in c (cloning protocol; φ(t) = Σ_c π_c φ_c(t) is Biroli et al.'s φ).

The speciation time ``t_S,c(θ) = sup{t : statistic_c(t) ≥ θ}`` (``+inf`` when π_c ≥ θ: committed from the
start; ``nan`` when θ is never reached for t > 0). Methods: ``"gaussian"`` treats ℓ as Gaussian with the exact
mean and variance (exact for equal variances, K = 2); ``"exact"`` samples the exact law of the posterior in
reduced coordinates (K centroid directions + a χ²_{d−r} radius), at a cost independent of d.

Example::

    >>> mix = GaussianMixture.create([0.99, 0.01], [1., 1.]).with_strong_centroids([1., 1.], [[1, -1], [-1, 1]])
    >>> speciation_times(mix, d=1024, theta=0.9)   # majority committed from the start, minority at 2.854
    array([       inf, 2.85441141])

References: Biroli, Bonnaire, de Bortoli, Mézard (2024), *Dynamical regimes of diffusion models*
(arXiv:2402.18491), t_S = ½ log Λ; theory_notes/05_speciation.md for the derivations.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import optimize, special

from ..model.mixture import GaussianMixture

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from jaxtyping import ArrayLike, Float

__all__ = [
    "log_odds_moments",
    "posterior_statistic",
    "speciation_times",
    "speciation_time_closed_form",
    "variance_only_time",
    "spinodal_beta",
    "spinodal_time",
    "biroli_time",
    "top_covariance_eigenvalue",
    "phi_symmetric",
    "biroli_phi_threshold",
]

_STATISTICS = ("median", "clone")
_METHODS = ("gaussian", "exact")
_GH = np.polynomial.hermite_e.hermegauss(121)  # probabilists' Gauss–Hermite nodes/weights (Σ w = √(2π))


# ---------------------------------------------------------------------------------------------- checks
def _check_mixture(mixture: GaussianMixture) -> None:
    if not mixture.is_isotropic:
        raise ValueError("speciation theory needs isotropic classes (levels = 1); got a structured covariance")


def _check_d(d) -> int:
    if int(d) != d or d < 1:
        raise ValueError(f"d must be a positive integer, got {d}")
    return int(d)


def _check_t(t) -> np.ndarray:
    t = np.asarray(t, dtype=np.float64)
    if not np.all(np.isfinite(t)) or np.any(t <= 0):
        raise ValueError(f"t must be positive and finite, got {t}")
    return t


def _check_theta(theta) -> float:
    if not 0 < theta < 1:
        raise ValueError(f"theta must lie in (0, 1), got {theta}")
    return float(theta)


def _pair_arrays(mixture: GaussianMixture, d: int):
    """log π (K,), σ² (K,), ||μ_c − μ_c'||² (K, K) at dimension d."""
    m = np.asarray(mixture.centroid_gram, dtype=np.float64)
    dg = np.diag(m)
    sq = d * np.clip(dg[:, None] + dg[None, :] - 2.0 * m, 0.0, None)
    with np.errstate(divide="ignore"):
        logp = np.log(np.asarray(mixture.proportions, dtype=np.float64))
    return logp, np.asarray(mixture.class_variance, dtype=np.float64), sq


# ---------------------------------------------------------------------------------------------- moments
def _moments(arrays, t: np.ndarray, d: int):
    """Vectorised (4)–(5) of the notes: mean and variance of ℓ_cc', shape t.shape + (K, K)."""
    logp, s2, sq = arrays
    e2t = np.exp(-2.0 * t)[..., None]
    g2 = e2t * s2 - np.expm1(-2.0 * t)[..., None]  # Γ_c², (..., K)
    rho = g2[..., :, None] / g2[..., None, :]
    dsq = e2t[..., None] * sq  # ||δ||²
    kl = 0.5 * d * (rho - 1.0 - np.log(rho)) + dsq / (2.0 * g2[..., None, :])
    mean = logp[:, None] - logp[None, :] + kl
    var = 0.5 * d * (rho - 1.0) ** 2 + g2[..., :, None] * dsq / g2[..., None, :] ** 2
    return mean, var


def log_odds_moments(mixture: GaussianMixture, t: float, d: int) -> tuple[Float[np.ndarray, "K K"], Float[np.ndarray, "K K"]]:
    """Mean and variance of ℓ_cc' = log[π_c p_t(x|c) / (π_c' p_t(x|c'))] for x ~ p_t(·|c): two (K, K) arrays.

    ``mean[c, c'] = log(π_c/π_c') + KL(p_t(·|c) ‖ p_t(·|c'))`` (zero on the diagonal).
    """
    _check_mixture(mixture)
    d = _check_d(d)
    return _moments(_pair_arrays(mixture, d), _check_t(t), d)


# ---------------------------------------------------------------------------------------------- exact law
class _ReducedSampler:
    """Exact law of (log π_c' + log N(x; m_c', Γ_c'²I))_c' for x ~ class c, in r ≤ K reduced coordinates.

    Centroids μ = √d R with M = R Rᵀ (R of shape (K, r)); z = (z_∥ ∈ R^r, ||z_⊥||² ~ χ²_{d−r}). The same
    draws serve every t (common random numbers), so the statistics are smooth in t and root-finding works.
    """

    def __init__(self, mixture: GaussianMixture, d: int, n_mc: int, seed: int):
        m = np.asarray(mixture.centroid_gram, dtype=np.float64)
        ev, evec = np.linalg.eigh(m)
        keep = ev > 1e-12 * max(1.0, np.abs(ev).max())
        self.R = np.sqrt(d) * evec[:, keep] * np.sqrt(ev[keep])  # (K, r): μ in an orthonormal basis
        r = self.R.shape[1]
        if d <= r:
            raise ValueError(f"d={d} must exceed the rank {r} of the centroid Gram matrix")
        rng = np.random.default_rng(seed)
        k = mixture.num_classes
        self.z = rng.standard_normal((k, n_mc, r))
        self.q = rng.chisquare(d - r, size=(k, n_mc))  # ||z_⊥||²
        self.d = d
        self.logp, self.s2, _ = _pair_arrays(mixture, d)

    def log_posterior(self, t: float, c: int) -> np.ndarray:
        """log P(· | x_t) for the n_mc draws of x_t ~ p_t(·|c): shape (n_mc, K)."""
        g2 = np.exp(-2.0 * t) * self.s2 - np.expm1(-2.0 * t)
        m = np.exp(-t) * self.R  # (K, r)
        g = np.sqrt(g2[c])
        xpar = m[c] + g * self.z[c]  # (n_mc, r)
        sqd = np.sum((xpar[:, None, :] - m[None, :, :]) ** 2, axis=-1) + g2[c] * self.q[c][:, None]
        logits = self.logp - 0.5 * sqd / g2 - 0.5 * self.d * np.log(g2)
        return logits - special.logsumexp(logits, axis=-1, keepdims=True)


# ---------------------------------------------------------------------------------------------- statistics
def posterior_statistic(mixture: GaussianMixture, t: float | Float[ArrayLike, "T"], d: int, statistic: str = "median",
                        method: str = "gaussian", n_mc: int = 100_000, seed: int = 0) -> Float[np.ndarray, "*T K"]:
    """Per-class statistic of P(c | x_t) over x_t ~ p_t(·|c), shape (len(t), K) (or (K,) for scalar t).

    ``statistic="median"``: median of P(c|x_t); ``"clone"``: φ_c(t) = E P(c|x_t) (clone agreement).
    ``method="gaussian"``: ℓ_cc' Gaussian with exact moments (K = 2; median = logistic(E ℓ), φ_c by
    121-node Gauss–Hermite); ``"exact"``: Monte Carlo over the exact reduced law (any K; ``n_mc`` draws).
    """
    _check_mixture(mixture)
    d = _check_d(d)
    if statistic not in _STATISTICS:
        raise ValueError(f"statistic must be one of {_STATISTICS}, got {statistic!r}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    ts = _check_t(t)
    scalar = ts.ndim == 0
    ts = np.atleast_1d(ts)
    k = mixture.num_classes
    out = np.empty((ts.size, k))
    if method == "gaussian":
        if k != 2:
            raise ValueError("method='gaussian' is for K = 2 classes; use method='exact' for K > 2")
        x, w = _GH
        mean, var = _moments(_pair_arrays(mixture, d), ts, d)  # (T, 2, 2)
        mu = np.stack([mean[:, 0, 1], mean[:, 1, 0]], axis=1)  # (T, 2)
        sd = np.sqrt(np.stack([var[:, 0, 1], var[:, 1, 0]], axis=1))
        if statistic == "median":
            out[:] = special.expit(mu)
        else:
            out[:] = special.expit(mu[..., None] + sd[..., None] * x) @ w / np.sqrt(2 * np.pi)
    else:
        if int(n_mc) != n_mc or n_mc < 100:
            raise ValueError(f"n_mc must be an integer >= 100, got {n_mc}")
        sampler = _ReducedSampler(mixture, d, int(n_mc), seed)
        for i, ti in enumerate(ts):
            for c in range(k):
                pc = np.exp(sampler.log_posterior(ti, c)[:, c])
                out[i, c] = np.median(pc) if statistic == "median" else pc.mean()
    return out[0] if scalar else out


def _time_scale(mixture: GaussianMixture, d: int) -> float:
    # a time beyond which every class signal e^{-2t}||Δμ||², √d e^{-2t}|Δσ²| is far below 1
    _, s2, sq = _pair_arrays(mixture, d)
    sig = 1.0 + sq.max() + np.sqrt(d) * (np.ptp(s2) + 1.0)
    return 0.5 * np.log(sig) + 6.0


def speciation_times(mixture: GaussianMixture, d: int, theta: float = 0.9, statistic: str = "median",
                     method: str = "gaussian", t_min: float = 1e-4, num_grid: int | None = None,
                     n_mc: int = 100_000, seed: int = 0) -> Float[np.ndarray, "K"]:
    """t_S,c = sup{t : statistic_c(t) ≥ θ} for every class, shape (K,).

    ``+inf`` when π_c ≥ θ (the statistic tends to π_c as t → ∞, the class is committed from the start);
    ``nan`` when the statistic stays below θ down to ``t_min``. The largest crossing is bracketed on a
    geometric grid from a d-dependent horizon down to ``t_min`` (``num_grid`` points: 400 for the Gaussian
    method, 60 for the Monte Carlo one) and refined with Brent's method.
    """
    if num_grid is None:
        num_grid = 400 if method == "gaussian" else 60
    theta = _check_theta(theta)
    d = _check_d(d)
    if not t_min > 0:
        raise ValueError(f"t_min must be positive, got {t_min}")
    if int(num_grid) != num_grid or num_grid < 10:
        raise ValueError(f"num_grid must be an integer >= 10, got {num_grid}")
    t_hi = _time_scale(mixture, d)
    grid = np.geomspace(t_hi, t_min, int(num_grid))
    kw = dict(d=d, statistic=statistic, method=method, n_mc=n_mc, seed=seed)
    vals = posterior_statistic(mixture, grid, **kw)  # (G, K)
    props = np.asarray(mixture.proportions)
    out = np.full(mixture.num_classes, np.nan)
    for c in range(mixture.num_classes):
        if props[c] >= theta:
            out[c] = np.inf
            continue
        above = np.nonzero(vals[:, c] >= theta)[0]
        if above.size == 0:
            continue
        j = above[0]
        if j == 0:  # already above θ at the horizon although π_c < θ: the horizon is too short
            raise ValueError(f"class {c}: statistic ≥ θ at the horizon t={t_hi:.3g}; increase it")
        f = lambda s, c=c: posterior_statistic(mixture, s, **kw)[c] - theta  # noqa: E731
        out[c] = optimize.brentq(f, grid[j], grid[j - 1], xtol=1e-10)
    return out


# ---------------------------------------------------------------------------------------------- closed forms
def speciation_time_closed_form(sq_dist: Float[ArrayLike, "*b"], log_prior_ratio: Float[ArrayLike, "*b"],
                                theta: float = 0.9, variance: float = 1.0) -> Float[np.ndarray, "*b"]:
    """Closed form for two classes of equal variance σ²: E ℓ = log(π_c/π_c') + e^{-2t}||Δμ||²/(2Γ²) = logit θ.

    With R = logit θ − log(π_c/π_c') > 0 and u = e^{-2t}: u = 2R/(||Δμ||² − 2R(σ² − 1)), t = −½ log u.
    Returns ``+inf`` for R ≤ 0 and ``nan`` if u ∉ (0, 1) (θ not reached for t > 0). Vectorised.
    """
    theta = _check_theta(theta)
    sq = np.asarray(sq_dist, dtype=np.float64)
    r = special.logit(theta) - np.asarray(log_prior_ratio, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        u = 2.0 * r / (sq - 2.0 * r * (variance - 1.0))
        t = np.where(r <= 0, np.inf, np.where((u > 0) & (u < 1), -0.5 * np.log(u), np.nan))
    return t


def variance_only_time(d: int, variances: Float[ArrayLike, "2"], log_prior_ratio: float | Float[ArrayLike, "*b"] = 0.0,
                       theta: float = 0.9) -> Float[np.ndarray, "*b"]:
    """Large-t asymptote for zero centroids: KL ≈ d e^{-4t}(σ_c² − σ_c'²)²/4 = logit θ − log(π_c/π_c').

    t ≈ ¼ log[d (σ_c² − σ_c'²)² / (4 R)] — the ¼ log d law (KL expanded to second order in ρ − 1).
    """
    theta = _check_theta(theta)
    s = np.asarray(variances, dtype=np.float64)
    r = special.logit(theta) - np.asarray(log_prior_ratio, dtype=np.float64)
    with np.errstate(divide="ignore"):
        return np.where(r <= 0, np.inf, 0.25 * np.log(_check_d(d) * (s[0] - s[1]) ** 2 / (4.0 * r)))


def spinodal_beta(h: float) -> float:
    """β_sp(h): the minority well of U(y) = y²/(2β) − log cosh(y + h) exists iff β > β_sp.

    Tangency of y/β = tanh(y + h) gives m = √(1 − 1/β) and h = β m − artanh m; β_sp(0) = 1.
    """
    h = abs(float(h))
    if h == 0.0:
        return 1.0
    g = lambda b: b * np.sqrt(1 - 1 / b) - np.arctanh(np.sqrt(1 - 1 / b)) - h  # noqa: E731
    hi = 2.0
    while g(hi) < 0:
        hi *= 2.0
    return optimize.brentq(g, 1.0 + 1e-15, hi, xtol=1e-13)


def spinodal_time(mixture: GaussianMixture, d: int) -> float:
    """Time at which the minority basin appears along Δμ (two classes, equal variances σ²).

    β = e^{-2t}||Δμ||²/(4Γ²) with Γ² = 1 + e^{-2t}(σ² − 1): u = 4β_sp/(||Δμ||² − 4β_sp(σ² − 1)).
    For h = 0 this is ½ log(||Δμ||²/4) = Biroli's ½ log Λ (Λ − σ² = ||Δμ||²/4 for ±μ).
    """
    _check_mixture(mixture)
    logp, s2, sq = _pair_arrays(mixture, _check_d(d))
    if mixture.num_classes != 2 or not np.isclose(s2[0], s2[1]):
        raise ValueError("spinodal_time needs K = 2 classes of equal variance")
    b = spinodal_beta(0.5 * (logp[0] - logp[1]))
    u = 4.0 * b / (sq[0, 1] - 4.0 * b * (s2[0] - 1.0))
    return float(-0.5 * np.log(u)) if 0 < u < 1 else float("nan")


def top_covariance_eigenvalue(mixture: GaussianMixture, d: int) -> float:
    """Λ = largest eigenvalue of the data covariance Σ_c π_c σ_c² I + Σ_c π_c (μ_c − μ̄)(μ_c − μ̄)ᵀ."""
    _check_mixture(mixture)
    d = _check_d(d)
    p = np.asarray(mixture.proportions, dtype=np.float64)
    m = np.asarray(mixture.centroid_gram, dtype=np.float64) * d
    h = np.eye(p.size) - np.outer(np.ones(p.size), p)  # rows: μ_c − μ̄ in terms of μ
    gc = h @ m @ h.T
    b = np.sqrt(p)[:, None] * gc * np.sqrt(p)[None, :]  # same non-zero spectrum as the scatter matrix
    return float(p @ np.asarray(mixture.class_variance) + max(np.linalg.eigvalsh(b).max(), 0.0))


def biroli_time(mixture: GaussianMixture, d: int) -> float:
    """Biroli et al.'s speciation time t_S = ½ log Λ."""
    return 0.5 * float(np.log(top_covariance_eigenvalue(mixture, d)))


def phi_symmetric(s: Float[ArrayLike, "*b"]) -> Float[np.ndarray, "*b"]:
    """Balanced ±μ, σ = 1: φ(t) = ∫Dz ½[1 + tanh(a + √a z)] with a = ||μ||² e^{-2t} = e^{-2(t − t_S)}.

    ``s`` = t − ½ log||μ||²; the curve is universal in s (Biroli et al., symmetric two-class mixture).
    """
    a = np.exp(-2.0 * np.asarray(s, dtype=np.float64))
    x, w = _GH
    vals = 0.5 * (1.0 + np.tanh(a[..., None] + np.sqrt(a)[..., None] * x))
    return vals @ w / np.sqrt(2 * np.pi)


def biroli_phi_threshold() -> float:
    """θ_B = φ at t = ½ log||μ||² (a = 1): the clone-agreement threshold that reproduces t_S = ½ log Λ."""
    return float(phi_symmetric(0.0))
