"""Jitted training of the random-features score model at one diffusion time, with per-class curves.

Model and loss (``theory_notes/01_model.md``): ``s_A(x) = A σ(W x/√d)/√p`` and the denoising score-matching
loss ``L(A) = 1/(n d) Σ_ν E_ξ ||√Δ s_A(e^{-t} x^ν + √Δ ξ) + ξ||²``. Time is measured in the theory's unit τ
(``theory_notes/06_simulation.md`` §1): plain GD with step ``lr = η̂`` follows ``A ← A − η̂ (A U + √(p/Δ) Vᵀ)``
in expectation, i.e. a raw learning rate ``η = η̂ p d/(2Δ)`` on ``L``; ``k`` steps reach ``τ = k η̂``.

Noise modes: ``"exact"`` uses the noise-averaged gradient from :func:`rfdiff.features.train_moments`
(matches the closed form to rounding); ``"fresh"`` draws ``n_noise`` new ξ per point and step (the
practitioner's loss); ``"fixed"`` keeps one bank of ``n_noise`` draws per point for the whole run. The
control variates ("simple": the zero-mean ``√(p/Δ) ξ σ(e^{-t}W x₀/√d)ᵀ``; "linear", the default: also the
ξ-linear parts of the feature products) remove most
of the fresh-noise bias (``06_simulation.md`` §2–3).

Example::

    >>> cfg = TrainConfig(lr=0.05, steps=200, noise="fresh")                     # doctest: +SKIP
    >>> log = train_rf(problem, cfg)                                              # doctest: +SKIP
    >>> log.eps_test[-1]      # normalised per-class test error at τ = 10         # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import _steps as _train
from ..finite.closed_form import fresh_noise_excess
from ..precision import float64, x64
from ..model.diffusion import delta, mixture_score, noised_variances
from ..io import changed_inputs, content_key, key_digests, load_result, save_result

if TYPE_CHECKING:  # annotations only (jaxtyping shapes); no runtime import
    from jaxtyping import Float
    from ..finite.features import FeatureMoments, FiniteProblem
    from ..model.mixture import GaussianMixture

__all__ = ["TrainConfig", "TrainLog", "train_rf", "log_steps", "class_normalisers"]

_NOISE = ("exact", "fresh", "fixed")
_OPT = ("gd", "adam")
_CV = ("none", "simple", "linear")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (frozen; every field is static).

    * ``lr``: GD step η̂ in τ units (raw rate η = η̂ p d/(2Δ)); for Adam the optax learning rate applied to
      the τ-unit gradient (Adam is scale-free, so τ = steps·lr is then only nominal).
    * ``steps``; ``batch_size`` (None = full batch); ``optimizer`` "gd" | "adam".
    * ``noise`` "exact" | "fresh" | "fixed"; ``n_noise`` m draws per point (per step for "fresh");
      ``control_variate`` "none" | "simple" | "linear" (sampled modes only; see ``_train.grad_sampled``).
    * ``num_logs`` log-spaced evaluation steps (step 0 included); ``n_test`` fresh test points per class;
      ``n_eval_noise`` noise draws per training point for the train-loss estimate.
    * ``checkpoint_dir``/``checkpoint_every`` (steps; 0 = only at log steps when a dir is given).
    * ``seed``; ``dtype`` "float32" | "float64"; ``chunk`` rows per feature-product chunk (memory bound).
    * ``loss_weights`` (K,) per-class DSM loss weights w_c (None: all 1), rescaled so Σ_c π_c w_c = 1
      (:func:`rfdiff.theory.loss_weights.normalise_loss_weights`); each training point's loss is multiplied by
      its class weight (``theory_notes/10_reweighting.md``). The logged per-class losses are unweighted.
    """

    lr: float
    steps: int
    optimizer: str = "gd"
    batch_size: int | None = None
    noise: str = "fresh"
    n_noise: int = 1
    control_variate: str = "linear"
    num_logs: int = 40
    n_test: int = 500
    n_eval_noise: int = 1
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    seed: int = 0
    dtype: str = "float32"
    chunk: int = 512
    loss_weights: tuple[float, ...] | None = None

    def __post_init__(self):
        if not (np.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive finite number, got {self.lr}")
        for name in ("steps", "n_noise", "num_logs", "n_test", "n_eval_noise", "chunk"):
            v = getattr(self, name)
            if not isinstance(v, (int, np.integer)) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if self.optimizer not in _OPT:
            raise ValueError(f"optimizer must be one of {_OPT}, got {self.optimizer!r}")
        if self.noise not in _NOISE:
            raise ValueError(f"noise must be one of {_NOISE}, got {self.noise!r}")
        if self.batch_size is not None and (not isinstance(self.batch_size, (int, np.integer))
                                            or self.batch_size < 1):
            raise ValueError(f"batch_size must be a positive integer or None, got {self.batch_size!r}")
        if self.noise == "exact" and self.batch_size is not None:
            raise ValueError("batch_size must be None with noise='exact' (the exact gradient is full-batch)")
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.control_variate not in _CV:
            raise ValueError(f"control_variate must be one of {_CV}, got {self.control_variate!r}")
        if self.dtype not in ("float32", "float64"):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        if self.loss_weights is not None:
            w = tuple(float(x) for x in self.loss_weights)
            if not w or not all(np.isfinite(x) and x > 0 for x in w):
                raise ValueError(f"loss_weights must be finite and positive, got {list(self.loss_weights)!r}")
            object.__setattr__(self, "loss_weights", w)  # hashable tuple of floats (a static field)

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        if out["loss_weights"] is None:  # absent = unweighted: content keys of unweighted runs stay as before
            del out["loss_weights"]
        return out


class TrainLog(NamedTuple):
    """Per-class curves at the logged steps. Arrays: ``step`` (L,), ``tau`` (L,), losses (L, K).

    ``train_loss``/``test_loss`` are DSM losses (train: the training points with fixed evaluation noise;
    test: fresh class samples); ``score_error`` = (1/d)||s_A − ∇log p_t||² on the test points;
    ``bayes_drop`` S_c = Δ E||s*_c||²/d and ``gamma2`` the class noised variance, (K,). ``A`` the final weights.
    """

    step: np.ndarray
    tau: np.ndarray
    train_loss: np.ndarray
    test_loss: np.ndarray
    score_error: np.ndarray
    bayes_drop: np.ndarray
    gamma2: np.ndarray
    A: np.ndarray

    @property
    def eps_train(self):
        """ε_c^tr = [L_c − (1 − S_c)]/S_c: 1 untrained, 0 exact class score, < 0 memorisation."""
        return (self.train_loss - (1.0 - self.bayes_drop)) / self.bayes_drop

    @property
    def eps_test(self):
        return (self.test_loss - (1.0 - self.bayes_drop)) / self.bayes_drop

    @property
    def score_error_normalised(self):
        """Γ_c² (1/d)||s_A − s*||²: 1 for the zero model on an isolated class."""
        return self.score_error * self.gamma2

    def save(self, path, attrs=None) -> Path:
        arrays = {k: np.asarray(v) for k, v in self._asdict().items()}
        dims = {"step": ["log"], "tau": ["log"], "train_loss": ["log", "class"], "test_loss": ["log", "class"],
                "score_error": ["log", "class"], "bayes_drop": ["class"], "gamma2": ["class"], "A": ["d", "p"]}
        return save_result(path, arrays, {"dims": dims, **(attrs or {})})

    @classmethod
    def load(cls, path) -> "TrainLog":
        arrays, _ = load_result(path)
        return cls(**{k: arrays[k] for k in cls._fields})


def log_steps(steps: int, num: int) -> np.ndarray:
    """0 and ``num − 1`` log-spaced integer steps in [1, steps] (deduplicated; ``steps`` always last)."""
    grid = np.unique(np.round(np.geomspace(1, steps, max(num - 1, 1))).astype(np.int64))
    return np.concatenate([[0], grid[grid <= steps]]) if grid[-1] == steps else np.concatenate([[0], grid, [steps]])


@float64  # reference numbers: float64 whatever the simulation's dtype
def class_normalisers(mixture: GaussianMixture, t: float) -> tuple[Float[np.ndarray, "K"], Float[np.ndarray, "K"]]:
    """(S_c, Γ_c²) with S_c = Δ_t/Γ_c², the normalisation of :mod:`rfdiff.dynamics` (exact for isotropic classes)."""
    gam2 = np.asarray(noised_variances(mixture, t), np.float64)
    return float(delta(t)) / gam2, gam2


# ----------------------------------------------------------------------------------------- internals
def _key_inputs(problem, config: TrainConfig) -> dict:
    """What determines the trajectory: the whole realised problem (W, x0, labels, centroids, mixture, model)
    and every config field except where and how often it is checkpointed."""
    cfg = {k: v for k, v in config.to_dict().items() if k not in ("checkpoint_dir", "checkpoint_every")}
    return {"problem": problem, "config": cfg}


def _fingerprint(problem, config: TrainConfig) -> str:
    return content_key(**_key_inputs(problem, config))


def _eval_sets(problem, config: TrainConfig, key, dt):
    """Fixed evaluation rows: training points with fixed noise, fresh test samples with exact-score targets."""
    mix, t, k = problem.mixture, float(problem.model.t), problem.mixture.num_classes
    n, d = problem.x0.shape
    sq = np.sqrt(float(delta(t)))
    k_tr, k_te, k_ten = jax.random.split(key, 3)
    x0 = np.asarray(problem.x0, np.float64)
    lab = np.asarray(problem.labels)
    m = config.n_eval_noise
    xi = np.asarray(jax.random.normal(k_tr, (n * m, d)), np.float64)
    x_tr = np.repeat(x0, m, axis=0) * np.exp(-t) + sq * xi
    lab_tr = np.repeat(lab, m)
    te_lab = np.repeat(np.arange(k), config.n_test)
    x0_te, _ = mix.sample(k_te, te_lab.size, d, centroids=problem.centroids, labels=jnp.asarray(te_lab))
    xi_te = np.asarray(jax.random.normal(k_ten, (te_lab.size, d)), np.float64)
    x_te = np.exp(-t) * np.asarray(x0_te, np.float64) + sq * xi_te
    with x64():
        mu = jnp.asarray(problem.centroids, jnp.float64)
        target = np.asarray(mixture_score(jnp.asarray(x_te), t, mix, mu))  # batched (n, d) input
    eye = np.eye(k)
    as_dt = lambda a: jnp.asarray(a, dt)  # noqa: E731
    train = (as_dt(x_tr), as_dt(xi), as_dt(eye[lab_tr]), None)
    test = (as_dt(x_te), as_dt(xi_te), as_dt(eye[te_lab]), as_dt(target))
    return train, test


def _checkpoint_path(config: TrainConfig) -> Path | None:
    return None if config.checkpoint_dir is None else Path(config.checkpoint_dir) / "checkpoint.npz"


class _Static(NamedTuple):
    """Hashable compile-time settings: one executable per distinct value, shared across seeds and calls."""

    noise: str
    optimizer: str
    lr: float
    batch: int
    n_noise: int
    control_variate: str
    chunk: int
    t: float
    activation: str
    dtype: str


def _tx(st: _Static):
    return optax.adam(st.lr) if st.optimizer == "adam" else None


def _step(st: _Static, data, keys, state, k):
    """One optimiser step at step index k (noise and mini-batch indexed by k: segment-independent)."""
    A, opt = state
    dt = A.dtype
    if st.noise == "exact":
        g = _train.grad_exact(A, data[0], data[1], jnp.asarray(-np.expm1(-2.0 * st.t), dt))
    else:
        W, x0, rw = data
        n, d = x0.shape
        if st.batch == n:
            idx = jnp.arange(n)
        else:  # a fresh mini-batch without replacement per step
            idx = jax.random.choice(jax.random.fold_in(keys[0], k), n, (st.batch,), replace=False)
        xi = _train.draw_noise(keys[1], idx, st.n_noise, d, dt, st.noise == "fixed", k)
        g = _train.grad_sampled(A, W, x0[idx], xi, st.t, st.activation, st.control_variate, st.chunk,
                                None if rw is None else rw[idx])
    tx = _tx(st)
    if tx is None:
        return A - jnp.asarray(st.lr, dt) * g, opt
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes int counts and floats
        upd, opt = tx.update(g, opt, A)
        return optax.apply_updates(A, upd), opt


@functools.partial(jax.jit, static_argnums=0)
def _run(st: _Static, state, data, keys, start, stop):
    return _train.run_segment(lambda s, k: _step(st, data, keys, s, k), state, start, stop)


@functools.partial(jax.jit, static_argnums=0)
def _evaluate(st: _Static, A, W, rows):
    return _train.eval_rows(A, W, *rows, st.t, st.activation, st.chunk)


def _build(problem, config: TrainConfig, moments):
    """Static settings, device data, PRNG keys and initial state for ``problem`` under ``config``."""
    dt = jnp.dtype(config.dtype)
    n, d = problem.x0.shape
    p = problem.W.shape[0]
    b = n if config.batch_size is None else int(config.batch_size)
    if b > n:
        raise ValueError(f"batch_size {b} exceeds the number of training points n = {n}")
    st = _Static(config.noise, config.optimizer, float(config.lr), b, config.n_noise, config.control_variate,
                 config.chunk, float(problem.model.t), problem.model.activation, config.dtype)
    keys = tuple(jax.random.split(jax.random.fold_in(jax.random.key(config.seed), 1)))
    weights = None
    if config.loss_weights is not None:
        from ..theory.loss_weights import normalise_loss_weights

        weights = normalise_loss_weights(config.loss_weights, problem.mixture.proportions)
    if config.noise == "exact":
        if moments is None:
            raise ValueError("noise='exact' needs moments=train_moments(problem) (U (p,p) and V (p,d))")
        if weights is not None:
            from ..finite.features import weighted_moments

            moments = weighted_moments(moments, problem.class_fractions, weights)
        U, V = jnp.asarray(moments.U, dt), jnp.asarray(moments.V, dt)
        if U.shape != (p, p) or V.shape != (p, d):
            raise ValueError(f"moments have U {U.shape}, V {V.shape}; expected ({p},{p}) and ({p},{d})")
        data = (U, V)
    else:
        rw = None if weights is None else jnp.asarray(weights[np.asarray(problem.labels)], dt)  # (n,) w_c(ν)
        data = (jnp.asarray(problem.W, dt), jnp.asarray(problem.x0, dt), rw)
    A0 = jnp.zeros((d, p), dt)
    tx = _tx(st)
    if tx is not None:
        with jax.numpy_dtype_promotion("standard"):
            opt0 = tx.init(A0)
    else:
        opt0 = ()
    run = functools.partial(_run, st)
    evaluate = functools.partial(_evaluate, st)
    return (lambda state, data, start, stop: run(state, data, keys, start, stop)), evaluate, data, (A0, opt0)


def _save_ckpt(path, state, step, rows, fingerprint, digests):
    leaves = jax.tree_util.tree_leaves(state)
    arrays = {f"state_{i}": np.asarray(x) for i, x in enumerate(leaves)}
    for name, val in rows.items():
        arrays[f"log_{name}"] = np.asarray(val)
    save_result(path, arrays, {"step": int(step), "fingerprint": fingerprint, "key_inputs": digests,
                               "n_leaves": len(leaves)})


def _load_ckpt(path, state, fingerprint, digests):
    arrays, attrs = load_result(path)
    if attrs.get("fingerprint") != fingerprint:
        what = ", ".join(changed_inputs(attrs.get("key_inputs"), digests))
        raise ValueError(f"checkpoint {path} was written for another problem or config (changed: {what}); "
                         "remove it or change checkpoint_dir")
    treedef = jax.tree_util.tree_structure(state)
    leaves = [jnp.asarray(arrays[f"state_{i}"]) for i in range(attrs["n_leaves"])]
    rows = {k[4:]: list(v) for k, v in arrays.items() if k.startswith("log_")}
    return jax.tree_util.tree_unflatten(treedef, leaves), int(attrs["step"]), rows


def train_rf(problem: FiniteProblem, config: TrainConfig, *, moments: FeatureMoments | None = None,
             resume: bool = True, progress: bool = True,
             max_segments: int | None = None) -> TrainLog:
    """Train ``A`` of the RF score model on ``problem`` (a :class:`rfdiff.features.FiniteProblem`).

    Runs compiled segments between log/checkpoint steps (one executable for all segment lengths), evaluates
    per-class train/test DSM losses and the score error at :func:`log_steps`, and, with
    ``config.checkpoint_dir``, writes atomic checkpoints (weights, optimizer state, curves so far) at log steps
    and every ``checkpoint_every`` steps. With ``resume`` an existing checkpoint of the same problem and
    config is continued; the noise of step k depends only on (seed, k), so a resumed run is bit-identical to
    an uninterrupted one. ``max_segments`` stops early (for testing a kill) and returns the partial log.
    ``moments`` (with ``.U``, ``.V``) is required for ``noise="exact"``.
    """
    from tqdm.auto import tqdm

    dt = jnp.dtype(config.dtype)
    run, evaluate, data, state = _build(problem, config, moments)
    t = float(problem.model.t)
    k_cls = problem.mixture.num_classes
    d = problem.x0.shape[1]
    bayes, gamma2 = class_normalisers(problem.mixture, t)
    ev_train, ev_test = _eval_sets(problem, config, jax.random.fold_in(jax.random.key(config.seed), 2), dt)
    cnt_tr = np.asarray(ev_train[2]).sum(0)
    cnt_te = np.asarray(ev_test[2]).sum(0)
    W = jnp.asarray(problem.W, dt)
    logs = log_steps(config.steps, config.num_logs)
    stops = set(logs.tolist())
    if config.checkpoint_every:
        stops |= set(range(config.checkpoint_every, config.steps, config.checkpoint_every))
    stops |= set(np.linspace(0, config.steps, 101).astype(np.int64).tolist())  # progress granularity
    stops = sorted(s for s in stops if 0 <= s <= config.steps)
    ckpt = _checkpoint_path(config)
    fp = _fingerprint(problem, config)
    fp_inputs = key_digests(**_key_inputs(problem, config))
    rows = {"step": [], "train": [], "test": [], "score": []}
    step = 0
    if ckpt is not None and resume and ckpt.exists():
        state, step, rows = _load_ckpt(ckpt, state, fp, fp_inputs)

    def record(A, s):
        ltr, _ = evaluate(A, W, ev_train)
        lte, ste = evaluate(A, W, ev_test)
        vals = [1.0 + np.asarray(ltr, np.float64) / cnt_tr, 1.0 + np.asarray(lte, np.float64) / cnt_te,
                np.asarray(ste, np.float64) / cnt_te]
        for v, name in zip(vals, ("train", "test", "score")):
            if not np.all(np.isfinite(v)):
                raise FloatingPointError(f"non-finite {name} loss at step {s}: training diverged "
                                         f"(lr = {config.lr} too large? GD needs lr < 2/λ_max(U))")
        rows["step"].append(s)
        rows["train"].append(vals[0])
        rows["test"].append(vals[1])
        rows["score"].append(vals[2])

    if step == 0 and not rows["step"]:
        record(state[0], 0)
    bar = tqdm(total=config.steps, initial=step, disable=not progress, desc="train_rf", unit="step")
    segments = 0
    for stop in stops:
        if stop <= step:
            continue
        if max_segments is not None and segments >= max_segments:
            break
        state = run(state, data, jnp.asarray(step), jnp.asarray(stop))
        bar.update(stop - step)
        step = stop
        segments += 1
        is_log = stop in set(logs.tolist())
        if is_log:
            record(state[0], stop)
        if ckpt is not None and (is_log or (config.checkpoint_every and stop % config.checkpoint_every == 0)):
            _save_ckpt(ckpt, state, step, rows, fp, fp_inputs)
    bar.close()
    st = np.asarray(rows["step"], np.int64)
    return TrainLog(step=st, tau=st * float(config.lr), train_loss=np.asarray(rows["train"]).reshape(-1, k_cls),
                    test_loss=np.asarray(rows["test"]).reshape(-1, k_cls),
                    score_error=np.asarray(rows["score"]).reshape(-1, k_cls), bayes_drop=bayes, gamma2=gamma2,
                    A=np.asarray(state[0]))
