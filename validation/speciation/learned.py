"""Speciation with learned scores (issue #14 item 3): RF scores per diffusion time and small U-Nets.

    python validation/speciation/learned.py STAGE [STAGE ...] [--quick]

Stages (each resumable; caches under runs/learned/ in the repository, git-ignored):

* ``unet-train``: three small U-Nets, Bag (8) vs Sneaker (7), 14×14, channels (16, 32), counts for imbalance
  ratios 1, 10, 100 (Bag the minority), checkpoints at an early and a late step (rfdiff.unet.training.train).
* ``unet``: cloning speciation φ_c(t) of each checkpoint with the U-Net as a score (rfdiff.unet.score) and the
  Fashion-MNIST classifier as the class decision; exact-score theory from a mixture mapped from class statistics.
* ``rf``: RF scores trained per diffusion time on a t-grid (rfdiff.simulate.generation.train_time_grid), used in
  the posterior-median speciation measurement (rfdiff.simulate.speciation.simulate_posteriors) at ratios 1, 10,
  100 and two training times, beside the exact-score theory and the exact-score simulation.
* ``memo``: RF memorisation scan (ψ_p, ψ_n, τ, t-grid) with rfdiff.simulate.metrics.memorization_report.
* ``report``: writes validation/speciation/learned.md and learned.png from the stored results.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "validation" / "speciation"
RUNS = ROOT / "runs" / "learned"

# ---------------------------------------------------------------------------------------------- U-Net training
UNET_COUNTS = {1: (100, 100), 10: (20, 200), 100: (3, 300)}  # (Bag, Sneaker): Bag is the minority
UNET_STEPS = 2000
UNET_EARLY = 200


def unet_config(ratio: int, quick: bool = False):
    from rfdiff.unet.training import UNetConfig

    return UNetConfig(classes=(8, 7), counts=UNET_COUNTS[ratio], downsample=2, channels=(16, 32), batch_size=32,
                      lr=1e-3, train_steps=60 if quick else UNET_STEPS, first_eval=20 if quick else UNET_EARLY,
                      n_eval=2, checkpoint_every=500, n_samples=100, sample_steps=20, loss_draws=1,
                      n_test_per_class=100, seed=0)


def stage_unet_train(quick: bool):
    from rfdiff.unet.training import train

    for r in UNET_COUNTS:
        cfg = unet_config(r, quick)
        out = RUNS / ("quick" if quick else "full") / f"unet_r{r}"
        latest = out / "ckpt" / "latest.eqx"
        t0 = time.perf_counter()
        train(cfg, out, resume=latest.is_file(), progress=True, classifier_cache=RUNS / "classifier.eqx")
        print(f"unet r={r}: {time.perf_counter() - t0:.0f} s", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("stages", nargs="+", choices=["unet-train", "unet", "rf", "memo", "report"])
    ap.add_argument("--quick", action="store_true", help="tiny sizes (smoke test)")
    args = ap.parse_args()
    for s in args.stages:
        globals()["stage_" + s.replace("-", "_")](args.quick)


if __name__ == "__main__":
    main()
