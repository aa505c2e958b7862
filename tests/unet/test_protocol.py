"""The U-Net validation protocol (validation/unet/report.py + write_report.py) end to end on tiny IDX data.

The protocol's grid is shrunk (one pair, two settings, one seed, one pilot size, no weighted runs); everything
else — training, resume, summaries, the theory's prediction on the moment-matched mixture, its cache, the
report and its figures — runs as in the real report.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from _fmnist_fixture import write_tiny_fmnist
from rfdiff.io import load_result

VALIDATION = Path(__file__).resolve().parents[2] / "validation" / "unet"


@pytest.fixture
def protocol(monkeypatch, tmp_path):
    monkeypatch.syspath_prepend(str(VALIDATION))
    import report

    tiny = dataclasses.replace(report.BASE, downsample=4, channels=(4,), num_steps=50, batch_size=4,
                               train_steps=12, first_eval=2, n_eval=4, n_samples=12, sample_steps=3,
                               n_test_per_class=6, checkpoint_every=5, loss_times=(0.05, 0.5),
                               # a run that has not memorised extends along its grid to this cap (the protocol's
                               # 16 000 made this test train ~45 000 tiny steps, 170 s)
                               max_train_steps=30)
    monkeypatch.setattr(report, "BASE", tiny)
    monkeypatch.setattr(report, "PAIRS", {"bag-sneaker": (8, 7)})
    monkeypatch.setattr(report, "SETTINGS", {"balanced": (3, 3), "high-minority": (2, 4)})
    monkeypatch.setattr(report, "SEEDS", (0,))
    monkeypatch.setattr(report, "PILOT", {2: 8})
    monkeypatch.setattr(report, "WEIGHTED", ())
    monkeypatch.setattr(report, "CACHE", tmp_path)
    monkeypatch.setattr(report, "THEORY", {"psi_p": 4.0, "t": 0.05, "activation": "tanh"})
    data = write_tiny_fmnist(tmp_path / "data", gz=False)
    monkeypatch.setenv("RFDIFF_FASHION_MNIST", str(data))
    return report


def test_protocol_runs_resumes_and_reports(protocol, tmp_path, monkeypatch):
    import write_report

    runs = protocol.runs()
    assert list(runs) == ["bag-sneaker_balanced_s0", "bag-sneaker_high-minority_s0", "bag-sneaker_nc2_s0"]
    assert runs["bag-sneaker_nc2_s0"].counts == (2, 2) and runs["bag-sneaker_nc2_s0"].train_steps == 8
    rd = tmp_path / "runs"
    # two workers split the grid; together they ran every run once
    protocol.run_all(rd, None, (0, 2))
    protocol.run_all(rd, None, (1, 2))
    for name, cfg in runs.items():
        assert json.loads((rd / name / "config.json").read_text())["config"]["counts"] == list(cfg.counts)
        # the extension cap travels with the run ...
        assert json.loads((rd / name / "config.json").read_text())["config"]["max_train_steps"] == 30
        # ... and bounds the extension: none of these tiny runs memorises, so each goes on past train_steps
        steps = load_result(rd / name / "metrics.npz")[0]["step"]
        assert cfg.train_steps < steps[-1] <= 30
    before = {n: (rd / n / "metrics.npz").read_bytes() for n in runs}
    protocol.run_all(rd, None, (0, 1))  # resumed: finished runs are not trained again
    assert all((rd / n / "metrics.npz").read_bytes() == b for n, b in before.items())

    out = tmp_path / "report"
    out.mkdir()
    write_report.write_report(protocol, rd, out, runs)
    text = (out / "README.md").read_text()
    for name in runs:
        assert (out / "results" / name / "metrics.npz").is_file()
    for name in ("bag-sneaker_balanced_s0", "bag-sneaker_high-minority_s0"):
        assert f"| {name} |" in text
    assert "## Pilot" in text and "## Where the theory puts the reversal" in text
    # at this tiny size the theory has no finite τ_mem anywhere on the π scan: reported as unresolved, not "no flip"
    assert "of τ_mem at unresolved" in text
    for png in ("memorisation.png", "pilot_and_weights.png", "per_class_curves.png", "samples.png"):
        assert (out / png).stat().st_size > 1000
    # the theory's prediction for the tiny data: class 8 (uniform noise, the larger variance) first
    table = json.loads((tmp_path / "theory.json").read_text())
    preds = [v for v in table.values() if isinstance(v, dict)]
    assert preds and all(p["order_gen"][0] == 8 for p in preds)
    # a report from a folder with no finished run stops before it touches the results it would replace
    empty = tmp_path / "empty"
    empty.mkdir()
    listing = sorted(p.name for p in (out / "results").iterdir())
    with pytest.raises(SystemExit, match="no finished runs"):
        write_report.write_report(protocol, empty, out, runs)
    assert sorted(p.name for p in (out / "results").iterdir()) == listing
    # the copy of a run no longer in the protocol is pruned by the next report
    (out / "results" / "retired_s0").mkdir()
    # a second report reads the theory from its cache (keyed by the statistics): no theory is run
    monkeypatch.setattr("rfdiff.unet.theory_map.theory_prediction",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    monkeypatch.setattr("rfdiff.unet.theory_map.reversal_fraction",
                        lambda *a, **k: (_ for _ in ()).throw(AssertionError("recomputed")))
    write_report.write_report(protocol, rd, out, runs)
    assert (out / "README.md").read_text().split("\n", 3)[3] == text.split("\n", 3)[3]
    assert not (out / "results" / "retired_s0").exists()
    # ... and an edit of the theory's code is a cache miss (the key holds a digest of its sources)
    monkeypatch.setattr(write_report, "_code_digest", lambda: "edited")
    with pytest.raises(AssertionError, match="recomputed"):
        write_report.write_report(protocol, rd, out, runs)
    # the trimmed copies keep the last checkpoint's samples only
    a, _ = load_result(out / "results" / "bag-sneaker_balanced_s0" / "metrics.npz")
    assert a["samples"].shape[0] == 1 and np.all(np.isfinite(a["eps_test"]))
