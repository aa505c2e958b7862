"""``RFDIFF_HOST_DEVICES=N`` gives ``rfdiff phase-diagram`` N XLA host devices (the sweep hands each its own block).

The device count is set before JAX starts and never over one the user put in ``XLA_FLAGS``; one device by
default; more than 512 points a device is refused (an XLA:CPU deadlock at 1024); the diagram does not depend on
the count beyond rounding (batched Newton loops see other neighbours).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]


def _env(tmp_path, **extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RFDIFF_JAX_CACHE": "0", **extra}
    if "XLA_FLAGS" not in extra:
        env.pop("XLA_FLAGS", None)
    return env


def _count(tmp_path, **extra) -> int:
    code = ("from rfdiff.cli.main import _host_devices\n_host_devices()\nimport jax\n"
            "print(jax.local_device_count())")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env=_env(tmp_path, **extra), cwd=tmp_path)
    assert res.returncode == 0, res.stderr
    return int(res.stdout.split()[-1])


def test_device_count_set_before_jax_and_never_over_the_users(tmp_path):
    assert _count(tmp_path, RFDIFF_HOST_DEVICES="3") == 3
    assert _count(tmp_path, RFDIFF_HOST_DEVICES="3",
                  XLA_FLAGS="--xla_force_host_platform_device_count=1") == 1
    assert _count(tmp_path) == 1  # opt-in only


def test_more_than_512_points_a_host_device_is_refused(tmp_path):
    res = subprocess.run([sys.executable, "-m", "rfdiff", "phase-diagram",
                          str(ROOT / "examples" / "dynamics_two_class.toml"), "--axis", "pi1=0.2:0.8:3",
                          "--chunk-size", "2048", "--no-plot", "-q", "--out", str(tmp_path / "x")],
                         capture_output=True, text=True, timeout=300, env=_env(tmp_path, RFDIFF_HOST_DEVICES="2"),
                         cwd=tmp_path)
    assert res.returncode == 2 and "1024 points to each of 2 host devices" in res.stderr, res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_phase_diagram_on_one_and_two_devices_agree(tmp_path):
    from rfdiff.results import open_result

    out = {}
    for n in ("1", "2"):
        res = subprocess.run([sys.executable, "-m", "rfdiff", "phase-diagram",
                              str(ROOT / "examples" / "dynamics_two_class.toml"), "--axis", "sigma_ratio=0.7:1.8:3",
                              "--axis", "pi1=0.2:0.8:3", "--fix", "separation=16", "--n-quad", "16",
                              "--taus", "1e-2,1e5,24", "--no-plot", "-q", "--out", str(tmp_path / n)],
                             capture_output=True, text=True, timeout=600, env=_env(tmp_path, RFDIFF_HOST_DEVICES=n),
                             cwd=tmp_path)
        assert res.returncode == 0, res.stderr
        out[n] = open_result(tmp_path / n / "phase_diagram.nc")
    for k in ("tau_gen", "tau_mem", "tau_onset"):
        a, b = out["1"][k].values, out["2"][k].values
        assert np.array_equal(np.isnan(a), np.isnan(b)) and np.isfinite(a).any()
        np.testing.assert_allclose(b, a, rtol=1e-11, err_msg=k)  # rounding of batched Newton, measured ≤ 7e-13
