"""CPU protocol that decides the U-Net's per-class order on Fashion-MNIST → validation/unet/README.md + PNGs.

Design (theory_notes/07_unet.md §8): training sets small enough that every class of every run memorises within
the step budget on 2 CPU cores — n = 20 images of 14×14 pixels (2×2 average pooling), a (16, 32)-channel U-Net,
Adam lr 3·10⁻³, batch 32, 4 000 steps, 16 log-spaced evaluations from step 5 — so the per-class memorisation
times are measured, not bounded. A run in which some class has not memorised (f_mem ≥ 1/2 at an evaluation) by
step 4 000 goes on along the continued log grid (steps 6 246, 9 753, 15 229) until every class has, up to
``MAX_STEPS`` (``UNetConfig.max_train_steps``, :func:`rfdiff.unet.training.target_step`); τ_mem is a first crossing,
so the extension changes nothing that was already measured, and a run started before the cap existed is continued
exactly (its steps up to 4 000 are those of the capped run).

* main grid: two pairs of classes with clearly different pixel variance — Bag (8) vs Sneaker (7) and Shirt (6)
  vs Trouser (1), the high-variance class first — each balanced (10, 10), with the high-variance class at 10 %
  (2, 18) and at 90 % (18, 2); seeds 0, 1, 2 (seed = subset, initial weights, training stream);
* pilot: Bag vs Sneaker balanced at n_c = 5, 20 (4 000 steps) and 40 (8 000 steps), seed 0, with the main grid's
  n_c = 10 run: how τ_mem,c scales with n_c at fixed everything else;
* weighted (issue "loss weights that close the window"): Bag vs Sneaker at 10 % and 90 % with the per-class loss
  weights the theory recommends for the target "window" (:func:`rfdiff.unet.theory_map.recommended_weights` on
  the moment-matched mixture; cached in ``weights.json`` beside this script, keyed by its inputs), seeds 0–2.

τ_gen falls within the first few Adam steps, so every main-grid and weighted run is repeated to step 120 with
evaluations from step 1 (``--early``: same seed, hence the same trajectory) and the report joins the curves.

Every run is resumable (``rfdiff.unet.training.train(..., resume=True)``): rerunning after a kill continues where
it stopped, bit-identically. Runs can be spread over processes (``--worker 0/2`` and ``--worker 1/2``; on a
2-core machine set ``XLA_FLAGS=--xla_cpu_multi_thread_eigen=false`` so each uses one core). The report
(``write_report.py``) reads whatever runs have finished.

    python validation/unet/report.py [--runs-dir runs/unet_protocol] [--worker I/N] [--early] [--report-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
ROOT = HERE.parents[1]

from rfdiff.unet.fmnist import find_fashion_mnist  # noqa: E402
from rfdiff.unet.training import UNetConfig, train  # noqa: E402

NAMES = {0: "T-shirt", 1: "Trouser", 2: "Pullover", 3: "Dress", 4: "Coat", 5: "Sandal", 6: "Shirt", 7: "Sneaker",
         8: "Bag", 9: "Ankle boot"}
PAIRS = {"bag-sneaker": (8, 7), "shirt-trouser": (6, 1)}  # high pixel variance first (σ² 0.257/0.091, 0.197/0.092)
SETTINGS = {"balanced": (10, 10), "high-minority": (2, 18), "high-majority": (18, 2)}
SEEDS = (0, 1, 2)
PILOT = {5: 4000, 20: 4000, 40: 8000}  # n_c → steps (n_c = 10 is the main grid's balanced seed-0 run)
THEORY = {"psi_p": 8.0, "t": 0.02, "activation": "relu"}  # the RF model the classes are mapped onto
WEIGHT_TARGET = "window"
WEIGHTED = ("high-minority", "high-majority")  # settings of bag-sneaker run again with the theory's weights
CACHE = HERE  # weights.json (and write_report's theory.json) live beside the report
# τ_gen at t₀ falls within the first ~5 Adam steps at lr 3·10⁻³, before the main grid's first evaluation: each
# main-grid and weighted run is repeated up to step EARLY["train_steps"] with evaluations from step 1 (same seed,
# same minibatch stream, so the same trajectory; the report checks the common steps agree) and τ_gen is read
# from the joined curves
EARLY = {"train_steps": 120, "first_eval": 1, "n_eval": 16, "max_train_steps": None}
MAX_STEPS = 16_000  # extension cap: the continued grid's last point under it is step 15 229
BASE = UNetConfig(classes=(8, 7), counts=(10, 10), downsample=2, channels=(16, 32), batch_size=32, lr=3e-3,
                  train_steps=4000, first_eval=5, n_eval=16, n_samples=200, sample_steps=20, n_test_per_class=200,
                  loss_times=(0.02, 0.1, 0.5), loss_draws=1, checkpoint_every=250,
                  max_train_steps=MAX_STEPS)


def weights_for(pair: str, setting: str, data_path=None) -> list[float]:
    """The theory's loss weights for one (pair, setting), from ``weights.json`` when its inputs match."""
    from rfdiff.io import atomic_write_text, content_key
    from rfdiff.unet.training import prepare_data
    from rfdiff.unet.theory_map import recommended_weights

    cfg = dataclasses.replace(BASE, classes=PAIRS[pair], counts=SETTINGS[setting], data_path=data_path)
    data = prepare_data(cfg)
    st = data["stats"]
    d = int(np.prod(data["x_train"].shape[1:]))
    n = int(sum(SETTINGS[setting]))
    inputs = {"variance": st.variance.tolist(), "gram": st.centroid_gram.tolist(), "counts": list(SETTINGS[setting]),
              "d": d, "n": n, "target": WEIGHT_TARGET, **THEORY}
    key = content_key(**inputs)
    path = CACHE / "weights.json"
    table = json.loads(path.read_text()) if path.is_file() else {}
    entry = table.get(f"{pair}/{setting}")
    if entry is None or entry["key"] != key:
        r = recommended_weights(st, WEIGHT_TARGET, d=d, n=n, **THEORY)
        entry = {"key": key, "inputs": inputs, "weights": r.weights.tolist(),
                 "tau_gen_before": r.before.tau_gen.tolist(), "tau_gen_after": r.after.tau_gen.tolist(),
                 "tau_mem_before": r.before.tau_end.tolist(), "tau_mem_after": r.after.tau_end.tolist(),
                 "window_decades_before": float(r.before.width_decades),
                 "window_decades_after": float(r.after.width_decades)}
        table[f"{pair}/{setting}"] = entry
        atomic_write_text(path, json.dumps(table, indent=1, sort_keys=True) + "\n")
    return entry["weights"]


def runs(data_path=None, with_weights: bool = True) -> dict[str, UNetConfig]:
    """Every run of the protocol, in the order the workers take them: the main grid, the pilot, the weighted runs."""
    out: dict[str, UNetConfig] = {}

    def main(seed):
        for pair, cls in PAIRS.items():
            for setting, counts in SETTINGS.items():
                out[f"{pair}_{setting}_s{seed}"] = dataclasses.replace(BASE, classes=cls, counts=counts, seed=seed)

    def weighted(seed):
        for setting in WEIGHTED:
            w = weights_for("bag-sneaker", setting, data_path) if with_weights else (1.0, 1.0)
            out[f"bag-sneaker_{setting}_{WEIGHT_TARGET}_s{seed}"] = dataclasses.replace(
                BASE, classes=PAIRS["bag-sneaker"], counts=SETTINGS[setting], seed=seed, loss_weights=tuple(w))

    for seed in SEEDS:
        main(seed)
    for nc, steps in PILOT.items():
        out[f"bag-sneaker_nc{nc}_s0"] = dataclasses.replace(BASE, classes=PAIRS["bag-sneaker"], counts=(nc, nc),
                                                            train_steps=steps)
    for seed in SEEDS:
        weighted(seed)
    return out


def early_runs(data_path=None) -> dict[str, UNetConfig]:
    """The dense early-step repeat of every main-grid and weighted run (not the pilot), under ``early/``."""
    return {f"early/{name}": dataclasses.replace(cfg, **EARLY) for name, cfg in runs(data_path).items()
            if "_nc" not in name}


def run_all(runs_dir: Path, data_path, worker: tuple[int, int], early: bool = False):
    i, n = worker
    todo = list((early_runs(data_path) if early else runs(data_path)).items())[i::n]
    for j, (name, cfg) in enumerate(todo):
        cfg = dataclasses.replace(cfg, data_path=data_path, classifier_cache=str(runs_dir / "classifier14.eqx"))
        t0 = time.perf_counter()
        train(cfg, runs_dir / name, resume=True, progress=False)
        print(f"[worker {i}/{n}] {j + 1}/{len(todo)} {name}: {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", type=Path, default=ROOT / "runs" / "unet_protocol")
    ap.add_argument("--data", default=None, help="Fashion-MNIST directory (else $RFDIFF_FASHION_MNIST, Debian)")
    ap.add_argument("--worker", default="0/1", help="I/N: run every N-th run starting at I (default 0/1: all)")
    ap.add_argument("--report-only", action="store_true")
    ap.add_argument("--early", action="store_true", help="run the dense early-step repeats (for τ_gen) instead")
    args = ap.parse_args()
    try:
        wi, wn = (int(v) for v in args.worker.split("/"))
        assert 0 <= wi < wn
    except (ValueError, AssertionError):
        raise SystemExit(f"--worker must be I/N with 0 ≤ I < N, got {args.worker!r}")
    try:  # the data first: a missing copy is a one-line message, not a traceback after the set-up
        find_fashion_mnist(args.data)
    except FileNotFoundError as err:
        raise SystemExit(f"report.py: {err}")
    if not args.report_only:
        run_all(args.runs_dir, args.data, (wi, wn), early=args.early)
    if wi == 0 or args.report_only:
        from write_report import write_report  # the report writer, beside this script

        write_report(sys.modules[__name__], args.runs_dir, HERE, runs(args.data), args.data)
