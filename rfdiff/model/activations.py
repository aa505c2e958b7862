"""Activations and their Gaussian-equivalence coefficients, by deterministic quadrature in float64.

For a neuron with pre-activation ``h = m + c_x u + s_n η`` (shift ``m``, data part ``c_x u``, noise part
``s_n η``, ``u, η ~ N(0, 1)`` independent, ``Γ² = c_x² + s_n²``), the coefficients of the Gaussian-equivalent
feature (``theory_notes/02_gaussian_equivalence.md``) are::

    μ0 = E σ(m + Γ g)                         mean feature
    a  = E σ'(m + Γ g) = E[σ(m + Γ g) g] / Γ  linear coefficient (Stein), shared by data and noise
    K2 = E_u [ (E_η σ(m + c_x u + s_n η))² ]  second moment of the noise-averaged feature
    v² = K2 − μ0² − c_x² a²                   non-linear part that survives the noise average
    s² = E σ²(m + Γ g) − K2 − s_n² a²         non-linear part of the pure noise

The GE coefficients use a uniform (trapezoid) rule in g for smooth activations: for an integrand analytic in
a strip it converges geometrically with a rate set by the strip width, and tanh(m + Γg) has poles at
Im g = π/(2Γ), which Gauss–Hermite (nodes spread to ±√(4n)) resolves poorly once Γ ≳ 1.5. An activation with
kinks (ReLU) is not smooth, so there the Gaussian integral is split at the kinks and each smooth piece is done
by Gauss–Legendre on a range of ±``_TAIL`` standard deviations (tail mass < 1e-40). Derivative moments
``E σ^{(k)}(m + s g) = s^{-k} E[σ(m + s g) He_k(g)]`` (Gaussian integration by parts; Gauss–Hermite, which is
exact on the polynomial factor He_k) need no derivative of σ, so they hold for ReLU too.

Example::

    >>> from rfdiff.model.activations import ge_coefficients
    >>> c = ge_coefficients("tanh", shift=0.0, data_var=0.98, noise_var=0.0198)   # σ=1, t=0.01
    >>> round(float(c.a), 3)
    0.606
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special as jss
import numpy as np

from ..precision import float64

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from jaxtyping import Array, ArrayLike, Float
    from .mixture import GaussianMixture

__all__ = [
    "Activation",
    "get_activation",
    "ACTIVATIONS",
    "gaussian_expectation",
    "derivative_moments",
    "GECoefficients",
    "ge_coefficients",
    "class_coefficients",
]

_TAIL = 14.0  # integration range in standard deviations for piecewise rules
_TRAP_L = 8.0  # half-width of the trapezoid rule for smooth activations (tail mass < 2e-15)


class Activation(NamedTuple):
    """An elementwise activation: ``fn`` (jnp-traceable), a ``name`` and the locations of its ``kinks``."""

    name: str
    fn: Callable
    kinks: tuple = ()

    def __call__(self, x):
        return self.fn(x)


ACTIVATIONS: dict[str, Activation] = {
    "tanh": Activation("tanh", jnp.tanh),
    "relu": Activation("relu", lambda x: jnp.maximum(x, 0.0), kinks=(0.0,)),
    "erf": Activation("erf", jss.erf),
    "sigmoid": Activation("sigmoid", jax.nn.sigmoid),
    "silu": Activation("silu", jax.nn.silu),
    "linear": Activation("linear", lambda x: x),
}


def get_activation(spec: str | Callable | Activation) -> Activation:
    """Resolve an activation by name (``tanh, relu, erf, sigmoid, silu, linear``) or wrap a callable.

    A user callable must be elementwise and jnp-traceable; give it kinks by passing an :class:`Activation`.
    """
    if isinstance(spec, Activation):
        return spec
    if isinstance(spec, str):
        try:
            return ACTIVATIONS[spec.lower()]
        except KeyError:
            raise ValueError(f"unknown activation {spec!r}; choose one of {sorted(ACTIVATIONS)} "
                             "or pass a callable") from None
    if callable(spec):
        return Activation(getattr(spec, "__name__", "custom"), spec)
    raise TypeError(f"activation must be a name, a callable or an Activation, got {type(spec).__name__}")


# ---------------------------------------------------------------------------------------------- quadrature
def _hermite_rule(n: int):
    x, w = np.polynomial.hermite_e.hermegauss(n)  # weight exp(-x²/2)
    return jnp.asarray(x), jnp.asarray(w / np.sqrt(2 * np.pi))


def _legendre_rule(n: int):
    x, w = np.polynomial.legendre.leggauss(n)
    return jnp.asarray(x), jnp.asarray(w)


def _gauss_nodes(mean, std, kinks, n_nodes, presorted=False):
    """Nodes g (..., N) and weights (..., N) for E_g f(mean + std g), g ~ N(0, 1)."""
    mean = jnp.asarray(mean, dtype=jnp.float64)
    std = jnp.asarray(std, dtype=jnp.float64)
    mean, std = jnp.broadcast_arrays(mean, std)
    if not kinks:
        x, w = _hermite_rule(n_nodes)
        return jnp.broadcast_to(x, mean.shape + x.shape), jnp.broadcast_to(w, mean.shape + x.shape)
    # split [-_TAIL, _TAIL] at the kinks mapped to g-space; empty pieces get zero length
    xl, wl = _legendre_rule(n_nodes)
    # explicit rank alignment: the package runs under jax_numpy_rank_promotion="raise"
    xl, wl = (v.reshape((1,) * mean.ndim + v.shape) for v in (xl, wl))
    cuts = [jnp.clip((k - mean) / std, -_TAIL, _TAIL) for k in (kinks if presorted else sorted(kinks))]
    edges = [jnp.full(mean.shape, -_TAIL)] + cuts + [jnp.full(mean.shape, _TAIL)]
    gs, ws = [], []
    for lo, hi in zip(edges[:-1], edges[1:]):
        half = 0.5 * (hi - lo)[..., None]
        g = 0.5 * (hi + lo)[..., None] + half * xl
        gs.append(g)
        ws.append(half * wl * jnp.exp(-0.5 * g**2) / jnp.sqrt(2 * jnp.pi))
    return jnp.concatenate(gs, -1), jnp.concatenate(ws, -1)


@float64
def gaussian_expectation(fn: Callable, mean: Float[ArrayLike, "*b"], std: Float[ArrayLike, "*b"], *,
                         kinks: tuple = (), n_nodes: int = 200) -> Float[Array, "*b"]:
    """E f(mean + std·g) for g ~ N(0, 1), broadcasting over ``mean`` and ``std`` (float64)."""
    g, w = _gauss_nodes(mean, std, kinks, n_nodes)
    h = jnp.asarray(mean, jnp.float64)[..., None] + jnp.asarray(std, jnp.float64)[..., None] * g
    return jnp.sum(w * fn(h), axis=-1)


@float64
def derivative_moments(activation: str | Callable | Activation, mean: Float[ArrayLike, "*b"],
                       std: Float[ArrayLike, "*b"], k_max: int, *, n_nodes: int = 200) -> Float[Array, "*b k"]:
    """E σ^{(k)}(mean + std·g) for k = 0..k_max, shape (..., k_max + 1), via s^{-k} E[σ He_k(g)].

    Valid for any σ of polynomial growth (ReLU included) as long as ``std > 0``.
    """
    act = get_activation(activation)
    g, w = _gauss_nodes(mean, std, act.kinks, n_nodes)
    mean = jnp.asarray(mean, jnp.float64)
    std = jnp.asarray(std, jnp.float64)
    f = w * act.fn(mean[..., None] + std[..., None] * g)
    he = [jnp.ones_like(g), g]
    for k in range(1, k_max):
        he.append(g * he[k] - k * he[k - 1])  # He_{k+1} = g He_k − k He_{k−1}
    out = [jnp.sum(f * he[k], -1) / std**k for k in range(k_max + 1)]
    return jnp.stack(out, axis=-1)


class GECoefficients(NamedTuple):
    """Gaussian-equivalence coefficients (arrays broadcast over shifts / classes)."""

    mu0: jax.Array  # E σ(h)
    a: jax.Array  # E σ'(h)
    v2: jax.Array  # non-linear variance surviving the noise average
    s2: jax.Array  # non-linear variance of the pure noise
    second_moment: jax.Array  # E σ(h)²


def _trapezoid_rule(n: int, half_width: float = _TRAP_L):
    """Uniform (trapezoid) rule for E f(g), g ~ N(0, 1), on [−L, L]: nodes (n,), weights (n,).

    For f analytic in a strip |Im g| < δ the error is O(e^{−2πδ/h}) (h = 2L/(n − 1)) plus the tail mass
    O(e^{−L²/2}). For σ(m + Γg) with tanh, δ = π/(2Γ): at n = 128, L = 8 the error is ~e^{−39} at Γ = 2 and
    ~1e-7 at Γ = 5, where Gauss–Hermite with the same n is only ~1e-6 accurate already at Γ = 2 (its nodes
    spread to ±√(4n) and are too sparse near the origin; notes 02, "Quadrature").
    """
    x = np.linspace(-half_width, half_width, n)
    w = (x[1] - x[0]) * np.exp(-0.5 * x**2) / np.sqrt(2 * np.pi)
    w[[0, -1]] *= 0.5
    return jnp.asarray(x), jnp.asarray(w)


def _coefficient_nodes(act: Activation, mean, std, n_nodes: int):
    """Nodes/weights (..., N) for E f(mean + std·g): trapezoid for smooth σ, kink-split Legendre otherwise."""
    if act.kinks:
        return _gauss_nodes(mean, std, act.kinks, n_nodes)
    mean = jnp.asarray(mean, dtype=jnp.float64)
    x, w = _trapezoid_rule(n_nodes)
    shape = jnp.broadcast_shapes(mean.shape, jnp.shape(std)) + x.shape
    return jnp.broadcast_to(x, shape), jnp.broadcast_to(w, shape)


@float64
def ge_coefficients(activation: str | Callable | Activation, shift: Float[ArrayLike, "*b"],
                    data_var: Float[ArrayLike, "*b"], noise_var: Float[ArrayLike, "*b"], *,
                    n_nodes: int = 128) -> GECoefficients:
    """Coefficients (μ0, a, v², s², Eσ²) for ``h = shift + c_x u + s_n η``, ``c_x² = data_var``,
    ``s_n² = noise_var`` (see module docstring). Broadcasts over all three arguments; float64.

    One nested rule over (u, η) (trapezoid for smooth σ, kink-split Gauss–Legendre for ReLU) gives everything.
    The non-linear parts are computed as integrals of squared residuals,

        v² = E_u (σ̃(u) − μ0 − c_x a u)²,     σ̃(u) = E_η σ(m + c_x u + s_n η),
        s² = E_{u,η} (σ(h) − σ̃(u) − s_n a η)²,

    which equal the definitions in the module docstring (Stein: E[σ̃ u] = c_x a, E[σ(h) η] = s_n a) but are
    non-negative by construction and free of the cancellation Eσ² − K2 − s_n²a² (s² is O(Δ_t) while Eσ² is
    O(1)). With the default 128 nodes the tanh coefficients at σ = 2, t = 0.01 agree with an adaptive mpmath
    quadrature to < 1e-9 relative (tests); Gauss–Hermite with 48 nodes was 4% off in s² there, which is what
    biased the theory's τ_mem (notes 04 §6).
    """
    act = get_activation(activation)
    shift = jnp.asarray(shift, jnp.float64)
    cx2 = jnp.asarray(data_var, jnp.float64)
    sn2 = jnp.asarray(noise_var, jnp.float64)
    shift, cx2, sn2 = jnp.broadcast_arrays(shift, cx2, sn2)
    # The nested rule holds (batch, N_u, N_η) arrays: 4000 shifts at 200 nodes are 160 M numbers (1.3 GB) per
    # intermediate, which put the figures script at a 5.6 GB peak. Above a budget the batch is done in chunks by
    # lax.map (each element's sums are the same, so the result does not change; under jit too).
    n_u = len(act.kinks) * 9 * max(n_nodes // 4, 16) if act.kinks else n_nodes
    per_element = n_u * n_nodes
    size = int(np.prod(shift.shape))
    chunk = max(1, _CHUNK_ELEMENTS // per_element)
    if size > chunk:
        flat = (shift.reshape(-1), cx2.reshape(-1), sn2.reshape(-1))
        out = jax.lax.map(lambda x: _ge_coefficients(act, x[0], x[1], x[2], n_nodes), flat, batch_size=chunk)
        return GECoefficients(*(o.reshape(shift.shape) for o in out))
    return _ge_coefficients(act, shift, cx2, sn2, n_nodes)


_CHUNK_ELEMENTS = 1 << 22  # numbers per (batch, N_u, N_η) intermediate of ge_coefficients: 32 MB in float64


def _ge_coefficients(act: Activation, shift, cx2, sn2, n_nodes: int) -> GECoefficients:
    """The body of :func:`ge_coefficients` on broadcast float64 arrays (one chunk)."""
    cx, sn = jnp.sqrt(cx2), jnp.sqrt(sn2)
    gam = jnp.sqrt(cx2 + sn2)
    # μ0, a and Eσ² from the one-dimensional law h = m + Γg; a by Stein, a = E[σ(h) g]/Γ (no σ' needed)
    g, wg = _coefficient_nodes(act, shift, gam, n_nodes)
    fg = act.fn(shift[..., None] + gam[..., None] * g)
    mu0 = jnp.sum(wg * fg, -1)
    a = jnp.sum(wg * fg * g, -1) / gam
    esq = jnp.sum(wg * fg**2, -1)
    # outer rule over u. For kinked σ the noise-averaged feature bends on the scale s_n near a kink k0, where a
    # global rule converges slowly (1e-6..1e-4 errors for ReLU), so the outer integral is split at k0 + j·s_n
    # (j = 0, ±1, ±2, ±4, ±8) and done piecewise by Gauss–Legendre (reaches the closed forms to 1e-12).
    if act.kinks:
        offs = (-8, -4, -2, -1, 0, 1, 2, 4, 8)
        brk = [k0 + j * sn for k0 in sorted(act.kinks) for j in offs]
        u, wu = _gauss_nodes(shift, cx, brk, max(n_nodes // 4, 16), presorted=True)
    else:
        u, wu = _coefficient_nodes(act, shift, cx, n_nodes)
    inner_mean = shift[..., None] + cx[..., None] * u  # (..., Nu)
    eta, weta = _coefficient_nodes(act, inner_mean, sn[..., None], n_nodes)  # (..., Nu, Nη)
    f = act.fn(inner_mean[..., None] + sn[..., None, None] * eta)
    smooth = jnp.sum(weta * f, -1)  # σ̃(u), (..., Nu)
    lin = mu0[..., None] + (cx * a)[..., None] * u
    v2 = jnp.sum(wu * (smooth - lin) ** 2, -1)
    res = f - smooth[..., None] - (sn * a)[..., None, None] * eta
    s2 = jnp.sum(wu * jnp.sum(weta * res**2, -1), -1)
    return GECoefficients(mu0=mu0, a=a, v2=v2, s2=s2, second_moment=esq)


@float64
def class_coefficients(activation: str | Callable | Activation, mixture: GaussianMixture,
                       t: float | Float[ArrayLike, ""], shifts: float | Float[ArrayLike, "*b K"] = 0.0, *,
                       n_nodes: int = 128) -> GECoefficients:
    """Coefficients of every class at diffusion time ``t``; ``shifts`` broadcast against the class axis.

    The data variance of class c is ``c_x² = e^{-2t} Tr Cov_c/d`` and the noise variance ``Δ_t``. With
    ``shifts`` of shape (..., K) (neuron shifts ``m_ic = e^{-t} w_i·μ_c/√d``) the result is (..., K).
    """
    t = jnp.asarray(t, jnp.float64)
    cx2 = jnp.exp(-2 * t) * mixture.class_variance
    sn2 = -jnp.expm1(-2 * t)
    return ge_coefficients(activation, shifts, cx2, sn2, n_nodes=n_nodes)
