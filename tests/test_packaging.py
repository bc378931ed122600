"""Packaging: licence, Python bounds, the constraints file agrees with pyproject's ranges."""

from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def pins() -> dict[str, str]:
    out = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            out[canonicalize_name(name)] = version
    return out


def test_license_file_and_field_agree():
    assert PROJECT["license"] == "MIT" and PROJECT["license-files"] == ["LICENSE"]
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")


def test_python_bound_matches_tensorflow_wheels():
    spec = SpecifierSet(PROJECT["requires-python"])
    assert "3.10" in spec and "3.13" in spec
    assert "3.9" not in spec and "3.14" not in spec  # TensorFlow 2.21 has no wheels there


def test_every_constrained_dependency_is_inside_pyproject_ranges():
    pinned = pins()
    extras = PROJECT["optional-dependencies"]
    reqs = [Requirement(r) for r in PROJECT["dependencies"] + extras["dev"] + extras["gpu"]]
    for req in reqs:
        name = canonicalize_name(req.name)
        assert name in pinned, f"{name} missing from constraints.txt"
        assert req.specifier.contains(pinned[name]), f"{name}=={pinned[name]} outside {req.specifier}"
    assert any(str(r.specifier) == "==" + pinned["ruff"] for r in reqs if r.name == "ruff")
    assert "and-cuda" in Requirement(extras["gpu"][0]).extras
    assert "anet" not in pinned  # the project itself is never constrained
