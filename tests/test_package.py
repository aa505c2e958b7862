"""A package people can install and cite: one version source, CITATION.cff, LICENSE, py.typed."""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import re
import tomllib
from pathlib import Path

import pytest

import rfdiff

ROOT = Path(__file__).resolve().parents[1]


def test_version_has_one_source():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert "version" not in project["project"], "pyproject.toml must not repeat the version"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "rfdiff.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+((a|b|rc)\d+)?(\.dev\d+)?", rfdiff.__version__), rfdiff.__version__


def test_installed_metadata_version_equals_package_version():
    try:
        installed = importlib.metadata.version("rfdiff")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("rfdiff is not installed in this environment (pip install -e .)")
    assert installed == rfdiff.__version__, "installed metadata is stale: reinstall with pip install -e ."


def _cff():
    text = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    try:
        import yaml
    except ImportError:  # minimal check: the top-level keys we rely on, read line by line
        top = dict(re.findall(r"^([a-z-]+):[ \t]*(.*?)\s*$", text, flags=re.M))
        return text, {"cff-version": top.get("cff-version"), "version": top.get("version"),
                      "license": top.get("license"), "type": top.get("type"), "title": top.get("title", "")}
    return text, yaml.safe_load(text)


def test_citation_cff_names_the_version_and_the_papers():
    text, cff = _cff()
    assert str(cff["cff-version"]) == "1.2.0" and cff["type"] == "software" and cff["license"] == "MIT"
    assert str(cff["version"]) == rfdiff.__version__
    assert "rfdiff" in cff["title"]
    for ident in ("arXiv:2605.06367", "arXiv:2505.17638", "10.1038/s41467-024-54281-3"):
        assert ident in text, ident
    if "references" in cff:  # parsed with PyYAML: the full structure
        assert len(cff["references"]) == 3 and all(r["title"] and r["authors"] for r in cff["references"])


def test_license_is_mit():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License") and "the rfdiff authors" in text
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["license"] == {"text": "MIT"}


def test_py_typed_ships_with_the_package():
    assert (importlib.resources.files("rfdiff") / "py.typed").is_file()
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]
    assert "py.typed" in data["rfdiff"]
