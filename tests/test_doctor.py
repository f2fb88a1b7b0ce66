"""The environment check: python -m course_lib.doctor (course_lib.doctor)."""
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_doctor(**env):
    return subprocess.run([sys.executable, "-m", "course_lib.doctor"], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)



def test_doctor_all_ok_here():
    result = run_doctor(COURSE_DEVICE="cpu")
    assert result.returncode == 0, result.stdout
    for item in ("Python", "torch", "device: cpu", "matplotlib backend", "ipywidgets", "JupyterLab", "data/ folder"):
        assert re.search(rf"^\[OK\] {re.escape(item)}", result.stdout, re.M), (item, result.stdout)
    assert "[FAIL]" not in result.stdout and "Traceback" not in result.stderr



def test_doctor_names_failures_and_their_fixes(tmp_path):
    result = run_doctor(COURSE_DEVICE="tpu", COURSE_DATA_DIR=str(tmp_path))
    assert result.returncode == 1
    assert re.search(r"^\[FAIL\] device: COURSE_DEVICE='tpu'", result.stdout, re.M)
    assert re.search(r"^\[FAIL\] data/ folder: no data file 'lang.txt'", result.stdout, re.M)
    assert result.stdout.count("fix:") == 2 and "Traceback" not in result.stderr



def test_doctor_imports_packages_instead_of_trusting_their_version(tmp_path):
    # ipywidgets 7.6.0 is installed fine but crashes on import (it needs ipython_genutils): the doctor
    # must import each package, not only read its version. A stand-in that fails the same way:
    fake = tmp_path / "ipywidgets"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ModuleNotFoundError(\"No module named 'ipython_genutils'\")\n")
    result = run_doctor(COURSE_DEVICE="cpu", PYTHONPATH=str(tmp_path))
    assert result.returncode == 1
    assert re.search(r"^\[FAIL\] ipywidgets: installed but cannot be imported .*ipython_genutils", result.stdout, re.M)
    assert "Traceback" not in result.stderr


def test_doctor_reads_the_floors_from_the_package_metadata():
    from course_lib.doctor import minimum_versions

    floors = minimum_versions()
    pyproject = (ROOT / "pyproject.toml").read_text()
    for name in ("torch", "numpy", "matplotlib", "ipywidgets", "tqdm", "jupyterlab"):
        assert f'"{name}>={floors[name]}' in pyproject, name
    requirements = (ROOT / "requirements.txt").read_text()
    for name in ("torch", "numpy", "matplotlib", "ipywidgets", "tqdm", "jupyterlab"):
        assert f"{name}>={floors[name]}" in requirements, f"requirements.txt and pyproject.toml disagree on {name}"
