"""The wheel: it carries every recipe (one copy, mapped from recipes/), py.typed and the LICENSE, and it works alone."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from helpers.paths import RECIPES, REPO
from helpers.processes import run_child

#: What the wheel is built from; copied out so that the build's build/ and egg-info stay out of the checkout.
SOURCES = ("pyproject.toml", "README.md", "LICENSE", "lightning_topo", "recipes")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel of the current checkout, built offline with the installed setuptools (as ``pip wheel .``)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    source.mkdir()
    for name in SOURCES:
        origin = REPO / name
        if origin.is_dir():
            shutil.copytree(origin, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(origin, source / name)
    build = run_child(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-w",
            str(root / "dist"),
            str(source),
        ],
        timeout=300,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    (built,) = (root / "dist").glob("lightning_topo-*.whl")
    return built


def _names(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as archive:
        return set(archive.namelist())


def test_the_wheel_carries_every_recipe_once_as_package_data(wheel):
    names = _names(wheel)
    shipped = {name for name in names if name.endswith(".yaml")}
    assert shipped == {f"lightning_topo/recipes/{recipe.name}" for recipe in RECIPES}
    with zipfile.ZipFile(wheel) as archive:
        for recipe in RECIPES:
            assert archive.read(f"lightning_topo/recipes/{recipe.name}") == recipe.read_bytes(), recipe.name
    assert not any(name.startswith("recipes/") for name in names)  # no top-level 'recipes' package in site-packages


def test_the_wheel_carries_every_module_of_the_checkout(wheel):
    """pyproject.toml lists the subpackages (the recipes mapping needs it): a new one must be added there."""
    names = _names(wheel)
    modules = {p.relative_to(REPO).as_posix() for p in (REPO / "lightning_topo").rglob("*.py")}
    missing = sorted(modules - names)
    assert not missing, (
        f"not in the wheel: {missing}; add their packages to [tool.setuptools] packages in pyproject.toml"
    )


def test_the_wheel_carries_py_typed_and_the_apache_license(wheel):
    names = _names(wheel)
    assert "lightning_topo/py.typed" in names
    with zipfile.ZipFile(wheel) as archive:
        (license_name,) = (name for name in names if name.endswith(".dist-info/licenses/LICENSE"))
        assert archive.read(license_name) == (REPO / "LICENSE").read_bytes()
        (metadata_name,) = (name for name in names if name.endswith(".dist-info/METADATA"))
        metadata = archive.read(metadata_name).decode()
        entry_points = archive.read(metadata_name.replace("METADATA", "entry_points.txt")).decode()
    assert "License-Expression: Apache-2.0" in metadata
    assert "lightning-topo = lightning_topo.cli:main" in entry_points


def test_the_license_is_the_full_apache_2_text():
    text = (REPO / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert "TERMS AND CONDITIONS FOR USE, REPRODUCTION, AND DISTRIBUTION" in text
    assert "9. Accepting Warranty or Additional Liability." in text and "END OF TERMS AND CONDITIONS" in text
    assert "Copyright 2026 The lightning-topo authors" in text


def test_the_installed_wheel_finds_its_recipes_from_any_directory(wheel, tmp_path):
    """The wheel unpacked as pip installs it (pure Python: site-packages is the archive's tree), run from elsewhere."""
    site = tmp_path / "site-packages"
    with zipfile.ZipFile(wheel) as archive:
        archive.extractall(site)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"} | {"PYTHONPATH": str(site)}

    def cli(*args: str) -> subprocess.CompletedProcess:
        return run_child([sys.executable, "-m", "lightning_topo.cli", *args], cwd=elsewhere, env=env, timeout=300)

    listing = cli("--recipes")
    assert listing.returncode == 0, listing.stderr
    assert str(site / "lightning_topo" / "recipes") in listing.stdout  # the wheel's copy, not the checkout's
    assert all(recipe.name in listing.stdout for recipe in RECIPES)
    for config in ("d1_circles.yaml", "recipes/d1_circles.yaml"):
        printed = cli("fit", "-c", config, "--print_config")
        assert printed.returncode == 0, printed.stderr
        assert "lightning_topo.data.SyntheticDataModule" in printed.stdout and "name: d1_circles" in printed.stdout
