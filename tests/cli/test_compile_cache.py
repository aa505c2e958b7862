"""The second call of the same CLI command compiles nothing: JAX's persistent compilation cache.

``rfdiff`` points JAX's cache at ``RFDIFF_JAX_CACHE`` (default ``~/.cache/rfdiff/jax``) before JAX starts, with a
zero minimum compile time, so every program it compiles is stored. A second identical process must therefore
add no entry: each compilation it would do is a cache hit. ``RFDIFF_JAX_CACHE=0`` turns the cache off.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(tmp_path, cache: str, out: str) -> None:
    env = {**os.environ, "RFDIFF_JAX_CACHE": cache, "PYTHONPATH": str(ROOT), "HOME": str(tmp_path)}
    if cache == "default":
        del env["RFDIFF_JAX_CACHE"]
    for k in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
              "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "XLA_FLAGS"):
        env.pop(k, None)
    res = subprocess.run([sys.executable, "-m", "rfdiff", "spectrum", str(ROOT / "examples/spectrum_two_level.toml"),
                          "--num-points", "40", "--out", str(tmp_path / out), "-q"],
                         capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert res.returncode == 0, res.stderr


def _entries(cache: Path) -> set[str]:
    return {p.name for p in cache.rglob("*") if p.is_file()}


def test_second_call_compiles_nothing(tmp_path):
    cache = tmp_path / "jax-cache"
    _run(tmp_path, str(cache), "first")
    first = _entries(cache)
    assert first, "the first call stored no compiled program"
    _run(tmp_path, str(cache), "second")
    assert _entries(cache) == first  # nothing new compiled


def test_default_location_and_off_switch(tmp_path):
    default = tmp_path / ".cache" / "rfdiff" / "jax"  # HOME is tmp_path in these runs
    _run(tmp_path, "0", "off")
    assert not default.exists()
    _run(tmp_path, "default", "on")
    assert _entries(default)
