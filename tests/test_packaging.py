"""Packaging: the wheel builds, carries py.typed, and imports in a fresh venv with nothing else installed."""

from __future__ import annotations

import email.parser
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # starts real servers, or builds and installs a wheel

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Build from a copy: an in-tree build would leave build/ and *.egg-info in the shared checkout.
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "kreuzberg_webhooks", source / "kreuzberg_webhooks", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = work / "dist"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--disable-pip-version-check",
            "-q",
            "-w",
            str(dist),
            str(source),
        ],
        check=True,
        timeout=180,
    )
    (built,) = dist.glob("kreuzberg_webhooks-*.whl")
    return built


def test_the_wheel_carries_py_typed_and_every_subpackage(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "kreuzberg_webhooks/py.typed" in names
    for module in (
        "__init__.py",
        "protocol/verify.py",
        "lifecycle/receiver.py",
        "stores/__init__.py",
        "stores/sqlite.py",
        "cli/__init__.py",
        "testing/pytest_plugin.py",
        "pytest_plugin.py",  # the old path of the plugin module, kept working
    ):
        assert f"kreuzberg_webhooks/{module}" in names
    assert not any(name.startswith("tests/") for name in names)


def test_the_core_has_no_runtime_dependency(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
    requirements = metadata.get_all("Requires-Dist") or []
    assert requirements, "the extras should be declared"
    assert all("extra ==" in requirement for requirement in requirements), requirements
    assert metadata["Requires-Python"] == ">=3.11"
    assert {"starlette", "fastapi", "flask", "django", "redis", "otel", "all"} <= set(
        metadata.get_all("Provides-Extra") or []
    )


def test_the_version_is_kept_in_one_place_and_the_urls_are_declared(wheel: Path) -> None:
    import kreuzberg_webhooks

    with zipfile.ZipFile(wheel) as archive:
        (metadata_name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(metadata_name).decode())
    assert metadata["Version"] == kreuzberg_webhooks.__version__
    assert wheel.name.startswith(f"kreuzberg_webhooks-{kreuzberg_webhooks.__version__}-")
    urls = dict(url.split(", ", 1) for url in metadata.get_all("Project-URL") or [])
    assert set(urls) == {"Documentation", "Source", "Changelog"}
    assert all(url.startswith("https://") for url in urls.values())
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## {kreuzberg_webhooks.__version__}" in changelog


def test_the_wheel_installs_and_imports_in_a_fresh_venv(wheel: Path, tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index",
         "--disable-pip-version-check", "-q", str(wheel)],
        check=True,
        timeout=120,
    )  # fmt: skip
    probe = (
        "import kreuzberg_webhooks, sys\n"
        "from kreuzberg_webhooks import Verifier, sign\n"
        "assert sign(b'Hello, World!', \"It's a Secret to Everybody\").endswith('c46f4379c8b043e17')\n"
        "print(kreuzberg_webhooks.__file__)\n"
    )
    # Run from an empty directory, so the checkout cannot be imported by accident.
    result = subprocess.run(
        [str(python), "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True, timeout=60
    )
    assert Path(result.stdout.strip()).is_relative_to(venv)
