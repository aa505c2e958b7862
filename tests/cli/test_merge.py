"""Cluster sweeps: `--shard auto` under a simulated job array, `rfdiff merge`, and the scheduler variables."""

from __future__ import annotations

import shutil

import jax
import numpy as np
import pytest

from rfdiff.cli.dynamics import array_task, resolve_shard
from rfdiff.cli.main import main
from rfdiff.results import attr_json, open_result
from rfdiff.spec import SpecError

SPEC = ('[mixture]\nvariances = [1.0, 1.0]\nproportions = [0.5, 0.5]\n'
        '[model]\npsi_p = {psi_p}\npsi_n = 1.0\nt = 0.01\n[curves]\ntaus = [1e-3, 1e6, 40]\n')
GRID = ["--axis", "sigma_ratio=0.8:1.6:3", "--axis", "pi1=0.2:0.8:3", "--chunk-size", "4", "-q"]  # 9 points
SCHEDULER_VARS = ("SLURM_ARRAY_TASK_ID", "SLURM_ARRAY_TASK_MIN", "SLURM_ARRAY_TASK_MAX", "SLURM_ARRAY_TASK_STEP",
                  "SLURM_ARRAY_TASK_COUNT", "SGE_TASK_ID", "SGE_TASK_FIRST", "SGE_TASK_LAST", "SGE_TASK_STEPSIZE",
                  "LSB_JOBINDEX", "PBS_ARRAY_INDEX", "PBS_ARRAYID")


@pytest.fixture
def no_array(monkeypatch):
    for name in SCHEDULER_VARS:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def _spec(tmp_path, psi_p=2.0, name="pd.toml"):
    path = tmp_path / name
    path.write_text(SPEC.format(psi_p=psi_p))
    return str(path)


def _slurm_task(m, task_id, first=0, count=4):
    """The variables sbatch --array=first-(first+count-1) sets for one task."""
    m.setenv("SLURM_ARRAY_TASK_ID", str(task_id))
    m.setenv("SLURM_ARRAY_TASK_MIN", str(first))
    m.setenv("SLURM_ARRAY_TASK_MAX", str(first + count - 1))
    m.setenv("SLURM_ARRAY_TASK_COUNT", str(count))
    m.setenv("SLURM_ARRAY_TASK_STEP", "1")


def _one_line_error(err):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("rfdiff "), err
    return lines[0]


def test_slurm_array_of_four_tasks_then_merge_equals_unsharded(tmp_path, no_array, capsys):
    spec = _spec(tmp_path)
    assert main(["phase-diagram", spec, *GRID, "--out", str(tmp_path / "full")]) == 0
    full = open_result(tmp_path / "full" / "phase_diagram.nc")
    shards = tmp_path / "shards"
    # the sweep must shard over this process's devices only (one task per node or per GPU): jax.devices()
    # would include other hosts' devices under jax.distributed
    calls = []
    local = jax.local_devices

    def _local(*a, **k):
        calls.append(1)
        return local(*a, **k)

    def _global(*a, **k):
        raise AssertionError("the sweep asked for jax.devices(), not jax.local_devices()")

    for task in range(1, 5):  # sbatch --array=1-4: the offset SLURM_ARRAY_TASK_MIN is removed
        with no_array.context() as m:
            _slurm_task(m, task, first=1)
            m.setattr(jax, "devices", _global)
            m.setattr(jax, "local_devices", _local)
            assert main(["phase-diagram", spec, *GRID, "--shard", "auto", "--out", str(shards)]) == 0
    assert len(calls) == 4
    names = sorted(p.name for p in shards.glob("*.nc"))
    assert names == [f"phase_diagram.shard-{i}-of-4.nc" for i in range(4)]
    assert open_result(shards / names[1])["tau_gen"].dims == ("point", "class")
    assert main(["merge", str(shards), "-q"]) == 0
    merged = open_result(shards / "phase_diagram.nc")
    assert merged.attrs["merged_from"] == 4 and merged["tau_gen"].dims == ("sigma_ratio", "pi1", "class")
    assert set(merged.data_vars) == set(full.data_vars) and attr_json(merged, "num_shards") == 1
    for k in full.variables:
        np.testing.assert_array_equal(merged[k].values, full[k].values)  # exactly, not approximately
    assert merged.attrs["spec"] == full.attrs["spec"] and merged.attrs["rfdiff_kind"] == "phase_diagram"
    # --out FILE
    assert main(["merge", str(shards), "--out", str(tmp_path / "elsewhere" / "pd.nc"), "-q"]) == 0
    np.testing.assert_array_equal(open_result(tmp_path / "elsewhere" / "pd.nc")["tau_gen"].values,
                                  full["tau_gen"].values)
    capsys.readouterr()

    # a missing shard is named by its index (exit 2, one line); an unfinished one says so
    broken = tmp_path / "broken"
    shutil.copytree(shards, broken)
    (broken / "phase_diagram.nc").unlink()
    (broken / "phase_diagram.shard-2-of-4.nc").rename(broken / "phase_diagram.shard-2-of-4.nc.partial.npz")
    (broken / "phase_diagram.shard-0-of-4.nc").unlink()
    assert main(["merge", str(broken)]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "missing shard(s) 0, 2 of 4" in line and "checkpoint only: 2" in line
    assert not (broken / "phase_diagram.nc").exists()
    # mixed N
    shutil.copy(shards / "phase_diagram.shard-0-of-4.nc", broken / "phase_diagram.shard-0-of-2.nc")
    assert main(["merge", str(broken)]) == 2
    assert "different splits (N=2 (1 file(s)), N=4 (2 file(s)))" in _one_line_error(capsys.readouterr().err)
    # a shard of another problem (another psi_p) is refused, naming what changed
    other = tmp_path / "other"
    other.mkdir()
    for i in (0, 1, 3):
        shutil.copy(shards / f"phase_diagram.shard-{i}-of-4.nc", other)
    spec_b = _spec(tmp_path, psi_p=3.0, name="b.toml")
    assert main(["phase-diagram", spec_b, *GRID, "--shard", "2", "--num-shards", "4", "--out", str(other)]) == 0
    assert main(["merge", str(other)]) == 2
    line = _one_line_error(capsys.readouterr().err)
    assert "computed for another problem" in line and "changed: key" in line
    # no shard files at all, and a corrupt one (a runtime failure: exit 1)
    assert main(["merge", str(tmp_path / "full")]) == 2
    assert "no shard files" in _one_line_error(capsys.readouterr().err)
    (other / "phase_diagram.shard-2-of-4.nc").write_bytes(b"not a netCDF file")
    assert main(["merge", str(other)]) == 1
    _one_line_error(capsys.readouterr().err)


def test_shard_auto_outside_a_job_array_is_a_one_line_error(tmp_path, no_array, capsys):
    assert main(["phase-diagram", _spec(tmp_path), *GRID, "--shard", "auto", "--out", str(tmp_path)]) == 2
    assert "--shard auto needs a job array" in _one_line_error(capsys.readouterr().err)
    no_array.setenv("LSB_JOBINDEX", "0")  # LSF outside an array
    assert main(["phase-diagram", _spec(tmp_path), *GRID, "--shard", "auto", "--out", str(tmp_path)]) == 2
    assert "needs a job array" in _one_line_error(capsys.readouterr().err)
    assert not list(tmp_path.glob("*.nc"))


def test_array_task_per_scheduler():
    # SLURM: offset and step removed; the count comes with it
    slurm = {"SLURM_ARRAY_TASK_ID": "14", "SLURM_ARRAY_TASK_MIN": "10", "SLURM_ARRAY_TASK_MAX": "16",
             "SLURM_ARRAY_TASK_STEP": "2", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert array_task(slurm) == (2, 4, "SLURM")
    with pytest.raises(SpecError, match="not a regular range"):  # --array=1,4,9
        array_task({"SLURM_ARRAY_TASK_ID": "4", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_MAX": "9",
                    "SLURM_ARRAY_TASK_COUNT": "3"})
    with pytest.raises(SpecError, match=r"\$SLURM_ARRAY_TASK_MIN is not set"):
        array_task({"SLURM_ARRAY_TASK_ID": "4"})
    # SGE: 1-based with FIRST/LAST/STEPSIZE
    sge = {"SGE_TASK_ID": "7", "SGE_TASK_FIRST": "1", "SGE_TASK_LAST": "7", "SGE_TASK_STEPSIZE": "3"}
    assert array_task(sge) == (2, 3, "SGE")
    with pytest.raises(SpecError, match="needs a job array"):
        array_task({"SGE_TASK_ID": "undefined"})
    # LSF: 1-based, no count; PBS Pro / Torque: as is, no count
    assert array_task({"LSB_JOBINDEX": "3"}) == (2, None, "LSF")
    assert array_task({"PBS_ARRAY_INDEX": "3"}) == (3, None, "PBS")
    assert array_task({"PBS_ARRAYID": "0"}) == (0, None, "PBS")
    with pytest.raises(SpecError, match="must be an integer"):
        array_task({"PBS_ARRAY_INDEX": "x"})


def test_resolve_shard_num_shards_rules():
    slurm = {"SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "4"}
    assert resolve_shard("auto", None, slurm) == (3, 4)  # the count is known: --num-shards may be omitted
    assert resolve_shard("auto", 4, slurm) == (3, 4)
    with pytest.raises(SpecError, match="--num-shards 5 disagrees with the SLURM array size 4"):
        resolve_shard("auto", 5, slurm)
    with pytest.raises(SpecError, match="under LSF needs --num-shards"):
        resolve_shard("auto", None, {"LSB_JOBINDEX": "1"})
    assert resolve_shard("auto", 4, {"LSB_JOBINDEX": "4"}) == (3, 4)
    with pytest.raises(SpecError, match="task index 4 .* outside 0..3"):  # PBS array numbered 1-4
        resolve_shard("AUTO", 4, {"PBS_ARRAY_INDEX": "4"})
    assert resolve_shard("0", None, {}) == (0, 1) and resolve_shard("2", 3, {}) == (2, 3)
    with pytest.raises(SpecError, match="need 0 <= --shard < --num-shards, got 2 and 1"):
        resolve_shard("2", None, {})
    with pytest.raises(SpecError, match="integer or 'auto'"):
        resolve_shard("two", 3, {})
