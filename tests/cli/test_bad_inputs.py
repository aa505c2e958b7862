"""Every bad input we know of, through the command line: a one-line error naming the parameter, exit status 2
(usage or spec error) or 1 (runtime failure), never a traceback, never silent, never a hang.

Each row: (id, command + arguments with ``{spec}``/``{dir}`` placeholders, spec text, expected status, text
the message must contain). The spec-level rows come back through the one schema; ``tests/test_spec.py`` holds
the finer library-level table of the same parser.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from rfdiff.cli import main

MIX = '[mixture]\nvariances = [4.0, 1.0]\nproportions = [0.5, 0.5]\n'
MODEL = '[model]\npsi_p = 2.0\npsi_n = 1.0\nt = 0.01\n'
OK = MIX + MODEL
ONE = '[mixture]\nvariances = [1.0]\nproportions = [1.0]\n' + MODEL
SPC = ('[mixture]\nvariances = [1.0, 1.0]\nproportions = [0.5, 0.5]\ncentroid_sq_norms = [1.0, 1.0]\n'
       '[speciation]\nd = 16\nn_trajectories = 20\nnum_steps = 10\n')
SIM = OK + '[finite]\nd = 8\n[simulate]\nsteps = 5\nlr = 0.1\n'
TAUS = ["--taus", "1e-3,1e3,8"]

CASES = [
    # --- the three typos of the issue, and other unknown keys or sections (exit 2, closest key named)
    ("typo-proportion", ["curves", "{spec}"], OK.replace("proportions", "proportion"), 2,
     "[mixture] unknown key 'proportion' (did you mean 'proportions'?)"),
    ("typo-activaton", ["timescales", "{spec}"], OK + 'activaton = "relu"\n', 2, "did you mean 'activation'?"),
    ("typo-psi_P", ["phase-diagram", "{spec}", "--axis", "pi1=0.2:0.8:2"], OK.replace("psi_p", "psi_P"), 2,
     "[model] unknown key 'psi_P' (did you mean 'psi_p'?)"),
    ("typo-spectrum", ["spectrum", "{spec}"], OK.replace("psi_p", "psi_P"), 2, "did you mean 'psi_p'?"),
    ("unknown-section", ["check", "{spec}"], OK + "[modle]\nx = 1\n", 2, "unknown section 'modle'"),
    ("unknown-key-finite", ["check", "{spec}"], OK + "[finite]\nd = 10\nsed = 1\n", 2, "did you mean 'seed'?"),
    ("unknown-key-simulate", ["simulate", "rf", "{spec}"], SIM + "learning_rate = 1\n", 2, "learning_rate"),
    ("unknown-key-unet", ["simulate", "unet", "{spec}"], "[unet]\nclases = [8, 7]\n", 2, "did you mean 'classes'?"),
    ("unknown-key-speciation", ["speciation", "{spec}"], SPC + "thetta = 0.9\n", 2, "did you mean 'theta'?"),
    # --- required keys and sections
    ("no-variances", ["check", "{spec}"], "[mixture]\nproportions = [1.0]\n", 2, "variances"),
    ("no-proportions", ["check", "{spec}"], "[mixture]\nvariances = [1.0, 2.0]\n", 2, "proportions"),
    ("no-psi_n", ["curves", "{spec}"], MIX + "[model]\npsi_p = 2.0\nt = 0.01\n", 2, "psi_n"),
    ("no-model-section", ["spectrum", "{spec}"], MIX, 2, "[model]"),
    ("no-simulate-section", ["simulate", "rf", "{spec}"], OK + "[finite]\nd = 8\n", 2, "[simulate]"),
    ("no-unet-section", ["simulate", "unet", "{spec}"], OK, 2, "[unet]"),
    ("no-finite-d", ["check", "{spec}"], OK + "[finite]\nseed = 1\n", 2, "[finite] missing required key 'd'"),
    # --- wrong types and ranges (spec values)
    ("d-float", ["curves", "{spec}"], OK + "[finite]\nd = 2.5\n", 2, "[finite] d"),
    ("d-zero", ["curves", "{spec}"], OK + "[finite]\nd = 0\n", 2, "[finite] d"),
    ("t-negative", ["curves", "{spec}"], OK.replace("t = 0.01", "t = -1.0"), 2, "[model] t"),
    ("psi_p-zero", ["curves", "{spec}"], OK.replace("psi_p = 2.0", "psi_p = 0.0"), 2, "[model] psi_p"),
    ("psi_n-string", ["curves", "{spec}"], OK.replace("psi_n = 1.0", 'psi_n = "one"'), 2, "[model] psi_n"),
    ("variance-negative", ["check", "{spec}"], OK.replace("[4.0, 1.0]", "[4.0, -1.0]"), 2, "variances"),
    ("variance-nan", ["check", "{spec}"], OK.replace("[4.0, 1.0]", "[nan, 1.0]"), 2, "variances"),
    ("proportions-sum", ["check", "{spec}"], OK.replace("[0.5, 0.5]", "[0.5, 0.6]"), 2, "proportions"),
    ("proportions-length", ["check", "{spec}"], OK.replace("[0.5, 0.5]", "[0.2, 0.3, 0.5]"), 2, "proportions"),
    ("activation-unknown", ["curves", "{spec}"], OK + 'activation = "relu6"\n', 2, "activation"),
    ("seed-bool", ["check", "{spec}"], OK + "[finite]\nd = 8\nseed = true\n", 2, "[finite] seed"),
    ("gram-asymmetric", ["check", "{spec}"], OK + "centroid_gram = [[1.0, 0.5], [0.0, 1.0]]\n"
     .replace("centroid", "[mixture]\ncentroid", 0), 2, "centroid_gram"),
    ("cosine-above-one", ["check", "{spec}"], MIX + "centroid_sq_norms = [1.0, 1.0]\n"
     "centroid_cosines = [[1.0, 1.5], [1.5, 1.0]]\n" + MODEL, 2, "centroid_cosines"),
    ("sq-norm-negative", ["check", "{spec}"], MIX + "centroid_sq_norms = [1.0, -1.0]\n" + MODEL, 2,
     "centroid_sq_norms"),
    ("weak-without-d", ["curves", "{spec}"], MIX + 'centroid_sq_norms = [1.0, 1.0]\ncentroid_scaling = "weak"\n'
     + MODEL, 2, "d"),
    ("scaling-unknown", ["check", "{spec}"], MIX + 'centroid_sq_norms = [1.0, 1.0]\ncentroid_scaling = "huge"\n'
     + MODEL, 2, "centroid_scaling"),
    ("imbalance-profile", ["check", "{spec}"], '[mixture]\nvariances = [1.0, 2.0]\n[mixture.imbalance]\n'
     'profile = "zipf"\nratio = 10.0\n', 2, "profile"),
    ("spectrum-lam-order", ["spectrum", "{spec}"], OK + "[spectrum]\nlam_min = 10.0\nlam_max = 1.0\n", 2, "lam_max"),
    ("spectrum-centroids", ["spectrum", "{spec}"], OK + '[spectrum]\ncentroids = "medium"\n', 2, "centroids"),
    ("curves-taus-order", ["curves", "{spec}"], OK + "[curves]\ntaus = [1.0, 0.1, 10]\n", 2, "taus"),
    ("speciation-theta", ["speciation", "{spec}"], SPC + "theta = 1.5\n", 2, "theta"),
    ("speciation-method", ["speciation", "{spec}"], SPC + 'method = "rk4"\n', 2, "method"),
    ("speciation-times", ["speciation", "{spec}"], SPC + "t_max = 0.01\nt_min = 0.1\n", 2, "t_max"),
    ("simulate-lr-and-frac", ["simulate", "rf", "{spec}"], SIM + "lr_frac = 0.3\n", 2, "exactly one of 'lr'"),
    ("simulate-optimizer", ["simulate", "rf", "{spec}"], SIM + 'optimizer = "sgdm"\n', 2, "optimizer"),
    ("pd-axis-name-spec", ["phase-diagram", "{spec}"], OK + "[phase_diagram]\naxes = { bogus = [0, 1, 2] }\n", 2,
     "bogus"),
    ("pd-fixed-range-spec", ["phase-diagram", "{spec}", "--axis", "psi_n=0.5:1:2"],
     OK + "[phase_diagram]\nfixed = { pi1 = 1.5 }\n", 2, "pi1"),
    # --- the spec file itself
    ("spec-missing", ["curves", "{dir}/nope.toml"], None, 2, "not found"),
    ("spec-not-toml", ["curves", "{spec}"], "[mixture\nvariances = [1.0]\n", 2, "not valid TOML"),
    ("spec-is-directory", ["curves", "{dir}"], None, 2, "not found"),
    # --- command-line values (validated by the same schema)
    ("axis-malformed", ["phase-diagram", "{spec}", "--axis", "sigma_ratio=0.5:2"], OK, 2, "NAME=LO:HI:NUM"),
    ("axis-not-number", ["phase-diagram", "{spec}", "--axis", "pi1=a:b:3"], OK, 2, "--axis pi1"),
    ("axis-pi1-zero", ["phase-diagram", "{spec}", "--axis", "pi1=0:0.5:3"], OK, 2, "pi1"),
    ("axis-pi1-above-one", ["phase-diagram", "{spec}", "--axis", "pi1=0.5:1.5:3"], OK, 2, "pi1"),
    ("axis-psi_p-negative", ["phase-diagram", "{spec}", "--axis", "psi_p=-1:2:3"], OK, 2, "psi_p"),
    ("axis-t-zero", ["phase-diagram", "{spec}", "--axis", "t=0:1:3"], OK, 2, "axes.t"),
    ("axis-sigma-zero", ["phase-diagram", "{spec}", "--axis", "sigma_ratio=0:2:3"], OK, 2, "sigma_ratio"),
    ("axis-separation-negative", ["phase-diagram", "{spec}", "--axis", "separation=-1:2:3"], OK, 2, "separation"),
    ("axis-one-point", ["phase-diagram", "{spec}", "--axis", "pi1=0.2:0.8:1"], OK, 2, "pi1"),
    ("axis-unknown", ["phase-diagram", "{spec}", "--axis", "bogus=0:1:2"], OK, 2, "bogus"),
    ("fix-range", ["phase-diagram", "{spec}", "--axis", "psi_n=0.5:1:2", "--fix", "pi1=1.5"], OK, 2, "pi1"),
    ("fix-psi-zero", ["phase-diagram", "{spec}", "--axis", "pi1=0.2:0.8:2", "--fix", "psi_n=0"], OK, 2, "psi_n"),
    ("fix-malformed", ["phase-diagram", "{spec}", "--axis", "pi1=0.2:0.8:2", "--fix", "pi1"], OK, 2, "NAME=VALUE"),
    ("fix-not-number", ["phase-diagram", "{spec}", "--axis", "pi1=0.2:0.8:2", "--fix", "t=soon"], OK, 2, "--fix t"),
    ("pd-no-axis", ["phase-diagram", "{spec}"], OK, 2, "at least one axis"),
    ("pd-one-class", ["phase-diagram", "{spec}", "--axis", "sigma_ratio=0.5:2:3"], ONE, 2, "two classes"),
    ("pd-chunk-zero", ["phase-diagram", "{spec}", "--axis", "pi1=0.2:0.8:2", "--chunk-size", "0"], OK, 2,
     "--chunk-size"),
    ("pd-shard-range", ["phase-diagram", "{spec}", "--axis", "pi1=0.2:0.8:2", "--shard", "2", "--num-shards", "2"],
     OK, 2, "--shard"),
    ("pd-n-quad-zero", ["phase-diagram", "{spec}", "--axis", "pi1=0.2:0.8:2", "--n-quad", "0"], OK, 2, "--n-quad"),
    ("taus-malformed", ["curves", "{spec}", "--taus", "1,2"], OK, 2, "LO,HI,NUM"),
    ("taus-order", ["curves", "{spec}", "--taus", "1e6,1e-3,10"], OK, 2, "taus"),
    ("num-points-one", ["spectrum", "{spec}", "--num-points", "1"], OK, 2, "num_points"),
    ("lam-order", ["spectrum", "{spec}", "--lam-min", "10", "--lam-max", "1"], OK, 2, "lam_max"),
    ("d-zero-flag", ["curves", "{spec}", "--d", "0"], OK, 2, "[finite] d"),
    ("d-not-int-flag", ["curves", "{spec}", "--d", "2.5"], OK, 2, "invalid int value"),
    ("seed-negative", ["curves", "{spec}", "--d", "8", "--seed", "-1"], OK, 2, "seed"),
    ("ratios-below-one", ["speciation", "{spec}", "--ratios", "0.5"], SPC, 2, "--ratios"),
    ("ratios-text", ["speciation", "{spec}", "--ratios", "a,b"], SPC, 2, "--ratios"),
    ("speciation-n-zero", ["speciation", "{spec}", "--n", "0"], SPC, 2, "n_trajectories"),
    ("unknown-command", ["bogus"], None, 2, "invalid choice"),
    ("unknown-option", ["curves", "{spec}", "--foo"], OK, 2, "unrecognized arguments"),
    ("out-is-a-file", ["curves", "{spec}", "--out", "{dir}/s.toml"] + TAUS, OK, 2, "--out must be a directory"),
    # --- result files and runtime failures (exit 1 where the input was well-formed but the run failed)
    ("compare-missing", ["compare", "{dir}/a.npz", "{dir}/b.npz"], None, 2, "no such file"),
    ("compare-corrupt", ["compare", "{dir}/junk.npz", "{dir}/junk.npz"], None, 1, "not a readable rfdiff result"),
    ("compare-truncated", ["compare", "{dir}/trunc.npz", "{dir}/trunc.npz"], None, 1, "corrupt or truncated"),
    ("compare-wrong-kind", ["compare", "{dir}/other.nc", "{dir}/other.nc"], None, 2, "lacks the array"),
    ("compare-foreign-npz", ["compare", "{dir}/other.npz", "{dir}/other.npz"], None, 1, "not an rfdiff result"),
    ("compare-corrupt-nc", ["compare", "{dir}/trunc.nc", "{dir}/trunc.nc"], None, 1, "corrupt or truncated"),
    ("convert-not-npz", ["convert", "{dir}/other.nc"], None, 2, "old .npz result"),
    ("convert-foreign", ["convert", "{dir}/other.npz"], None, 1, "not an rfdiff result"),
    ("convert-missing", ["convert", "{dir}/nothing.npz"], None, 2, "not found"),
    ("merge-no-dir", ["merge", "{dir}/nowhere"], None, 2, "no such directory"),
    ("pd-linear-no-convergence", ["phase-diagram", "{spec}", "--axis", "pi1=0.2:0.8:2", "-q"] + TAUS,
     OK + 'activation = "linear"\n', 1, "did not converge"),
    ("simulate-divergence", ["simulate", "rf", "{spec}", "-q"], SIM.replace("lr = 0.1", "lr = 50.0").replace("steps = 5", "steps = 3000") +
     "noise = \"exact\"\ntheory = false\nmehler_order = 8\n", 1, "diverge"),
]


def _materialise(tmp_path, argv, text):
    if text is not None:
        (tmp_path / "s.toml").write_text(text)
    (tmp_path / "junk.npz").write_bytes(b"this is not a zip archive at all")
    np.savez(tmp_path / "full.npz", tau=np.ones(3))
    (tmp_path / "trunc.npz").write_bytes((tmp_path / "full.npz").read_bytes()[:60])
    np.savez(tmp_path / "other.npz", density=np.ones(3))
    from rfdiff.results import build, write  # a valid result of another kind (a spectrum: no τ curves)

    write(tmp_path / "other.nc", build("spectrum", {"density": (("lambda",), np.ones(3))},
                                       coords={"lambda": np.arange(1.0, 4.0)}))
    (tmp_path / "trunc.nc").write_bytes((tmp_path / "other.nc").read_bytes()[:100])
    return [a.replace("{spec}", str(tmp_path / "s.toml")).replace("{dir}", str(tmp_path)) for a in argv]


@pytest.mark.parametrize("argv,text,status,expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_gives_one_line_error(tmp_path, capsys, monkeypatch, argv, text, status, expected):
    monkeypatch.chdir(tmp_path)  # default outputs (runs/...) stay in the test's folder
    argv = _materialise(tmp_path, argv, text)
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's own errors
        code = exc.code
    err = capsys.readouterr().err
    assert code == status, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{err}"
    assert "Traceback" not in err
    assert expected in lines[0], lines[0]
    assert re.match(r"^rfdiff( [a-z-]+( [a-z]+)?)?: error: ", lines[0]), lines[0]


def test_the_table_is_large_and_covers_every_command():
    assert len(CASES) >= 60
    commands = {c[1][0] for c in CASES}
    assert {"check", "spectrum", "curves", "timescales", "phase-diagram", "speciation", "simulate",
            "compare"} <= commands
