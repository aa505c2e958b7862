"""Gaussian-surrogate check of the theory's premise (issue #15 item 3) → validation/surrogate/README.md + PNG.

The same CPU U-Net protocol as validation/unet (Bag 8 vs Sneaker 7, balanced 40/40, 14×14, channels (16, 32),
batch 32, Adam lr 1e-3, 3000 steps) is trained on the real images and on their Gaussian surrogate
(``UNetConfig(data="gaussian")``: every training image replaced by a draw from its class's population Gaussian,
rfdiff/unet/surrogate.py), two seeds each. A seed fixes the subset, the initial weights and the minibatch/noise
stream, so real and surrogate runs of one seed differ only in the training images. Both are evaluated on the
same real test images. Every run is resumable: rerunning this script after a kill continues where it stopped.

    python validation/surrogate/report.py [--runs-dir runs/surrogate_validation] [--report-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from rfdiff.unet.training import UNetConfig, train

HERE = Path(__file__).resolve().parent
NAMES = {8: "Bag", 7: "Sneaker"}
SEEDS = (0, 1)
BASE = UNetConfig(classes=(8, 7), counts=(40, 40), downsample=2, channels=(16, 32), batch_size=32, lr=1e-3,
                  train_steps=3000, first_eval=10, n_eval=10, n_samples=200, sample_steps=20,
                  n_test_per_class=200, loss_times=(0.02, 0.1, 0.5), loss_draws=2, checkpoint_every=250)
RUNS = {f"{data}_seed{seed}": dataclasses.replace(BASE, data=data, seed=seed)
        for seed in SEEDS for data in ("real", "gaussian")}


def configs(runs_dir: Path, data_path) -> dict[str, UNetConfig]:
    return {name: dataclasses.replace(cfg, data_path=data_path, classifier_cache=str(runs_dir / "classifier14.eqx"))
            for name, cfg in RUNS.items()}


def run_all(runs_dir: Path, data_path) -> None:
    for name, cfg in configs(runs_dir, data_path).items():
        t0, c0 = time.perf_counter(), time.process_time()
        train(cfg, runs_dir / name, resume=True, progress=False)
        print(f"[{name}] wall {time.perf_counter() - t0:.0f} s, process CPU {time.process_time() - c0:.0f} s",
              flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs-dir", type=Path, default=HERE.parents[1] / "runs" / "surrogate_validation")
    ap.add_argument("--data", default=None, help="Fashion-MNIST directory (else $RFDIFF_FASHION_MNIST, Debian)")
    ap.add_argument("--report-only", action="store_true")
    args = ap.parse_args()
    if not args.report_only:
        run_all(args.runs_dir, args.data)
    from write_report import write_report  # noqa: E402  (the report writer, beside this script)

    write_report(args.runs_dir, HERE, configs(args.runs_dir, args.data), NAMES)
