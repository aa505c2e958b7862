"""Measuring per-class speciation in simulated backward diffusions: posterior along trajectories, cloning.

Two measurements, both usable with the exact mixture score or with a learned ``score_fn(x, t)``:

* **Posterior along trajectories.** Run the backward SDE, record ``log P(c | x_t)`` under the true mixture at
  every grid time, label each trajectory by the argmax of its posterior at ``t_min``, and for each class c
  take the median over trajectories ending in c of ``P(c | x_t)``; ``t_S,c = sup{t : median ≥ θ}`` with
  linear interpolation in t between grid times. Error bars: bootstrap over trajectories of the class.
* **Cloning** (Biroli et al. 2024). Run parents from T, branch each into ``n_clones`` copies at a time t,
  continue the copies independently, classify them; ``φ_c(t)`` = probability that a second copy ends in c
  given that a first one does = Σ_p n_pc(n_pc − 1) / Σ_p n_pc(m − 1) (n_pc: copies of parent p ending in
  c, m copies per parent). Theory: ``φ_c(t) = E_{x ~ p_t(·|c)} P(c | x)`` (:mod:`rfdiff.speciation`).

Example::

    >>> mu = mix.centroids(jax.random.key(1), 256)                                      # doctest: +SKIP
    >>> tr = simulate_posteriors(mixture_score_fn(mix, mu), mix, mu, jax.random.key(0),
    ...                          geometric_grid(8., 1e-3, 300), n=4000)                 # doctest: +SKIP
    >>> posterior_speciation_times(tr, theta=0.9)["times"]                              # doctest: +SKIP
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ..io import atomic_write_text, changed_inputs, content_key, key_digests, load_result, save_result
from ..model.mixture import GaussianMixture
from .sampling import _check_grid, backward_sde, posterior_observer

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from jaxtyping import Array, ArrayLike, DTypeLike, Float, Key
    from .sampling import ScoreFn

__all__ = [
    "PosteriorTrajectories",
    "simulate_posteriors",
    "crossing_time",
    "posterior_speciation_times",
    "cloning",
    "speciation_vs_ratio",
]


class PosteriorTrajectories(NamedTuple):
    """``t`` (R,) decreasing record times; ``log_post`` (R, n, K) float32 log P(c | x_t); ``labels`` (n,)
    final classes (argmax of the posterior at the last grid time)."""

    t: np.ndarray
    log_post: np.ndarray
    labels: np.ndarray


def _check_pos_int(name, v, minimum=1):
    if int(v) != v or v < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {v}")
    return int(v)


def _chunk_key_inputs(mixture, centroids, key, ts, n, chunk, method, dtype, score_key) -> dict:
    """Everything the trajectories of :func:`simulate_posteriors` depend on (the checkpoint's key inputs)."""
    return {"score": "exact mixture score" if score_key is None else score_key, "mixture": mixture,
            "centroids": centroids, "key": key, "t_grid": ts, "n": n, "chunk": chunk, "method": method,
            "dtype": str(jnp.dtype(dtype))}


def _open_checkpoint(folder: Path, inputs: dict, resume: bool | None) -> str:
    """Key ``folder`` by ``inputs``: keep matching chunks, clear stale ones (or raise with ``resume=True``).

    ``key.json`` holds the :func:`rfdiff.io.content_key` of the inputs and their per-name digests, so that a
    mismatch names what changed; every chunk file carries the key too and is reused only if it matches.
    """
    key = content_key(**inputs)
    digests = key_digests(**inputs)
    meta = folder / "key.json"
    stored = json.loads(meta.read_text()) if meta.is_file() else None
    stale = resume is False or (stored is not None and stored.get("key") != key)
    if stale and resume is True:
        what = ", ".join(changed_inputs((stored or {}).get("inputs"), digests))  # stale + resume: stored exists
        raise ValueError(f"cannot resume {folder}: its trajectories were computed for other inputs (changed: "
                         f"{what}); drop resume to recompute")
    if stale or stored is None:
        _remove_checkpoint(folder)
        atomic_write_text(meta, json.dumps({"key": key, "inputs": digests}, indent=1))
    return key


def _remove_checkpoint(folder: Path) -> None:
    """Delete the files a chunk checkpoint writes (and the folder once empty); leaves anything else alone."""
    if not folder.is_dir():
        return
    for f in [*folder.glob("chunk_*.npz"), folder / "key.json"]:
        f.unlink(missing_ok=True)
    if not any(folder.iterdir()):
        folder.rmdir()


def simulate_posteriors(score_fn: ScoreFn | None, mixture: GaussianMixture, centroids: Float[ArrayLike, "K d"],
                        key: Key[Array, ""], t_grid: Float[ArrayLike, "N+1"], n: int, *,
                        chunk: int = 4096, method: str = "exponential", dtype: DTypeLike = jnp.float32,
                        checkpoint_dir: str | Path | None = None, score_key=None, resume: bool | None = None,
                        keep_checkpoint: bool = False, progress: bool = False) -> PosteriorTrajectories:
    """Backward-SDE trajectories from N(0, I_d) with their class posteriors at every time of ``t_grid[1:]``.

    ``score_fn(x, t)``; ``None`` is the exact score :func:`rfdiff.simulate.sampling.mixture_score_fn` of
    (``mixture``, ``centroids``). Trajectories run in chunks of ``chunk``; chunk i uses
    ``jax.random.fold_in(key, i)``, so the result depends only on (key, n, chunk).

    With ``checkpoint_dir`` each finished chunk is written atomically and reused by a rerun whose content
    key matches: key inputs (mixture leaves, centroids, key, t grid, n, chunk, method, dtype, the score —
    ``score_key``, which a learned ``score_fn`` must supply — and the package version). A killed run resumes
    bit-identically. On a key mismatch the chunks are recomputed (default ``resume=None``), or a ValueError
    names the changed inputs (``resume=True``); ``resume=False`` always recomputes. The checkpoint is removed
    after a completed run unless ``keep_checkpoint`` (then it is a content-addressed cache).
    """
    ts = _check_grid(t_grid)
    n = _check_pos_int("n", n)
    chunk = _check_pos_int("chunk", chunk)
    mu = jnp.asarray(centroids)
    d = mu.shape[-1]
    if score_fn is None:
        from .sampling import mixture_score_fn

        score_fn = mixture_score_fn(mixture, mu)
    elif checkpoint_dir is not None and score_key is None:
        raise ValueError("checkpoint_dir with a custom score_fn needs score_key (what determines the score, e.g. "
                         "the model's weights), or pass score_fn=None for the exact mixture score")
    folder = None if checkpoint_dir is None else Path(checkpoint_dir)
    ckey = None if folder is None else _open_checkpoint(
        folder, _chunk_key_inputs(mixture, mu, key, ts, n, chunk, method, dtype, score_key), resume)
    observe = posterior_observer(mixture, mu)
    starts = range(0, n, chunk)
    it = starts
    if progress:
        from tqdm import tqdm

        it = tqdm(starts, desc="backward SDE chunks")
    parts = []
    for i, s in enumerate(it):
        path = None if folder is None else folder / f"chunk_{i:05d}.npz"
        if path is not None and path.is_file():
            arrays, attrs = load_result(path)
            if attrs.get("key") == ckey:  # written under this key (key.json is written before any chunk)
                parts.append(arrays["log_post"])
                continue
        out = backward_sde(score_fn, jax.random.fold_in(key, i), ts, n=min(chunk, n - s), d=d,
                           method=method, observe=observe, dtype=dtype)
        lp = np.asarray(out.observed, dtype=np.float32)
        if path is not None:
            save_result(path, {"log_post": lp}, {"chunk": i, "start": s, "key": ckey})
        parts.append(lp)
    lp = np.concatenate(parts, axis=1)
    if folder is not None and not keep_checkpoint:
        _remove_checkpoint(folder)
    return PosteriorTrajectories(ts[1:], lp, np.argmax(lp[-1], axis=-1))


def crossing_time(t: Float[ArrayLike, "R"], stat: Float[ArrayLike, "R"], theta: float) -> float:
    """sup{t : stat(t) ≥ θ} on a decreasing grid, linear interpolation in t between grid points.

    ``+inf`` if stat ≥ θ already at ``t[0]``; ``nan`` if it never reaches θ.
    """
    t = np.asarray(t, dtype=np.float64)
    stat = np.asarray(stat, dtype=np.float64)
    above = np.nonzero(stat >= theta)[0]
    if above.size == 0:
        return float("nan")
    j = above[0]
    if j == 0:
        return float("inf")
    s0, s1 = stat[j - 1], stat[j]  # s0 < θ ≤ s1
    return float(t[j - 1] + (theta - s0) / (s1 - s0) * (t[j] - t[j - 1]))


def posterior_speciation_times(traj: PosteriorTrajectories, theta: float = 0.9, n_boot: int = 200,
                               seed: int = 0, window: int = 25) -> dict:
    """Per-class t_S,c from median posteriors, with bootstrap standard errors and 95 % percentile intervals.

    Returns ``times`` (K,), ``se`` (K,), ``ci`` (K, 2), ``counts`` (K,) trajectories per final class and
    ``median`` (R, K) the median curves. The bootstrap resamples trajectories of the class (medians are
    recomputed on ``±window`` records around the crossing, which is where resampled crossings fall).
    """
    if not 0 < theta < 1:
        raise ValueError(f"theta must lie in (0, 1), got {theta}")
    _check_pos_int("n_boot", n_boot, 2)
    k = traj.log_post.shape[-1]
    rng = np.random.default_rng(seed)
    times, se, ci = np.full(k, np.nan), np.full(k, np.nan), np.full((k, 2), np.nan)
    counts = np.bincount(traj.labels, minlength=k)
    med = np.full((traj.t.size, k), np.nan)
    for c in range(k):
        if counts[c] == 0:
            continue
        pc = np.exp(traj.log_post[:, traj.labels == c, c].astype(np.float64))  # (R, n_c)
        med[:, c] = np.median(pc, axis=1)
        times[c] = crossing_time(traj.t, med[:, c], theta)
        if not np.isfinite(times[c]):
            se[c], ci[c] = 0.0, (times[c], times[c])
            continue
        j = int(np.nonzero(med[:, c] >= theta)[0][0])
        lo, hi = max(j - window, 0), min(j + window, traj.t.size)
        boot = np.empty(n_boot)
        for b in range(n_boot):
            idx = rng.integers(0, counts[c], counts[c])
            mb = np.median(pc[lo:hi, idx], axis=1)
            tb = crossing_time(traj.t[lo:hi], mb, theta)
            if not np.isfinite(tb) or (tb == traj.t[lo] and lo > 0):  # fell outside the window: full grid
                tb = crossing_time(traj.t, np.median(pc[:, idx], axis=1), theta)
            boot[b] = tb
        fin = boot[np.isfinite(boot)]
        se[c] = np.std(fin, ddof=1) if fin.size > 1 else np.nan
        ci[c] = np.percentile(fin, [2.5, 97.5]) if fin.size else (np.nan, np.nan)
    return {"times": times, "se": se, "ci": ci, "counts": counts, "median": med}


def cloning(score_fn: ScoreFn, mixture: GaussianMixture | None, centroids: Float[ArrayLike, "K d"] | None, key: Key[Array, ""],
            t_grid: Float[ArrayLike, "N+1"], clone_times: float | Float[ArrayLike, "C"], n: int, *,
            n_clones: int = 2, t_end: float | None = None, method: str = "exponential",
            dtype: DTypeLike = jnp.float32,
            n_boot: int = 200, seed: int = 0, observe: ScoreFn | None = None, d: int | None = None) -> dict:
    """Cloning protocol: φ_c(t) at each clone time, with bootstrap standard errors over parents.

    ``n`` parents run from ``t_grid[0]``; at each clone time (snapped to the nearest grid time) every parent
    is copied ``n_clones`` times and the copies run independently down to ``t_end`` (default the last grid
    time; any time by which classes are decided), then are classified by the argmax of the posterior.

    The posterior is that of (``mixture``, ``centroids``), or ``observe(x, t) -> log P(c | x)`` (n, K) when
    given (data without a mixture, e.g. a classifier, :func:`rfdiff.unet.score.classifier_posterior`); then
    ``mixture`` and ``centroids`` may be None and ``d`` is the state dimension.

    Returns ``t`` (C,) snapped clone times, ``phi`` (C, K), ``se`` (C, K), ``phi_posterior`` (C, K) the
    parents' estimate E[P_c²]/E[P_c] of the same quantity, and ``phi_total`` (C,) = P(two copies agree).
    """
    ts = _check_grid(t_grid)
    n = _check_pos_int("n", n)
    m = _check_pos_int("n_clones", n_clones, 2)
    _check_pos_int("n_boot", n_boot, 2)
    ct = np.atleast_1d(np.asarray(clone_times, dtype=np.float64))
    if ct.size == 0 or np.any(~np.isfinite(ct)) or np.any(ct <= 0):
        raise ValueError(f"clone_times must be positive and finite, got {ct}")
    i_end = ts.size - 1 if t_end is None else int(np.argmin(np.abs(ts - t_end)))
    idx = np.unique(np.argmin(np.abs(ts[:, None] - ct[None, :]), axis=0))  # increasing = decreasing t
    if np.any(idx == 0) or np.any(idx >= i_end):
        raise ValueError(f"clone_times must lie strictly between t_grid[0]={ts[0]} and t_end={ts[i_end]}")
    if observe is None:
        if mixture is None or centroids is None:
            raise ValueError("cloning needs mixture and centroids, or an observe(x, t) posterior and d")
        mu = jnp.asarray(centroids)
        d = mu.shape[-1]
        observe = posterior_observer(mixture, mu)
    elif d is None or int(d) != d or d < 1:
        raise ValueError(f"d must be a positive integer (the state dimension) with observe, got {d}")
    d = int(d)
    k = jax.eval_shape(observe, jax.ShapeDtypeStruct((1, d), dtype), jax.ShapeDtypeStruct((), dtype)).shape[-1]
    k_init, k_seg, k_clone = jax.random.split(key, 3)
    x = jax.random.normal(k_init, (n, d), dtype=dtype)
    rng = np.random.default_rng(seed)
    prev = 0
    out: dict[str, np.ndarray] = {name: np.zeros((idx.size, k)) for name in ("phi", "se", "phi_posterior")}
    out["phi_total"] = np.zeros(idx.size)
    for a, i in enumerate(idx):
        x = backward_sde(score_fn, jax.random.fold_in(k_seg, a), ts[prev:i + 1], x_T=x, method=method).x
        prev = i
        post = np.exp(np.asarray(observe(x, jnp.asarray(ts[i], x.dtype)), dtype=np.float64))  # (n, K)
        xc = jnp.repeat(x, m, axis=0)
        xe = backward_sde(score_fn, jax.random.fold_in(k_clone, a), ts[i:i_end + 1], x_T=xc, method=method).x
        lab = np.asarray(jnp.argmax(observe(xe, jnp.asarray(ts[i_end], xe.dtype)), axis=-1)).reshape(n, m)
        cnt = np.stack([(lab == c).sum(axis=1) for c in range(k)], axis=1).astype(np.float64)  # (n, K)
        num, den = cnt * (cnt - 1.0), cnt * (m - 1.0)
        with np.errstate(invalid="ignore"):  # a class no copy reached: nan, not 0
            out["phi"][a] = num.sum(0) / den.sum(0)
        out["phi_total"][a] = num.sum() / (n * m * (m - 1.0))
        out["phi_posterior"][a] = (post**2).sum(0) / post.sum(0)
        boot = np.empty((n_boot, k))
        for b in range(n_boot):
            r = rng.integers(0, n, n)
            boot[b] = num[r].sum(0) / np.maximum(den[r].sum(0), 1e-300)
        out["se"][a] = boot.std(axis=0, ddof=1)
    out["t"] = ts[idx]
    return out


def speciation_vs_ratio(mixture: GaussianMixture, d: int, ratios: Float[ArrayLike, "R"], *, theta: float = 0.9,
                        simulate: bool = True,
                        n: int = 4000, min_minority: int = 0, t_max: float = 8.0, t_min: float = 1e-3, num_steps: int = 300,
                        chunk: int = 4096, method: str = "exponential", seed: int = 0, n_boot: int = 200,
                        checkpoint_dir: str | Path | None = None, resume: bool | None = None,
                        keep_checkpoint: bool = False, progress: bool = False) -> dict:
    """Per-class t_S,c against the imbalance ratio r = π_max/π_min: theory and (optionally) simulation.

    For each r the proportions are the long-tail profile of :func:`rfdiff.proportions_long_tail` (for K = 2:
    π = (r, 1)/(r + 1)); variances and centroids are those of ``mixture``. Theory: :func:`speciation_times`
    (Gaussian method for K = 2, exact reduced law otherwise). Simulation: the backward SDE with the exact
    score, ``max(n, min_minority/π_min)`` trajectories per ratio (so that ≈ ``min_minority`` end in the
    rarest class), posterior-based times with bootstrap errors; seeded per ratio.

    Returns arrays ``ratio`` (R,), ``proportions`` (R, K), ``theory`` (R, K) and, with ``simulate``,
    ``sim`` (R, K), ``se`` (R, K), ``ci`` (R, K, 2), ``counts`` (R, K).

    ``checkpoint_dir``: ratio i checkpoints its chunks in ``<checkpoint_dir>/ratio_<i>``, content-keyed as in
    :func:`simulate_posteriors` (mixture leaves with this ratio's proportions, d, the seeded centroids and key,
    n_i = max(n, ⌈min_minority/π_min⌉), t grid, method, chunk, dtype, version; θ and ``n_boot`` act only on the
    stored posteriors, so a changed θ reuses them correctly). ``resume`` as there. The whole folder is removed
    once every ratio is done, unless ``keep_checkpoint`` (a content-addressed cache, e.g. for a second θ).
    """
    from ..model.mixture import proportions_long_tail
    from .sampling import geometric_grid
    from ..theory.speciation import speciation_times

    r = np.asarray(ratios, dtype=np.float64)
    if r.ndim != 1 or r.size == 0 or np.any(~np.isfinite(r)) or np.any(r < 1):
        raise ValueError(f"ratios must be finite numbers >= 1, got {ratios}")
    k = mixture.num_classes
    theory_method = "gaussian" if k == 2 else "exact"
    out = {"ratio": r, "proportions": np.zeros((r.size, k)), "theory": np.zeros((r.size, k))}
    # smooth theory curve for plots
    fine = np.geomspace(1.0, max(r.max(), 2.0), 25 if k == 2 else 10)
    out["ratio_fine"] = fine
    out["theory_fine"] = np.array([speciation_times(
        GaussianMixture.create(proportions_long_tail(k, float(f)) if f > 1 else np.full(k, 1.0 / k),
                               np.asarray(mixture.variances), np.asarray(mixture.centroid_gram)),
        d, theta, method=theory_method) for f in fine])
    if simulate:
        for name, shape in (("sim", (r.size, k)), ("se", (r.size, k)), ("ci", (r.size, k, 2)),
                            ("counts", (r.size, k))):
            out[name] = np.zeros(shape)
        ts = geometric_grid(t_max, t_min, num_steps)
    for i, ri in enumerate(r):
        props = proportions_long_tail(k, float(ri)) if ri > 1 else np.full(k, 1.0 / k)
        mix = GaussianMixture.create(props, np.asarray(mixture.variances), np.asarray(mixture.centroid_gram))
        out["proportions"][i] = props
        out["theory"][i] = speciation_times(mix, d, theta, method=theory_method)
        if not simulate:
            continue
        mu = mix.centroids(jax.random.fold_in(jax.random.key(seed), 2 * i), d)
        n_i = max(int(n), int(np.ceil(min_minority / props.min())))
        ck = None if checkpoint_dir is None else Path(checkpoint_dir) / f"ratio_{i:03d}"
        key_i = jax.random.fold_in(jax.random.key(seed), 2 * i + 1)
        tr = simulate_posteriors(None, mix, mu, key_i, ts, n_i, chunk=chunk, method=method, checkpoint_dir=ck,
                                 resume=resume, keep_checkpoint=True, progress=progress)
        res = posterior_speciation_times(tr, theta, n_boot=n_boot, seed=seed)
        out["sim"][i], out["se"][i], out["ci"][i], out["counts"][i] = res["times"], res["se"], res["ci"], res["counts"]
        out.setdefault("n", np.zeros(r.size, dtype=np.int64))[i] = n_i
    if simulate and checkpoint_dir is not None and not keep_checkpoint:  # completed: no stale chunks are left to mislead a later run
        for i in range(r.size):
            _remove_checkpoint(Path(checkpoint_dir) / f"ratio_{i:03d}")
        if Path(checkpoint_dir).is_dir() and not any(Path(checkpoint_dir).iterdir()):
            Path(checkpoint_dir).rmdir()
    return out
