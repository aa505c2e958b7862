"""The GPU protocol (issue #14 item 2): one prepared command for a lent GPU that measures and runs

1. **U-Net throughput** at the network of ``validation/gpu/unet_gpu.toml``: s per Adam step (the trainer's own
   jitted ``train_step`` in a Python loop with a host sync per step, as ``rfdiff.unet.training.train`` runs
   it), XLA's FLOP count of that step, and the cost of one evaluation (DDIM sampling and the per-class losses,
   timed per batch and multiplied by the spec's batch counts); from these, the projected time of the run;
2. **the RF trainer at scale**: d ∈ {2000, 4000}, ψ_p ∈ {2, 4, 8}, ψ_n = 0.5, fresh noise, "linear" control
   variate, full batch, float32 — steps/s (k and 2k steps of the trainer's compiled loop, difference), achieved
   GFLOP/s (matmul FLOPs counted per step, ``benchmarks/_measure.rf_step_flops``), the fraction of a float32
   8192² matmul measured alternately in the same process, and the peak device memory (``memory_stats``; "n/a
   on this backend" where there is none). Each configuration runs in its own process, so the peak is its own;
3. **the full-size U-Net run** of the spec (28×28, 1000 images, log-spaced checkpoints, the metrics of
   ``rfdiff simulate unet``) under a time guard: after a first segment it trains to the last log-spaced
   evaluation step that fits the remaining budget at the rates of part 1. The run folder
   (``runs/gpu_protocol_unet``) is resumable where it is kept — ``rfdiff simulate unet
   validation/gpu/unet_gpu.toml --out runs/gpu_protocol_unet --resume`` continues it bit-identically — but its
   checkpoints do not come back through ``$OUT``: a fresh machine starts the run again.

It writes ``protocol.md`` (device, duration, commit, all numbers) and ``protocol.json`` to ``--out`` (default
``$OUT``, else ``runs/gpu_protocol``), with the U-Net run's ``metrics.npz``/``metrics.nc``/``summary.json``.

On a lent H200 (a later session; the data travel in the git-ignored ``data/`` folder)::

    # here, once:  mkdir -p data && cp -r /work/shared/data/fashion-mnist data/    (data/ is git-ignored)
    # and put this checkout's `git rev-parse --short HEAD` into RFDIFF_COMMIT (no .git travels)
    run(command="RFDIFF_COMMIT=abc1234 RFDIFF_FASHION_MNIST=data/fashion-mnist PYTHONPATH=. PYTHONUNBUFFERED=1 "
                "python3 validation/gpu/protocol.py --out $OUT --budget-s 500 2>&1 | tee $OUT/log.txt",
        carry=["data/fashion-mnist"], timeout_s=590)

CPU dry run at tiny size (tests/test_gpu_protocol.py): ``python validation/gpu/protocol.py --smoke --out DIR``.
The CPU measurement and the H200 estimate (validation/gpu/README.md): ``python validation/gpu/protocol.py estimate
--steps 10 --batch-size 16 --dtype float32 --eval-batch 16 --ddim-steps 2``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

SPEC = Path(__file__).with_name("unet_gpu.toml")
RF_GRID = ((2000, 2.0), (2000, 4.0), (2000, 8.0), (4000, 2.0), (4000, 4.0), (4000, 8.0))
SMOKE_RF_GRID = ((48, 2.0),)
PSI_N, RF_T = 0.5, 0.05
# the smoke run's U-Net: the tiny sizes of tests/unet/test_training.py
SMOKE_UNET = dict(classes=[8, 7], counts=[6, 6], downsample=4, channels=[4], num_steps=50, batch_size=4, lr=1e-3,
                  train_steps=10, first_eval=2, n_eval=3, n_samples=12, sample_steps=3, n_test_per_class=6,
                  loss_draws=1, checkpoint_every=3, loss_times=[0.05, 0.5])
# Assumptions of the CPU → H200 estimate (``estimate``): dense bf16 matrix rate measured on this workplace's
# H200 (/work/.library/device/KINDS.md, 8192³ on random data), a range of efficiencies for a small conv net
# and a floor per step for launching ~100 fused kernels plus the host sync of the trainer's Python loop.
H200_BF16 = 790e12
EFFICIENCY = (0.10, 0.02)  # optimistic, pessimistic
FLOOR_S = (1e-3, 5e-3)


def _commit() -> str:
    if os.environ.get("RFDIFF_COMMIT"):
        return os.environ["RFDIFF_COMMIT"]
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT,
                             timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, cwd=ROOT, timeout=10).stdout.strip()
        return (out + ("-dirty" if dirty else "")) if out else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _device() -> dict:
    import jax

    dev = jax.devices()[0]
    return {"device": f"{dev.device_kind} ({jax.default_backend()})", "n_devices": jax.device_count(),
            "jax": jax.__version__, "host": f"{platform.machine()}, {os.cpu_count()} cores visible",
            "python": platform.python_version(),
            "matmul_precision": str(getattr(jax.config, "jax_default_matmul_precision", None) or "default")}


def _load_cfg(spec):
    from rfdiff.spec import load_spec

    cfg = load_spec(spec).unet
    if cfg is None:
        raise ValueError(f"--spec {spec} has no [unet] section")
    return cfg


# ------------------------------------------------------------------------------------------ 1. U-Net throughput
def unet_throughput(cfg, steps: int, ddim_steps: int | None = None, eval_batch: int = 256) -> dict:
    """Seconds per training step, per evaluation and projected for the whole run of ``cfg`` on this device.

    Training images are synthetic (uniform in [−1, 1]; the cost of a step does not depend on their values).
    DDIM is timed on one batch of min(eval_batch, n_samples) for ``ddim_steps`` (default: the spec's) steps,
    the per-class loss on one batch of min(eval_batch, n_train) rows, both scaled to 256 rows (the evaluator's
    batch, ``rfdiff.unet.training._Evaluator``; linear in rows — true on a CPU, an upper bound on a GPU); an
    evaluation is costed as the spec's number of such batches, an upper bound for the last, partial batch.
    The classifier features and the memorisation report are not included.
    """
    import jax
    import jax.numpy as jnp
    import numpy as np

    from rfdiff.unet.model import ddim_sample, make_schedule
    from rfdiff.unet.training import _eval_loss, eval_steps, init_state, train_step

    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    ddim_steps = int(ddim_steps or cfg.sample_steps)
    n_train = int(sum(cfg.counts)) if cfg.counts is not None else int(cfg.n_train)
    n_test = len(cfg.classes) * int(cfg.n_test_per_class)
    hw = cfg.image_size
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.uniform(-1, 1, (n_train, 1, hw, hw)), jnp.float32)
    ab = jnp.asarray(make_schedule(cfg.schedule, cfg.num_steps), jnp.float32)
    model, opt, key, _ = init_state(cfg)

    def clocks():
        return np.array([time.perf_counter(), time.process_time()])  # wall, CPU time of all threads

    t0 = clocks()
    model, opt, key, loss = train_step(model, opt, key, x, ab, cfg)
    float(loss)
    t_compile = (clocks() - t0)[0]
    t0 = clocks()
    for _ in range(steps):  # as the trainer: one jitted step and one host sync (float(loss)) per step
        model, opt, key, loss = train_step(model, opt, key, x, ab, cfg)
        float(loss)
    t_step = (clocks() - t0) / steps
    flops_step = _flops_or_nan(train_step, model, opt, key, x, ab, cfg)

    bs = min(eval_batch, int(cfg.n_samples))
    noise = jnp.asarray(rng.standard_normal((bs, 1, hw, hw)), jnp.float32)
    dt = jnp.bfloat16 if cfg.dtype == "bfloat16" else jnp.float32
    jax.block_until_ready(ddim_sample(model, noise, ab, cfg.num_steps, ddim_steps, True, dt))  # compile
    t0 = clocks()
    jax.block_until_ready(ddim_sample(model, noise, ab, cfg.num_steps, ddim_steps, True, dt))
    t_ddim = (clocks() - t0) / ddim_steps * 256 / bs  # one DDIM step of one 256-row batch

    bl = min(eval_batch, n_train)
    kk = np.full(bl, cfg.num_steps // 2, np.int32)
    eps = np.asarray(rng.standard_normal((bl, 1, hw, hw)), np.float32)
    jax.block_until_ready(_eval_loss(model, x[:bl], kk, eps, ab, cfg))
    t0 = clocks()
    for _ in range(3):
        jax.block_until_ready(_eval_loss(model, x[:bl], kk, eps, ab, cfg))
    t_loss = (clocks() - t0) / 3 * 256 / bl
    flops_fwd = _flops_or_nan(_eval_loss, model, x[:bl], kk, eps, ab, cfg) / bl

    n_ddim = math.ceil(cfg.n_samples / 256) * cfg.sample_steps
    n_loss = cfg.loss_draws * len(cfg.loss_times) * (math.ceil(n_train / 256) + math.ceil(n_test / 256))
    t_eval = n_ddim * t_ddim + n_loss * t_loss
    n_evals = len(eval_steps(cfg))
    total = cfg.train_steps * t_step + n_evals * t_eval
    # wall-clock figures (what a run takes on this device), then CPU-time ones (all threads; on a shared CPU
    # the load-independent cost)
    return {"train_steps": int(cfg.train_steps), "n_evals": n_evals, "timed_steps": steps, "ddim_steps": ddim_steps,
            "eval_batch": eval_batch,
            "batch_size": int(cfg.batch_size), "image_size": hw, "channels": list(cfg.channels), "dtype": cfg.dtype,
            "s_per_step": t_step[0], "steps_per_s": 1.0 / t_step[0], "compile_s": t_compile,
            "flops_per_step": flops_step, "gflops_per_s": flops_step / t_step[0] / 1e9,
            "flops_per_forward_image": flops_fwd, "s_per_ddim_batch_step": t_ddim[0], "s_per_loss_batch": t_loss[0],
            "ddim_batch_steps_per_eval": n_ddim, "loss_batches_per_eval": n_loss, "s_per_eval": t_eval[0],
            "projected_train_s": cfg.train_steps * t_step[0], "projected_eval_s": n_evals * t_eval[0],
            "projected_total_s": total[0],
            "cpu_s_per_step": t_step[1], "cpu_gflops_per_s": flops_step / t_step[1] / 1e9,
            "cpu_s_per_ddim_batch_step": t_ddim[1], "cpu_s_per_loss_batch": t_loss[1], "cpu_s_per_eval": t_eval[1],
            "cpu_projected_total_s": total[1]}


def unet_flops(cfg) -> dict:
    """XLA's FLOP counts at the spec's sizes (lowered, nothing compiled or run): one training step and one
    forward pass per image, with the evaluation's batch counts (see :func:`unet_throughput`)."""
    import jax.numpy as jnp
    import numpy as np

    from benchmarks._measure import xla_flops
    from rfdiff.unet.model import make_schedule
    from rfdiff.unet.training import _eval_loss, eval_steps, init_state, train_step

    n_train = int(sum(cfg.counts)) if cfg.counts is not None else int(cfg.n_train)
    n_test = len(cfg.classes) * int(cfg.n_test_per_class)
    hw = cfg.image_size
    x = jnp.zeros((n_train, 1, hw, hw), jnp.float32)
    ab = jnp.asarray(make_schedule(cfg.schedule, cfg.num_steps), jnp.float32)
    model, opt, key, _ = init_state(cfg)
    bl = min(256, n_train)
    fwd = xla_flops(_eval_loss, model, x[:bl], np.zeros(bl, np.int32), np.zeros((bl, 1, hw, hw), np.float32), ab,
                    cfg) / bl
    return {"flops_per_step": xla_flops(train_step, model, opt, key, x, ab, cfg), "flops_per_forward_image": fwd,
            "train_steps": int(cfg.train_steps), "n_evals": len(eval_steps(cfg)),
            "ddim_batch_steps_per_eval": math.ceil(cfg.n_samples / 256) * cfg.sample_steps,
            "loss_batches_per_eval": cfg.loss_draws * len(cfg.loss_times) * (math.ceil(n_train / 256)
                                                                              + math.ceil(n_test / 256))}


def _flops_or_nan(fn, *args) -> float:
    """XLA's FLOP count, or NaN where this jax version/backend gives none (the timings do not depend on it)."""
    from benchmarks._measure import xla_flops

    try:
        return xla_flops(fn, *args)
    except Exception as err:  # noqa: BLE001 — an optional figure must not stop the protocol
        print(f"no FLOP count: {type(err).__name__}: {err}", flush=True)
        return float("nan")


def gpu_estimate(fl: dict) -> dict:
    """The H200 time of the run from XLA's FLOP counts (:func:`unet_flops`), optimistic and pessimistic."""
    out = {}
    for name, eff, floor in (("optimistic", EFFICIENCY[0], FLOOR_S[0]), ("pessimistic", EFFICIENCY[1], FLOOR_S[1])):
        rate = eff * H200_BF16
        t_step = max(fl["flops_per_step"] / rate, floor)
        t_batch = max(fl["flops_per_forward_image"] * 256 / rate, floor)  # one 256-row batch of forwards
        t_eval = (fl["ddim_batch_steps_per_eval"] + fl["loss_batches_per_eval"]) * t_batch
        out[name] = {"efficiency": eff, "floor_s": floor, "s_per_step": t_step, "s_per_eval": t_eval,
                     "train_s": fl["train_steps"] * t_step, "eval_s": fl["n_evals"] * t_eval,
                     "total_s": fl["train_steps"] * t_step + fl["n_evals"] * t_eval}
    return out


# ------------------------------------------------------------------------------------------ 2. RF trainer
def rf_one(d: int, psi_p: float, rounds: int, peak_size: int, target_s: float) -> dict:
    """One RF configuration (run in its own process): rates, FLOP fraction and peak memory."""
    import jax

    jax.config.update("jax_enable_x64", True)  # realise() draws W in float64; the trainer runs in float32
    import jax.numpy as jnp
    import numpy as np

    from benchmarks._measure import matmul_rate, median, peak_memory, rf_step_flops
    from rfdiff import GaussianMixture, RFModel
    from rfdiff.finite.features import realise
    from rfdiff.simulate.train import TrainConfig, _build

    mix = GaussianMixture.create([0.5, 0.5], [4.0, 1.0])
    prob = realise(jax.random.key(0), mix, RFModel(psi_p, PSI_N, RF_T, "tanh"), d)
    n, p = prob.n, prob.p
    # lr = 1/p < 2/λ_max(U) (λ_max ≤ tr U ≤ p for tanh): the timed steps stay finite; chunk = n: no padded rows
    cfg = TrainConfig(lr=1.0 / p, steps=1, noise="fresh", control_variate="linear", dtype="float32", chunk=n)
    run, _, data, state0 = _build(prob, cfg, None)  # the compiled segment loop that train_rf runs

    def go(k):
        t0 = time.perf_counter()
        out = run(state0, data, jnp.asarray(0), jnp.asarray(k))
        jax.block_until_ready(out)
        if not bool(jnp.all(jnp.isfinite(out[0]))):
            raise FloatingPointError(f"d={d}, psi_p={psi_p}: non-finite weights after {k} steps")
        return time.perf_counter() - t0

    t_first = go(1)  # compile + one step
    mem = peak_memory()  # the trainer and its problem only (the matmul comes later)
    t1 = min(go(1), go(1))
    k = int(min(max(round(target_s / max(t1, 1e-6)), 2), 2000))
    rates, peaks = [], []
    for _ in range(rounds):  # trainer and matmul alternately: both under the same conditions
        rates.append(_marginal_rate(go, k))
        peaks.append(matmul_rate(peak_size, jnp.float32, reps=3))
    flops = rf_step_flops(n, d, p, 1, "linear")
    r, pk = np.asarray(rates), np.asarray(peaks)
    frac = flops * r / pk
    return {"d": d, "psi_p": psi_p, "p": p, "n": n, "k": k, "rounds": rounds, "flops_per_step": flops,
            "steps_per_s": median(r), "gflops_per_s": flops * median(r) / 1e9, "peak_gflops_per_s": median(pk) / 1e9,
            "peak_size": peak_size, "fraction": median(frac), "fraction_min": float(np.nanmin(frac)),
            "fraction_max": float(np.nanmax(frac)), "compile_and_first_step_s": t_first,
            "peak_memory_bytes": mem, "W_float64_bytes": 8 * p * d, "A_float32_bytes": 4 * d * p}


def _marginal_rate(go, k: int, max_doublings: int = 6) -> float:
    """Steps per second of the loop body alone: k / (t(2k) − t(k)), dispatch and launch cancelling.

    On a loaded machine the difference of two short timings can come out ≤ 0; then each timing is the best of
    three and k doubles until the difference is positive, so the rate is never a NaN or a negative number.
    """
    for _ in range(max_doublings + 1):
        extra = min(go(2 * k) for _ in range(3)) - min(go(k) for _ in range(3))
        if extra > 0:
            return k / extra
        k *= 2
    raise RuntimeError(f"the loop time did not grow from {k // 2} to {k} steps: the timer cannot resolve it")


def rf_grid(grid, rounds, peak_size, target_s, timeout_s, deadline) -> list[dict]:
    """Each configuration in a fresh process (its own peak memory; a failure or OOM costs only its row)."""
    rows = []
    for d, psi in grid:
        left = deadline - time.monotonic()
        if left < 20:
            rows.append({"d": d, "psi_p": psi, "error": "not run: time budget spent"})
            continue
        with _tmp_json() as path:
            cmd = [sys.executable, str(Path(__file__).resolve()), "rf-one", "--d", str(d), "--psi-p", str(psi),
                   "--rounds", str(rounds), "--peak-size", str(peak_size), "--target-s", str(target_s),
                   "--json", str(path)]
            t0 = time.monotonic()
            try:
                res = subprocess.run(cmd, capture_output=True, text=True, timeout=min(timeout_s, left),
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
                if res.returncode == 0:
                    row = json.loads(path.read_text())
                else:
                    tail = (res.stderr.strip().splitlines() or ["(no stderr)"])[-1]
                    row = {"d": d, "psi_p": psi, "error": f"exit {res.returncode}: {tail[:300]}"}
            except subprocess.TimeoutExpired:
                row = {"d": d, "psi_p": psi, "error": f"timed out after {min(timeout_s, left):.0f} s"}
            row["process_s"] = time.monotonic() - t0
        print(f"rf d={d} psi_p={psi}: " + (f"{row['steps_per_s']:.3g} steps/s, {row['gflops_per_s']:.4g} GFLOP/s, "
                                           f"{row['fraction']:.1%} of matmul" if "error" not in row else row["error"]),
              flush=True)
        rows.append(row)
    return rows


class _tmp_json:
    def __enter__(self):
        import tempfile

        fd, name = tempfile.mkstemp(suffix=".json")
        os.close(fd)
        self.path = Path(name)
        return self.path

    def __exit__(self, *exc):
        self.path.unlink(missing_ok=True)


# ------------------------------------------------------------------------------------------ 3. U-Net run
def unet_run(cfg, spec: Path, run_dir: Path, thr: dict, deadline: float) -> dict:
    """Train the spec's run into ``run_dir`` up to the last evaluation step that fits before ``deadline``."""
    import numpy as np

    from rfdiff.unet.training import eval_steps, summarise, train

    evals = [int(s) for s in eval_steps(cfg)]
    t0 = time.monotonic()
    # first segment: to the first evaluation step ≥ 1 % of the run (data, classifier, compilation included)
    s1 = next(s for s in evals if s >= 0.01 * cfg.train_steps)
    train(cfg, run_dir, resume=True, progress=False, stop_at=s1)
    e1 = time.monotonic() - t0
    n1 = sum(s <= s1 for s in evals)
    setup = max(0.0, e1 - s1 * thr["s_per_step"] - n1 * thr["s_per_eval"])  # per train() call, conservatively
    reached, segments = s1, [{"stop_at": s1, "wall_s": e1}]
    left = deadline - time.monotonic()
    fits = [s for s in evals if s > s1 and setup + (s - s1) * thr["s_per_step"]
            + sum(s1 < e <= s for e in evals) * thr["s_per_eval"] <= 0.9 * left]
    if fits:
        t1 = time.monotonic()
        train(cfg, run_dir, resume=True, progress=False, stop_at=fits[-1])
        reached = fits[-1]
        segments.append({"stop_at": reached, "wall_s": time.monotonic() - t1})
    complete = reached >= cfg.train_steps
    out = {"spec": str(spec), "train_steps": int(cfg.train_steps), "reached_step": int(reached),
           "complete": complete, "evals_done": int(sum(s <= reached for s in evals)), "n_evals": len(evals),
           "setup_s_estimate": setup, "segments": segments, "wall_s": time.monotonic() - t0}
    if complete:  # the CLI's own result files (metrics.nc, summary.json); training is already done
        from rfdiff.cli.main import main as cli

        rc = cli(["simulate", "unet", str(spec), "--out", str(run_dir), "--resume", "--quiet"])
        out["cli_rc"] = rc
    try:
        s = summarise(run_dir)
        out["summary"] = {k: (np.asarray(v).tolist() if hasattr(v, "tolist") or isinstance(v, (list, tuple)) else v)
                          for k, v in s.items() if k not in ("arrays", "attrs")}
    except Exception as err:  # noqa: BLE001 — a partial run may be too short for every time scale
        out["summary_error"] = f"{type(err).__name__}: {err}"
    return out


# ------------------------------------------------------------------------------------------ report
def _fmt_bytes(b):
    return "n/a on this backend" if b is None else f"{b / 2**30:.2f} GiB"


def report(res: dict) -> str:
    L = ["# GPU protocol results (`validation/gpu/protocol.py`)", "",
         f"Device: {res['device']['device']}, {res['device']['n_devices']} device(s); host {res['device']['host']}; "
         f"jax {res['device']['jax']} (matmul precision {res['device']['matmul_precision']}), Python "
         f"{res['device']['python']}. Commit {res['commit']}. Started "
         f"{res['started']}; total {res['wall_s']:.0f} s (budget {res['budget_s']:.0f} s)"
         + (" — **smoke run (tiny sizes, not a measurement)**" if res["smoke"] else "") + ".", ""]
    thr = res.get("unet_throughput")
    if thr:
        L += ["## 1. U-Net throughput at the spec's network", "",
              f"Spec `{res['spec']}`. {thr['timed_steps']} timed steps after compilation ({thr['compile_s']:.1f} s): "
              f"**{thr['s_per_step'] * 1e3:.2f} ms/step** ({thr['steps_per_s']:.1f} steps/s); XLA counts "
              f"{thr['flops_per_step'] / 1e9:.3g} GFLOP per step → {thr['gflops_per_s']:.4g} GFLOP/s. One evaluation "
              f"≈ {thr['s_per_eval']:.2f} s ({thr['ddim_batch_steps_per_eval']} DDIM batch-steps at "
              f"{thr['s_per_ddim_batch_step'] * 1e3:.2f} ms, {thr['loss_batches_per_eval']} loss batches at "
              f"{thr['s_per_loss_batch'] * 1e3:.2f} ms). Projected run: {thr['train_steps']} steps "
              f"{thr['projected_train_s']:.0f} s + {thr['n_evals']} evaluations {thr['projected_eval_s']:.0f} s = "
              f"**{thr['projected_total_s']:.0f} s**."]
        est = res.get("unet_estimate")
        if est:
            L += [f"A-priori H200 estimate from the same FLOP counts (validation/gpu/README.md): "
                  f"{est['optimistic']['s_per_step'] * 1e3:.2f}–{est['pessimistic']['s_per_step'] * 1e3:.2f} ms/step, "
                  f"run {est['optimistic']['total_s']:.0f}–{est['pessimistic']['total_s']:.0f} s."]
        L += [""]
    rf = res.get("rf")
    if rf is not None:
        L += ["## 2. RF trainer at scale (fresh noise, linear control variate, full batch, float32)", "",
              f"ψ_n = {PSI_N}, t = {RF_T}, tanh. FLOPs per step = 4ndp + 14ndp (matmuls, m = 1). Rate from k and 2k "
              "steps of the compiled loop; the float32 matmul peak is measured after each trainer timing, in the same "
              "process (default precision for both).", "",
              "| d | p | n | steps/s | GFLOP/s | matmul peak GFLOP/s | fraction (range) | peak device memory | compile + 1 step |",
              "|---|---|---|---|---|---|---|---|---|"]
        for r in rf:
            if "error" in r:
                L.append(f"| {r['d']} | ψ_p={r['psi_p']} | | {r['error']} | | | | | |")
                continue
            L.append(f"| {r['d']} | {r['p']} | {r['n']} | {r['steps_per_s']:.3g} | {r['gflops_per_s']:.4g} | "
                     f"{r['peak_gflops_per_s']:.4g} ({r['peak_size']}²) | {r['fraction']:.1%} "
                     f"({r['fraction_min']:.1%}–{r['fraction_max']:.1%}) | {_fmt_bytes(r['peak_memory_bytes'])} | "
                     f"{r['compile_and_first_step_s']:.1f} s |")
        L += ["", "Peak memory includes the realisation (W in float64, 8pd bytes) and the trainer's float32 copies.", ""]
    run = res.get("unet_run")
    if run:
        L += ["## 3. Full-size U-Net run", "",
              f"{run['spec']}: reached step {run['reached_step']} of {run['train_steps']} "
              f"({'complete' if run['complete'] else 'stopped by the time guard; resume with `rfdiff simulate unet '+run['spec']+' --out DIR --resume`'}), "
              f"{run['evals_done']}/{run['n_evals']} evaluations, {run['wall_s']:.0f} s.", ""]
        if "summary" in run:
            s = run["summary"]
            L += [f"Predicted order (theory): generalisation {s.get('predicted_order_gen')}, memorisation "
                  f"{s.get('predicted_order_mem')} ({s.get('rule')}); measured: memorisation "
                  f"{s.get('order_mem')}, generalisation {s.get('order_gen')}.", ""]
        elif "summary_error" in run:
            L += [f"Summary not available: {run['summary_error']}", ""]
    for name, msg in res.get("errors", {}).items():
        L += [f"**{name} failed:** {msg}", ""]
    return "\n".join(L)


# ------------------------------------------------------------------------------------------ main
def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("mode", nargs="?", default="run", choices=("run", "estimate", "rf-one"))
    ap.add_argument("--out", default=None, help="results folder (default $OUT, else runs/gpu_protocol)")
    ap.add_argument("--spec", default=str(SPEC), help="U-Net TOML spec (default validation/gpu/unet_gpu.toml)")
    ap.add_argument("--budget-s", type=float, default=None,
                    help="wall-clock budget of the whole run [s] (default 500; smoke 1700: a loaded CPU is slow)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes (CPU dry run)")
    ap.add_argument("--skip-rf", action="store_true")
    ap.add_argument("--skip-unet", action="store_true")
    ap.add_argument("--steps", type=int, default=None, help="timed U-Net steps (default 50; smoke 3)")
    ap.add_argument("--ddim-steps", type=int, default=None, help="timed DDIM steps (default: the spec's)")
    ap.add_argument("--batch-size", type=int, default=None, help="estimate: training batch of the CPU timing")
    ap.add_argument("--dtype", default=None, choices=("float32", "bfloat16"), help="estimate: CPU timing dtype")
    ap.add_argument("--eval-batch", type=int, default=256, help="rows of the timed evaluation batches")
    # rf-one (internal: one RF configuration in its own process)
    ap.add_argument("--d", type=int, default=None)
    ap.add_argument("--psi-p", type=float, default=None)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--peak-size", type=int, default=None, help="matmul side (default 8192; smoke 128)")
    ap.add_argument("--target-s", type=float, default=None, help="seconds of the k-step timing (default 0.3)")
    ap.add_argument("--json", default=None)
    args = ap.parse_args(argv)
    # no up-front grab of 75 % of the GPU: the RF configurations run in child processes beside this one, and
    # the peak-memory statistics then count what each process really allocates
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    if args.budget_s is None:
        args.budget_s = 1700.0 if args.smoke else 500.0
    if args.budget_s <= 0:
        ap.error("--budget-s must be > 0")
    peak_size = args.peak_size or (128 if args.smoke else 8192)
    target_s = args.target_s or (0.02 if args.smoke else 0.3)

    if args.mode == "rf-one":
        if args.d is None or args.psi_p is None or args.json is None:
            ap.error("rf-one needs --d, --psi-p and --json")
        Path(args.json).write_text(json.dumps(rf_one(args.d, args.psi_p, args.rounds, peak_size, target_s)))
        return 0

    t_start, started = time.monotonic(), time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    deadline = t_start + args.budget_s
    out = Path(args.out or os.environ.get("OUT") or ROOT / "runs" / "gpu_protocol")
    out.mkdir(parents=True, exist_ok=True)
    spec = Path(args.spec)
    if args.smoke:  # the tiny spec, written beside the results so the normal spec path is exercised
        spec = out / "smoke_unet.toml"
        spec.write_text("[unet]\n" + "\n".join(f"{k} = {json.dumps(v)}" for k, v in SMOKE_UNET.items()) + "\n")
    cfg = _load_cfg(spec)
    res = {"commit": _commit(), "device": _device(), "started": started, "budget_s": args.budget_s,
           "smoke": args.smoke, "spec": str(spec.relative_to(ROOT) if spec.is_relative_to(ROOT) else spec),
           "errors": {}}
    steps = args.steps or (3 if args.smoke else 50)

    if args.mode == "estimate":  # CPU throughput at the spec's network → the H200 estimate
        import dataclasses

        fl = unet_flops(cfg)
        res.update(unet_flops=fl, gpu_estimate=gpu_estimate(fl))
        print(json.dumps(res, indent=1), flush=True)
        # the CPU measurement at the spec's network and image size, with --batch-size/--dtype/--eval-batch
        # overrides to keep it within a shared CPU's means (rates per image scale linearly on a CPU)
        small = dataclasses.replace(cfg, batch_size=args.batch_size or cfg.batch_size,
                                    dtype=args.dtype or cfg.dtype)
        thr = unet_throughput(small, steps, args.ddim_steps, args.eval_batch)
        res.update(unet_throughput=thr, wall_s=time.monotonic() - t_start)
        (out / "estimate.json").write_text(json.dumps(res, indent=1))
        print(json.dumps(res, indent=1))
        return 0

    def save():
        res["wall_s"] = time.monotonic() - t_start
        (out / "protocol.json").write_text(json.dumps(res, indent=1, default=str))
        (out / "protocol.md").write_text(report(res) + "\n")

    thr = None
    if not args.skip_unet:
        try:
            thr = unet_throughput(cfg, steps, args.ddim_steps)
            res["unet_throughput"] = thr
            res["unet_estimate"] = gpu_estimate(thr)  # the a-priori H200 estimate, to set against the measurement
            print(f"unet throughput: {thr['s_per_step'] * 1e3:.2f} ms/step, {thr['s_per_eval']:.2f} s/eval, "
                  f"projected {thr['projected_total_s']:.0f} s", flush=True)
        except Exception as err:  # noqa: BLE001 — record and go on with the other parts
            res["errors"]["U-Net throughput"] = f"{type(err).__name__}: {err}"
        save()
    if not args.skip_rf:
        grid = SMOKE_RF_GRID if args.smoke else RF_GRID
        # the RF part gets at most 45 % of what is left, so the U-Net run keeps the rest
        rf_deadline = time.monotonic() + 0.45 * (deadline - time.monotonic()) if thr else deadline
        res["rf"] = rf_grid(grid, args.rounds, peak_size, target_s, 900 if args.smoke else 150, rf_deadline)
        save()
    if thr is not None:
        run_dir = out / "unet_run" if args.smoke else ROOT / "runs" / "gpu_protocol_unet"
        try:
            res["unet_run"] = unet_run(cfg, spec, run_dir, thr, deadline)
            for name in ("metrics.npz", "metrics.nc", "summary.json", "config.json"):
                if (run_dir / name).is_file() and not args.smoke:
                    shutil.copy2(run_dir / name, out / f"unet_{name}")
        except Exception as err:  # noqa: BLE001
            res["errors"]["U-Net run"] = f"{type(err).__name__}: {err}"
    save()
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
