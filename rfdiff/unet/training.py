"""U-Net diffusion model on class-imbalanced Fashion-MNIST: resumable training with per-class evaluation.

One run = one :class:`UNetConfig` (classes, per-class counts or imbalance profile, network, optimiser, schedule,
evaluation protocol) and one results directory::

    <out>/config.json      the config and provenance      <out>/subset.npz   chosen train indices + class stats
    <out>/ckpt/latest.eqx  params, Adam state, RNG, step  <out>/ckpt/step_0000100.eqx  one per evaluation
    <out>/metrics.npz      per-class curves over the log-spaced evaluation steps (rfdiff.io.save_result)

Training is DDPM ε-prediction with Adam (rfdiff/unet/model.py); at each log-spaced evaluation step the run
records per-class train/test losses and normalised errors at fixed OU times, the per-class memorised fraction
of DDIM samples (rfdiff.simulate.metrics.memorization_report) and a per-class classifier Fréchet distance
(rfdiff/unet/evaluate.py). Everything random is seeded and the RNG is checkpointed, so a run killed and resumed
produces bit-identical checkpoints and metrics. :func:`summarise` turns the curves into τ_gen,c, τ_onset,c,
τ_mem,c and sets them against the d → ∞ theory's orders for the run's classes (:func:`prediction`, by
:func:`rfdiff.unet.theory_map.theory_prediction`). Protocol: theory_notes/07_unet.md.

Example (CLI)::

    rfdiff simulate unet examples/unet_fmnist.toml --out results/unet --resume
"""

from __future__ import annotations

import dataclasses
import io as _io
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import evaluate as ev
from .evaluate import summarise
from .fmnist import class_statistics, imbalanced_subset, load_fashion_mnist, to_signed
from .surrogate import gaussian_surrogate
from .model import ddim_sample, eps_loss, init_unet, make_schedule, ou_time
from ..io import (atomic_write_bytes, atomic_write_text, changed_inputs, content_key, key_digests, load_result,
                  save_result)
from ..simulate.metrics import memorization_report

__all__ = ["UNetConfig", "prepare_data", "train", "summarise", "eval_steps", "target_step", "init_state",
           "train_step", "prediction"]


@dataclass(frozen=True)
class UNetConfig:
    """Every setting of a run (all static). ``counts`` overrides ``n_train``/``profile``. Times in
    ``loss_times`` are OU times t (ᾱ = e^{−2t}); the nearest schedule step is used. ``loss_weights`` (one per
    class of ``classes``): per-class weights of the ε-prediction loss, rescaled so Σ_c π_c w_c = 1 with π the
    training-subset proportions (``theory_notes/10_reweighting.md``); None: all 1. ``data="gaussian"``: every
    training image is replaced by a draw from its class's population Gaussian (:mod:`rfdiff.unet.surrogate`;
    same indices and counts, pixels not clipped); the test images stay real. ``max_train_steps``: when set, a run
    whose classes have not all memorised (memorised fraction ≥ 1/2 at some evaluation) by ``train_steps`` goes on,
    evaluating on the continued log-spaced grid, until they have or the next evaluation would pass the cap
    (:func:`target_step`); the steps up to ``train_steps`` are those of the run without the cap."""

    classes: tuple[int, ...] = (8, 7)
    counts: tuple[int, ...] | None = None
    n_train: int = 500
    profile: str = "balanced"
    minority_fraction: float | None = None
    ratio: float | None = None
    num_minority: int = 1
    seed: int = 0
    downsample: int = 1
    channels: tuple[int, ...] = (32, 64, 128)
    schedule: str = "cosine"
    num_steps: int = 1000
    lr: float = 2e-4
    batch_size: int = 128
    train_steps: int = 20_000
    dtype: str = "float32"
    checkpoint_every: int = 1000
    n_eval: int = 12
    first_eval: int = 100
    n_samples: int = 500
    sample_steps: int = 50
    loss_times: tuple[float, ...] = (0.02, 0.1, 0.5)
    loss_draws: int = 2
    n_test_per_class: int = 500
    classifier_cache: str | None = None
    data_path: str | None = None
    loss_weights: tuple[float, ...] | None = None
    data: str = "real"  # "gaussian": the training subset replaced by draws from its classes' Gaussians
    max_train_steps: int | None = None  # extension cap: see :func:`target_step`

    def __post_init__(self):
        if self.data not in ("real", "gaussian"):
            raise ValueError(f"data must be 'real' or 'gaussian', got {self.data!r}")
        if self.dtype not in ("float32", "bfloat16"):
            raise ValueError(f"dtype must be 'float32' or 'bfloat16', got {self.dtype!r}")
        if 28 % self.downsample:
            raise ValueError(f"downsample must divide 28, got {self.downsample}")
        for name in ("n_train", "batch_size", "train_steps", "checkpoint_every", "n_eval", "first_eval",
                     "n_samples", "sample_steps", "loss_draws", "n_test_per_class"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be ≥ 1, got {getattr(self, name)}")
        if self.max_train_steps is not None and self.max_train_steps < self.train_steps:
            raise ValueError(f"max_train_steps={self.max_train_steps} is below train_steps={self.train_steps}")
        if self.first_eval > self.train_steps:
            raise ValueError(f"first_eval={self.first_eval} exceeds train_steps={self.train_steps}")
        if any(t <= 0 for t in self.loss_times):
            raise ValueError(f"loss_times must be > 0, got {self.loss_times}")
        if self.loss_weights is not None and (len(self.loss_weights) != len(self.classes)
                                              or not all(np.isfinite(w) and w > 0 for w in self.loss_weights)):
            raise ValueError(f"loss_weights must be {len(self.classes)} finite positive numbers (one per class), "
                             f"got {list(self.loss_weights)!r}")

    @property
    def image_size(self) -> int:
        return 28 // self.downsample


def eval_steps(cfg: UNetConfig, extended: bool = False) -> np.ndarray:
    """Log-spaced evaluation steps from ``first_eval`` to ``train_steps`` (unique integers, increasing).

    ``extended=True`` appends the grid's continuation past ``train_steps`` at the same ratio
    r = (train_steps/first_eval)^{1/(n_eval−1)} — round(train_steps·r^j), j = 1, 2, … — up to
    ``max_train_steps`` (nothing when it is None). Example::

        >>> eval_steps(UNetConfig(train_steps=1000, first_eval=10, n_eval=3, max_train_steps=10**5), True).tolist()
        [10, 100, 1000, 10000, 100000]
    """
    base = np.unique(np.round(np.geomspace(cfg.first_eval, cfg.train_steps, cfg.n_eval)).astype(np.int64))
    if not extended or cfg.max_train_steps is None:
        return base
    r = (cfg.train_steps / cfg.first_eval) ** (1.0 / max(cfg.n_eval - 1, 1))
    if r <= 1.0:  # a one-point grid has no ratio to continue with
        return base
    more = []
    j = 1
    while (s := int(round(cfg.train_steps * r ** j))) <= cfg.max_train_steps:
        more.append(s)
        j += 1
    return np.unique(np.concatenate([base, np.asarray(more, np.int64)]))


def target_step(cfg: UNetConfig, steps, mem_fraction) -> int:
    """The step a run trains to, given its evaluations so far: ``train_steps``, then — with ``max_train_steps``
    set — each next extension evaluation (:func:`eval_steps` ``extended=True``) for as long as some class has not
    reached a memorised fraction of 1/2 at any evaluation up to the current target (τ_mem,c unmeasured).

    ``steps`` (n_ckpt,), ``mem_fraction`` (n_ckpt, K) as in ``metrics.npz`` (NaN: no sample of the class, counted
    as not memorised). Decided from the evaluations alone, so a resumed run reaches the same target. Example::

        >>> cfg = UNetConfig(train_steps=1000, first_eval=10, n_eval=3, max_train_steps=10**5)
        >>> target_step(cfg, [10, 100, 1000], [[0, 0], [0.6, 0], [0.9, 0.4]]), target_step(cfg, [1000], [[0.9, 0.5]])
        (10000, 1000)
    """
    grid = [int(s) for s in eval_steps(cfg, extended=True) if s >= cfg.train_steps]
    steps = np.asarray(steps, np.int64).reshape(-1)
    if steps.size == 0:
        return grid[0]
    mem = np.nan_to_num(np.asarray(mem_fraction, np.float64).reshape(len(steps), -1), nan=0.0)
    target = grid[0]
    for nxt in grid[1:]:
        upto = steps <= target
        if target not in steps or (upto.any() and bool(np.all(mem[upto].max(axis=0) >= 0.5))):
            break  # not yet evaluated there, or every class has memorised: no further extension
        target = nxt
    return target


def _pool(x, f: int):
    n, h, w = x.shape
    return x.reshape(n, h // f, f, w // f, f).mean(axis=(2, 4)) if f > 1 else x


def prepare_data(cfg: UNetConfig) -> dict[str, Any]:
    """Load Fashion-MNIST, draw the seeded subset, downsample, and compute the per-class statistics.

    Images are in [−1, 1], shape (n, 1, H, W), float32. ``class_index`` labels are positions in ``cfg.classes``.
    The class statistics and covariance spectra are population ones (all training images of the class).
    """
    xtr_u8, ytr = load_fashion_mnist(cfg.data_path, "train")
    xte_u8, yte = load_fashion_mnist(cfg.data_path, "test")
    if cfg.counts is not None:
        idx = imbalanced_subset(ytr, cfg.classes, cfg.counts, seed=cfg.seed)
    else:
        idx = imbalanced_subset(ytr, cfg.classes, n=cfg.n_train, profile=cfg.profile, ratio=cfg.ratio,
                                minority_fraction=cfg.minority_fraction, num_minority=cfg.num_minority,
                                seed=cfg.seed)
    xtr = _pool(to_signed(xtr_u8), cfg.downsample)
    xte = _pool(to_signed(xte_u8), cfg.downsample)
    pos = {c: i for i, c in enumerate(cfg.classes)}
    te_idx = np.concatenate([np.flatnonzero(yte == c)[: cfg.n_test_per_class] for c in cfg.classes])
    x_sub = xtr[idx]
    if cfg.data == "gaussian":  # same rows and counts, each image a draw from its class's population Gaussian
        x_sub = gaussian_surrogate(x_sub, ytr[idx], xtr, ytr, seed=cfg.seed)
    pop = class_statistics(xtr, ytr, cfg.classes)
    sub = class_statistics(x_sub, ytr[idx], cfg.classes)
    stats = pop._replace(counts=sub.counts, proportions=sub.proportions)
    eig = np.stack([np.linalg.eigvalsh(np.cov(xtr[ytr == c].reshape(-1, xtr[0].size).astype(np.float64),
                                              rowvar=False)) for c in cfg.classes])
    return {"x_train": x_sub[:, None], "y_train": np.array([pos[int(c)] for c in ytr[idx]]),
            "train_indices": idx, "x_test": xte[te_idx][:, None], "y_test": np.array([pos[int(c)] for c in
                                                                                   yte[te_idx]]),
            "stats": stats, "subset_stats": sub, "cov_eigenvalues": eig,
            "all_train": (xtr, ytr), "all_test": (xte, yte)}


# ---------------------------------------------------------------------------------------------- state
def _optimizer(cfg):
    return optax.adam(cfg.lr)


@eqx.filter_jit
def _init_opt(model, cfg: UNetConfig):
    return _optimizer(cfg).init(eqx.filter(model, eqx.is_array))


def init_state(cfg: UNetConfig):
    """The training state at step 0: ``(model, opt_state, key, 0)``, everything seeded by ``cfg.seed``.

    ``model`` is :func:`rfdiff.unet.model.init_unet` (weights drawn with numpy), ``opt_state`` the Adam state
    of its arrays, ``key`` the training stream (minibatches, diffusion steps k, noise ε). Example::

        >>> cfg = UNetConfig(downsample=2, channels=(4, 8), batch_size=4)
        >>> model, opt_state, key, step = init_state(cfg)
        >>> x = jnp.zeros((1, cfg.image_size, cfg.image_size), jnp.float32)     # the U-Net runs in float32
        >>> step, model(x, jnp.asarray(0.5, jnp.float32)).shape
        (0, (1, 14, 14))
    """
    model = init_unet(cfg.seed, cfg.channels, cfg.image_size)  # weights from numpy, seeded
    key = jax.random.key(cfg.seed)  # the training stream (minibatches, k, ε)
    return model, _init_opt(model, cfg), key, 0


def _save_state(path: Path, state, running=(0.0, 0)) -> None:
    # the running mean of the minibatch loss since the last evaluation is part of the state, so a resumed
    # run reports the same value as an uninterrupted one
    model, opt_state, key, step = state
    buf = _io.BytesIO()
    eqx.tree_serialise_leaves(buf, (model, opt_state, jax.random.key_data(key), np.asarray(step, np.int64),
                                    np.asarray(running[0], np.float64), np.asarray(running[1], np.int64)))
    atomic_write_bytes(path, buf.getvalue())


def _load_state(path: Path, cfg):
    """(model, opt_state, key, step), (running loss sum, count) from a checkpoint file."""
    model, opt_state, key, _ = init_state(cfg)
    with open(path, "rb") as fh:
        model, opt_state, kd, step, rs, rn = eqx.tree_deserialise_leaves(
            fh, (model, opt_state, jax.random.key_data(key), np.asarray(0, np.int64), np.asarray(0.0),
                 np.asarray(0, np.int64)))
    return (model, opt_state, jax.random.wrap_key_data(jnp.asarray(kd)), int(step)), (float(rs), int(rn))


def _dtype(cfg):
    return jnp.bfloat16 if cfg.dtype == "bfloat16" else jnp.float32


# Module-level jitted functions with the (hashable, frozen) config static: repeated or resumed runs in one
# process reuse the compiled code.
@eqx.filter_jit
def train_step(model, opt_state, key, x_train, alpha_bar, cfg: UNetConfig, w_train=None):
    """One Adam step on the DDPM ε-prediction loss; returns ``(model, opt_state, key, loss)``.

    A minibatch of ``cfg.batch_size`` rows of ``x_train`` (n, 1, H, W), diffusion steps k ~ U{1..num_steps}
    and ε ~ N(0, I) are drawn from ``key``; loss = mean ``||ε̂(√ᾱ_k x + √(1−ᾱ_k) ε, k) − ε||² / d`` with
    ``alpha_bar`` = :func:`rfdiff.unet.model.make_schedule` (num_steps + 1,), in ``cfg.dtype``. Jitted with the
    (hashable, frozen) ``cfg`` static, so repeated or resumed runs reuse the compiled step. ``w_train`` (n,):
    the class weight of each training row (the weighted loss is the mean of w_c(row) × the row's loss).
    """
    key, kb, kk, ke = jax.random.split(key, 4)
    rows = jax.random.randint(kb, (cfg.batch_size,), 0, x_train.shape[0])
    xb = x_train[rows]
    k = jax.random.randint(kk, (cfg.batch_size,), 1, cfg.num_steps + 1)
    eps = jax.random.normal(ke, xb.shape, dtype=jnp.float32)
    wb = None if w_train is None else w_train[rows]
    loss, g = eqx.filter_value_and_grad(
        lambda m: (lambda l: l.mean() if wb is None else (l * wb.astype(l.dtype)).mean())(
            eps_loss(m, xb, k, eps, alpha_bar, cfg.num_steps, _dtype(cfg))))(model)
    with jax.numpy_dtype_promotion("standard"):  # optax's bias correction mixes a float with an int32 count
        upd, opt_state = _optimizer(cfg).update(g, opt_state, eqx.filter(model, eqx.is_array))
    return eqx.apply_updates(model, upd), opt_state, key, loss


@eqx.filter_jit
def _eval_loss(model, x, k, eps, alpha_bar, cfg: UNetConfig):
    return eps_loss(model, x, k, eps, alpha_bar, cfg.num_steps, _dtype(cfg))


def _eval_sample(model, noise, alpha_bar, cfg: UNetConfig):
    return ddim_sample(model, noise, alpha_bar, cfg.num_steps, cfg.sample_steps, True, _dtype(cfg))


# ---------------------------------------------------------------------------------------------- evaluation
class _Evaluator:
    """Everything fixed across checkpoints: noise draws, DDIM start noise, classifier, reference features."""

    def __init__(self, cfg, data, alpha_bar, classifier_cache: Path):
        self.cfg, self.data, self.alpha_bar = cfg, data, alpha_bar
        ab = np.asarray(alpha_bar, dtype=np.float64)
        target = np.exp(-2.0 * np.asarray(cfg.loss_times))
        self.k = np.array([int(np.argmin(np.abs(ab[1:] - a))) + 1 for a in target])
        self.t = ou_time(ab[self.k])
        self.s_ref = ev.gaussian_reference(data["cov_eigenvalues"], self.t)  # (K, n_t)
        key = jax.random.key(cfg.seed + 10_007)  # evaluation noise, independent of the training stream
        k1, k2, k3 = jax.random.split(key, 3)
        # host copies: slicing numpy arrays dispatches no (separately compiled) device ops
        self.eps_tr = np.asarray(jax.random.normal(k1, (cfg.loss_draws, len(self.k)) + data["x_train"].shape,
                                                   jnp.float32))
        self.eps_te = np.asarray(jax.random.normal(k2, (cfg.loss_draws, len(self.k)) + data["x_test"].shape,
                                                   jnp.float32))
        self.noise = np.asarray(jax.random.normal(k3, (cfg.n_samples, 1, cfg.image_size, cfg.image_size),
                                                  jnp.float32))
        xa, ya = data["all_train"]
        xt, yt = data["all_test"]
        # the cached classifier is named by the content key of what trains it (images, labels, seed, version)
        ckey = content_key(train=(xa, ya), test=(xt, yt), seed=cfg.seed)
        cache = Path(classifier_cache)
        self.clf, self.clf_meta = ev.load_or_train_classifier(
            cache.with_name(f"{cache.stem}_{ckey[:16]}{cache.suffix}"), xa[0].size,
            lambda: ev.train_classifier(xa, ya, xt, yt, seed=cfg.seed))
        self.feat = jax.jit(jax.vmap(self.clf.features))
        kk = len(cfg.classes)
        ft = np.asarray(self.feat(jnp.asarray(data["x_test"])))
        self.test_feat = [ft[data["y_test"] == c] for c in range(kk)]
        ftr = np.asarray(self.feat(jnp.asarray(data["x_train"])))
        # floor of the distance at this sample size: real training images of the class vs test images
        self.cfd_reference = np.array([ev.frechet_distance(ftr[data["y_train"] == c], self.test_feat[c])
                                       for c in range(kk)])

    def _class_loss(self, model, x, y, eps):
        kk = len(self.cfg.classes)
        out = np.zeros((kk, len(self.k)))
        for j, k in enumerate(self.k):
            per = np.zeros(len(x))
            for r in range(eps.shape[0]):
                for s in range(0, len(x), 256):
                    xb = x[s:s + 256]
                    per[s:s + 256] += np.asarray(_eval_loss(model, xb, np.full(len(xb), k, np.int32),
                                                             eps[r, j, s:s + 256], self.alpha_bar, self.cfg))
            per /= eps.shape[0]
            out[:, j] = [per[y == c].mean() for c in range(kk)]
        return out

    def __call__(self, model) -> dict[str, np.ndarray]:
        d = self.data
        kk = len(self.cfg.classes)
        ltr = self._class_loss(model, d["x_train"], d["y_train"], self.eps_tr)
        lte = self._class_loss(model, d["x_test"], d["y_test"], self.eps_te)
        samples = np.concatenate([np.asarray(_eval_sample(model, self.noise[s:s + 256], self.alpha_bar,
                                                                             self.cfg))
                                  for s in range(0, self.cfg.n_samples, 256)])
        rep = memorization_report(samples.reshape(len(samples), -1), d["x_train"].reshape(len(d["x_train"]), -1),
                                  d["y_train"], kk)
        fs = np.asarray(self.feat(jnp.asarray(samples)))
        cfd = np.array([ev.frechet_distance(fs[rep.assigned_class == c], self.test_feat[c]) for c in range(kk)])
        return {"loss_train": ltr, "loss_test": lte, "eps_train": ev.normalised_error(ltr, self.s_ref),
                "eps_test": ev.normalised_error(lte, self.s_ref), "mem_fraction": rep.fraction,
                "mem_ci_low": rep.ci_low, "mem_ci_high": rep.ci_high, "mem_count": rep.count,
                "mem_overall": np.asarray(rep.overall), "cfd": cfd, "samples": samples[:16, 0]}


# ---------------------------------------------------------------------------------------------- training
_PER_CKPT = ("step", "wall", "train_loss_running", "loss_train", "loss_test", "eps_train", "eps_test",
             "mem_fraction", "mem_ci_low", "mem_ci_high", "mem_count", "mem_overall", "cfd", "samples")
_DIMS = {"step": ["checkpoint"], "wall": ["checkpoint"], "train_loss_running": ["checkpoint"],
         **{k: ["checkpoint", "class", "time"] for k in ("loss_train", "loss_test", "eps_train", "eps_test")},
         **{k: ["checkpoint", "class"] for k in ("mem_fraction", "mem_ci_low", "mem_ci_high", "mem_count", "cfd")},
         "mem_overall": ["checkpoint"], "samples": ["checkpoint", "sample", "row", "col"],
         "s_ref": ["class", "time"], "cfd_reference": ["class"]}


def _provenance() -> dict[str, Any]:
    import platform
    import subprocess

    try:
        here = Path(__file__).parent
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=here, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=here, timeout=10).stdout.strip()
        commit += "-dirty" if (commit and dirty) else ""  # uncommitted changes to tracked files
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return {"commit": commit, "device": f"{jax.devices()[0].device_kind} ({jax.default_backend()}), "
                                        f"{platform.processor() or platform.machine()}", "jax": jax.__version__}


def train(cfg: UNetConfig, outdir, *, resume: bool = False, progress: bool = True, stop_at: int | None = None,
          classifier_cache=None) -> Path:
    """Train (or resume) the run described by ``cfg`` into ``outdir``; returns the metrics path.

    ``resume=True`` continues from ``ckpt/latest.eqx`` (the stored config must equal ``cfg``); without it an
    existing checkpoint is an error. ``stop_at`` stops after that step (checkpointed), as a kill would.
    """
    out = Path(outdir)
    cfg_dict = dataclasses.asdict(cfg)
    if cfg_dict["loss_weights"] is None:  # absent = unweighted: configs of earlier runs still match
        del cfg_dict["loss_weights"]
    if cfg_dict["data"] == "real":  # likewise: real data = the configs (and content keys) of earlier runs
        del cfg_dict["data"]
    if cfg_dict["max_train_steps"] is None:
        del cfg_dict["max_train_steps"]
    cfg_json = json.dumps(cfg_dict, sort_keys=True)
    latest = out / "ckpt" / "latest.eqx"
    extends = None
    if (out / "config.json").is_file():
        old = json.loads((out / "config.json").read_text())
        if old["config"].get("max_train_steps", 0) is None:  # an explicit null is the absent (uncapped) field
            del old["config"]["max_train_steps"]
        new = json.loads(cfg_json)
        # the run's key is the content key of its config (every field; version included). One change is
        # allowed: raising the extension cap, which leaves every step up to the old cap's target unchanged (the
        # trajectory does not depend on the cap, and the extension grid continues the old one), so the stored
        # run is a prefix of the new one
        old_cap, new_cap = old["config"].get("max_train_steps"), new.get("max_train_steps")
        same_but_cap = (content_key({k: v for k, v in old["config"].items() if k != "max_train_steps"})
                        == content_key({k: v for k, v in new.items() if k != "max_train_steps"}))
        raised = new_cap is not None and (old_cap is None or new_cap >= old_cap)
        if content_key(old["config"]) != content_key(new):
            if not (same_but_cap and raised and resume):
                what = ", ".join(changed_inputs(key_digests(**old["config"]), key_digests(**new)))
                raise ValueError(f"{out} holds a run with a different config (changed: {what})"
                                 + ("; raising max_train_steps needs resume=True" if same_but_cap and raised
                                    else "") + "; choose another --out")
            extends = old
        if latest.is_file() and not resume:
            raise ValueError(f"{out} already holds a checkpoint; pass --resume to continue it")
    t_start = time.perf_counter()
    data = prepare_data(cfg)
    stats = data["stats"]
    predicted = prediction(cfg, stats)
    if extends is not None:  # the cap was raised: the stored config says so, and since when
        prov = {**extends["provenance"], "extensions": [*extends["provenance"].get("extensions", []), {
            "from_max_train_steps": extends["config"].get("max_train_steps"), **_provenance()}]}
        atomic_write_text(out / "config.json", json.dumps({"config": json.loads(cfg_json), "provenance": prov},
                                                          indent=1))
    if not (out / "config.json").is_file():
        atomic_write_text(out / "config.json", json.dumps({"config": json.loads(cfg_json),
                                                          "provenance": _provenance()}, indent=1))
        save_result(out / "subset.npz", {"train_indices": data["train_indices"], **{
            f"stats_{k}": np.asarray(v) for k, v in stats._asdict().items()}},
            predicted)
    alpha_bar = jnp.asarray(make_schedule(cfg.schedule, cfg.num_steps), dtype=jnp.float32)
    x_train = jnp.asarray(data["x_train"])
    w_train = None
    if cfg.loss_weights is not None:
        from ..theory.loss_weights import normalise_loss_weights

        pi = np.bincount(data["y_train"], minlength=len(cfg.classes)) / len(data["y_train"])
        w_train = jnp.asarray(normalise_loss_weights(cfg.loss_weights, pi, "[unet] loss_weights")[data["y_train"]],
                              jnp.float32)
    state, (running, n_running) = (_load_state(latest, cfg) if (resume and latest.is_file())
                                   else (init_state(cfg), (0.0, 0)))
    model, opt_state, key, step = state
    rows: dict[str, list] = {k: [] for k in _PER_CKPT}
    if resume and (out / "metrics.npz").is_file():
        arrays, _ = load_result(out / "metrics.npz")
        keep = arrays["step"] <= step  # rows written after the last checkpoint are recomputed identically
        rows = {k: list(arrays[k][keep]) for k in _PER_CKPT}
    cache = Path(classifier_cache or cfg.classifier_cache or out / "classifier.eqx")
    evaluator = _Evaluator(cfg, data, alpha_bar, cache)
    evals = [int(s) for s in eval_steps(cfg, extended=True) if s > step]

    def stop_now():
        target = target_step(cfg, [int(v) for v in rows["step"]], rows["mem_fraction"])
        return min(target, stop_at) if stop_at is not None else target

    stop = stop_now()
    from tqdm.auto import tqdm

    bar = tqdm(total=stop, initial=step, disable=not progress, desc="unet", unit="step")
    wall0 = rows["wall"][-1] if rows["wall"] else 0.0
    t_seg = time.perf_counter()
    while step < stop:
        model, opt_state, key, loss = train_step(model, opt_state, key, x_train, alpha_bar, cfg, w_train)
        step += 1
        running, n_running = running + float(loss), n_running + 1
        bar.update(1)
        if evals and step == evals[0]:
            evals.pop(0)
            res = evaluator(model)
            wall0 += time.perf_counter() - t_seg
            t_seg = time.perf_counter()
            res.update(step=np.asarray(step), wall=np.asarray(wall0),
                       train_loss_running=np.asarray(running / max(n_running, 1)))
            running, n_running = 0.0, 0
            for k in _PER_CKPT:
                rows[k].append(np.asarray(res[k]))
            _write_metrics(out, rows, evaluator, stats, predicted)
            bar.set_postfix(mem=np.round(res["mem_fraction"], 2).tolist())
            _save_state(out / "ckpt" / f"step_{step:07d}.eqx", (model, opt_state, key, step))
            _save_state(latest, (model, opt_state, key, step))
            stop = stop_now()  # past train_steps, an evaluation decides whether the run goes on
            bar.total = stop
        elif step % cfg.checkpoint_every == 0 or step == stop:
            _save_state(latest, (model, opt_state, key, step), (running, n_running))
    bar.close()
    if progress:
        print(f"unet: step {step}/{stop} in {time.perf_counter() - t_start:.0f} s -> {out}")
    return out / "metrics.npz"


def prediction(cfg: UNetConfig, stats) -> dict:
    """The d → ∞ theory's generalisation and memorisation orders (first first) for a run's classes, recorded with
    the run: :func:`rfdiff.unet.theory_map.theory_prediction` on the moment-matched mixture of ``stats`` (the
    training subset's proportions, population variances and centroids), ψ_n = n/d, ψ_p = 8, relu, t = the smallest
    loss time, the run's loss weights; ridge clock. Orders are None, and ``rule`` says why, where the theory does
    not resolve a time on its τ grid (e.g. a class that never memorises ties the order)."""
    from ..errors import ConvergenceError
    from .theory_map import theory_prediction

    d, n, t = cfg.image_size ** 2, int(np.sum(stats.counts)), float(min(cfg.loss_times))
    rule = (f"d → ∞ theory (rfdiff.unet.theory_map.theory_prediction: moment-matched mixture, psi_n = n/d = "
            f"{n / d:.3g}, psi_p = 8, relu, t = {t:g}, ridge clock)")
    try:
        p = theory_prediction(stats, d=d, n=n, t=t, loss_weights=cfg.loss_weights)
    except (ValueError, ConvergenceError) as err:
        return {"predicted_order_gen": None, "predicted_order_mem": None, "rule": f"{rule}: unresolved ({err})"}
    return {"predicted_order_gen": p.order_gen.tolist(), "predicted_order_mem": p.order_mem.tolist(), "rule": rule}


def _write_metrics(out, rows, evaluator, stats, predicted):
    cfg = evaluator.cfg
    arrays = {k: np.stack(v) for k, v in rows.items()}
    arrays["s_ref"], arrays["cfd_reference"] = evaluator.s_ref, evaluator.cfd_reference
    attrs = {"dims": _DIMS, "coords": {"class": list(cfg.classes), "time": evaluator.t.tolist(),
                                       "time_step": evaluator.k.tolist()},
             "classifier": evaluator.clf_meta, **predicted,
             "stats": {k: np.asarray(v).tolist() for k, v in stats._asdict().items()}}
    save_result(out / "metrics.npz", arrays, attrs)
