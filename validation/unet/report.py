"""CPU reduced run of the U-Net per-class experiment → validation/unet/README.md + PNGs.

Three runs on Fashion-MNIST Bag (8, high pixel variance) vs Sneaker (7, low): balanced, Bag as a 10 % minority,
Bag as a 90 % majority; 14×14 images (2×2 average pooling), a (16, 32)-channel U-Net, n_train = 80. Each run is
resumable (``rfdiff.unet.training.train(..., resume=True)``), so rerunning this script after a kill continues where it
stopped. The GPU-size protocol (examples/unet_fmnist.toml) is still owed.

    python validation/unet/report.py [--runs-dir runs/unet_validation] [--report-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import numpy as np

from rfdiff.unet.training import UNetConfig, summarise, train

HERE = Path(__file__).resolve().parent
OUT = HERE
NAMES = {8: "Bag", 7: "Sneaker"}
BASE = UNetConfig(classes=(8, 7), n_train=80, downsample=2, channels=(16, 32), batch_size=32, lr=1e-3,
                  train_steps=3000, first_eval=30, n_eval=9, n_samples=200, sample_steps=20,
                  n_test_per_class=200, loss_times=(0.02, 0.1, 0.5), loss_draws=2, checkpoint_every=250)
RUNS = {
    "balanced": dataclasses.replace(BASE, counts=(40, 40)),
    "bag_minority": dataclasses.replace(BASE, counts=(8, 72)),
    "bag_majority": dataclasses.replace(BASE, counts=(72, 8)),
    # a 4x smaller training set, to check that the memorisation criterion fires within the CPU budget
    "balanced_n20": dataclasses.replace(BASE, counts=(10, 10)),
}


def run_all(runs_dir: Path, data_path):
    for name, cfg in RUNS.items():
        cfg = dataclasses.replace(cfg, data_path=data_path, classifier_cache=str(runs_dir / "classifier14.eqx"))
        t0 = time.perf_counter()
        train(cfg, runs_dir / name, resume=True)
        print(f"[{name}] {time.perf_counter() - t0:.0f} s", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", type=Path, default=HERE.parents[1] / "runs" / "unet_validation")
    ap.add_argument("--data", default=None, help="Fashion-MNIST directory (else $RFDIFF_FASHION_MNIST, Debian)")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if not args.report_only:
        run_all(args.runs_dir, args.data)
    from write_report import write_report  # noqa: E402  (the report writer, beside this script)

    write_report(args.runs_dir, OUT, RUNS, NAMES)
