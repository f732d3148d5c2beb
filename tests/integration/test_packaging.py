"""The distribution: `python -m build` gives a wheel and an sdist that `twine check` passes; the wheel
installed in a clean virtualenv (core dependencies only, no extras) runs `rtfin --version` and
`rtfin local up --help`, reads settings, and installs shell completion."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from rtfin_cli import __version__

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "rtfin_cli"

pytestmark = pytest.mark.slow


def _run(*cmd: str | Path, timeout: float = 300, **kw: object) -> subprocess.CompletedProcess[str]:
    out = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout, **kw)  # type: ignore[call-overload]
    assert out.returncode == 0, f"{cmd} exited {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out  # type: ignore[no-any-return]


def _data_files() -> set[str]:
    """Package data in the source tree: every non-Python file under rtfin_cli/ (what others add, too)."""
    return {
        p.relative_to(ROOT).as_posix()
        for p in PACKAGE.rglob("*")
        if p.is_file() and p.suffix not in {".py", ".pyc"} and "__pycache__" not in p.parts
    }


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Wheel + sdist built from a copy of the source (the checkout stays untouched: no build/ or egg-info)."""
    tmp = tmp_path_factory.mktemp("packaging")
    src = tmp / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in"):
        if (ROOT / name).exists():
            shutil.copy2(ROOT / name, src / name)
    shutil.copytree(PACKAGE, src / "rtfin_cli", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    out = tmp / "dist"
    # --no-isolation: build with this venv's setuptools (offline, seconds) instead of a fresh build env
    _run(sys.executable, "-m", "build", "--no-isolation", "--outdir", out, src)
    yield out


def test_wheel_and_sdist_pass_twine_check(dist: Path) -> None:
    wheels, sdists = sorted(dist.glob("*.whl")), sorted(dist.glob("*.tar.gz"))
    assert [w.name for w in wheels] == [f"rtfin-{__version__}-py3-none-any.whl"]
    assert [s.name for s in sdists] == [f"rtfin-{__version__}.tar.gz"]
    out = _run(sys.executable, "-m", "twine", "check", "--strict", *wheels, *sdists)
    assert out.stdout.count("PASSED") == 2


def test_wheel_holds_the_package_and_all_its_data(dist: Path) -> None:
    names = set(zipfile.ZipFile(next(dist.glob("*.whl"))).namelist())
    top = {n.split("/")[0] for n in names}
    assert top == {"rtfin_cli", f"rtfin-{__version__}.dist-info"}, "no tests/, jobs/ or stray modules"
    missing = _data_files() - names
    assert not missing, (
        f"package data missing from the wheel (add the pattern to pyproject): {sorted(missing)}"
    )
    py = {p.relative_to(ROOT).as_posix() for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts}
    assert not py - names
    meta = next(n for n in names if n.endswith(".dist-info/METADATA"))
    text = zipfile.ZipFile(next(dist.glob("*.whl"))).read(meta).decode()
    assert f"Version: {__version__}" in text and "Description-Content-Type: text/markdown" in text
    assert (
        "Provides-Extra: spark" in text
        and "rtfin = rtfin_cli.cli.main:run"
        in zipfile.ZipFile(next(dist.glob("*.whl")))
        .read(meta.replace("METADATA", "entry_points.txt"))
        .decode()
    )


@pytest.fixture(scope="module")
def clean_venv(dist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv (no system site-packages) with the wheel and its core dependencies, no extras.

    Dependencies come from a wheelhouse under .cache/pip (downloaded from PyPI once, then offline).
    """
    venv = tmp_path_factory.mktemp("venv") / "v"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    wheel = next(dist.glob("*.whl"))
    house = ROOT / ".cache" / "pip" / "wheelhouse"
    env = {k: v for k, v in os.environ.items() if k not in {"PYTHONPATH", "PIP_FIND_LINKS", "PIP_NO_INDEX"}}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    install = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        venv / "bin" / "python",
        "install",
        "-q",
        "--no-compile",
    ]
    offline = [*install, "--no-index", "--find-links", house, wheel]
    if subprocess.run([str(c) for c in offline], capture_output=True, env=env, timeout=600).returncode != 0:
        _run(sys.executable, "-m", "pip", "download", "-q", "-d", house, wheel, env=env, timeout=600)
        _run(*offline, env=env, timeout=600)
    return venv


def _clean_env(home: Path) -> dict[str, str]:
    keep = {"PATH", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT"}
    return {**{k: v for k, v in os.environ.items() if k in keep}, "HOME": str(home), "TERM": "dumb"}


def test_installed_cli_runs_without_extras(clean_venv: Path, tmp_path: Path) -> None:
    rtfin = clean_venv / "bin" / "rtfin"
    env = _clean_env(tmp_path)
    assert _run(rtfin, "--version", env=env, cwd=tmp_path).stdout.strip() == f"rtfin {__version__}"
    up = _run(rtfin, "local", "up", "--help", env=env, cwd=tmp_path)
    assert "Usage: rtfin local up" in up.stdout
    # no heavy or optional module is needed to start: the extras are not installed here
    code = (
        "import importlib.util as u; print([m for m in ('pyspark','torch','dbt','chdb') if u.find_spec(m)])"
    )
    assert _run(clean_venv / "bin" / "python", "-c", code, env=env, cwd=tmp_path).stdout.strip() == "[]"
    shown = _run(rtfin, "config", "show", "--json", env=env, cwd=tmp_path)
    assert '"profile":"local"' in shown.stdout
    bad = subprocess.run([rtfin, "nope"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60)
    assert bad.returncode == 2 and "No such command" in bad.stderr


def test_install_completion_for_bash(clean_venv: Path, tmp_path: Path) -> None:
    rtfin = clean_venv / "bin" / "rtfin"
    env = _clean_env(tmp_path)
    # typer detects the calling shell from the parent process: bash, as for a user at a prompt (a lone
    # command in `bash -c` is exec'd in bash's place, leaving the test runner's ancestors to guess from)
    out = _run("bash", "-c", f"'{rtfin}' --install-completion; exit $?", env=env, cwd=tmp_path)
    assert "bash completion installed" in out.stdout
    script = tmp_path / ".bash_completions" / "rtfin.sh"
    assert "_RTFIN_COMPLETE" in script.read_text()
    assert str(script) in (tmp_path / ".bashrc").read_text()
    env_complete = {
        **env,
        "_RTFIN_COMPLETE": "complete_bash",
        "COMP_WORDS": "rtfin local ku",
        "COMP_CWORD": "2",
    }
    assert _run(rtfin, env=env_complete, cwd=tmp_path).stdout.split() == []
    env_complete["COMP_WORDS"] = "rtfin local ka"
    assert _run(rtfin, env=env_complete, cwd=tmp_path).stdout.split() == ["kafka"]
