"""Environment check: ``python -m course_lib.doctor``.

Prints one [OK] or [FAIL] line per item, with the fix for each failure, and exits non-zero when
anything failed. Run it first when a notebook will not start.
"""
import importlib
import importlib.metadata
import os
import platform
import re
import sys
from pathlib import Path

MIN_PYTHON = (3, 9)
INSTALL = "pip install -r requirements.txt (from the repository root)"
#: What the notebooks import: the package's dependencies and its 'lab' extra (JupyterLab).
PACKAGES = {"torch": "torch", "numpy": "numpy", "matplotlib": "matplotlib", "tqdm": "tqdm",
            "ipywidgets": "ipywidgets", "jupyterlab": "jupyterlab"}
REQUIREMENT = re.compile(r"^\s*([A-Za-z0-9_.-]+)\s*>=\s*([0-9][0-9.]*)")


def minimum_versions():
    """The version floors, read from the installed package's metadata (or pyproject.toml beside it; README "Troubleshooting").

    One source of truth: pyproject.toml. On Colab the course is imported from a clone without being
    installed, so the file itself is read there.
    """
    try:
        lines = importlib.metadata.requires("course_lib") or []
    except importlib.metadata.PackageNotFoundError:
        pyproject = Path(__file__).resolve().parent.parent / "pyproject.toml"
        lines = re.findall(r'"([^"]+>=[^"]+)"', pyproject.read_text(encoding="utf-8")) if pyproject.is_file() else []
    floors = {}
    for line in lines:
        match = REQUIREMENT.match(line)
        if match:
            floors.setdefault(match.group(1).lower(), match.group(2))
    return floors


def _version_tuple(text):
    parts = []
    for piece in text.split("+")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _package(name, floors):
    """Import the package (an installed version that cannot be imported is a failure) and check its floor."""
    floor = floors.get(name, "0")
    try:
        importlib.import_module(PACKAGES[name])
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False, "not installed", f"{INSTALL}, or: pip install '{name}>={floor}'"
    except Exception as error:  # noqa: BLE001 - a broken install fails in its own way; report it as a line
        return False, f"installed but cannot be imported ({type(error).__name__}: {str(error)[:100]})", \
            f"pip install --upgrade '{name}>={floor}'"
    if _version_tuple(version) < _version_tuple(floor):
        return False, f"{version} (needs >= {floor})", f"pip install --upgrade '{name}>={floor}'"
    return True, version, ""


def _threads():
    """torch's CPU threads, and a warning when the CPU is already busy (then fewer threads train faster)."""
    import torch

    cores = os.cpu_count() or 1
    detail = f"torch uses {torch.get_num_threads()} threads on {cores} cores"
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):  # Windows has no load average
        return True, detail, ""
    detail += f" (load average {load:.1f})"
    if load >= cores and torch.get_num_threads() > 1:
        return True, detail + "; the CPU is busy: if training crawls, start Jupyter with OMP_NUM_THREADS=1", ""
    return True, detail, ""


def checks():
    """Yield (item, ok, detail, fix) for every item the course needs (README "Troubleshooting")."""
    ok = sys.version_info[:2] >= MIN_PYTHON
    yield ("Python", ok, platform.python_version(),
           "" if ok else f"install Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer")
    floors = minimum_versions()
    for name in ("torch", "numpy", "matplotlib", "tqdm"):
        yield (name, *_package(name, floors))
    try:
        from course_lib.device import get_device

        device = get_device()
        detail = str(device)
        if device.type == "cuda":
            import torch

            detail += f" ({torch.cuda.get_device_name(device)})"
        elif device.type == "cpu":
            detail += " (no GPU found: the course runs fine on a CPU)"
        yield ("device", True, detail, "")
    except Exception as error:  # noqa: BLE001 - report any failure as a line, not a traceback
        yield ("device", False, str(error), "unset COURSE_DEVICE or set it to cpu, cuda or mps")
    try:
        import matplotlib

        yield ("matplotlib backend", True, matplotlib.get_backend(), "")
    except Exception as error:  # noqa: BLE001
        yield ("matplotlib backend", False, str(error), f"{INSTALL}")
    yield ("CPU threads", *_threads())
    yield ("ipywidgets", *_package("ipywidgets", floors))
    yield ("JupyterLab", *_package("jupyterlab", floors))
    try:
        from course_lib.data import data_path

        path = data_path("lang.txt")
        yield ("data/ folder", True, str(path.parent), "")
    except FileNotFoundError as error:
        yield ("data/ folder", False, str(error),
               "run from a full clone of the repository and install it with pip install -e . "
               "(or point COURSE_DATA_DIR at the folder holding lang.txt)")


def main():
    """Print the checks; return 1 when any failed (README "Troubleshooting")."""
    failures = 0
    print("GPT-from-scratch course: environment check")
    for item, ok, detail, fix in checks():
        print(f"[{'OK' if ok else 'FAIL'}] {item}: {detail}")
        if not ok:
            failures += 1
            print(f"       fix: {fix}")
    print("all good: open notebooks/01_scaled_dot_product_attention.ipynb" if not failures
          else f"{failures} problem(s) found: apply the fixes above, then run python -m course_lib.doctor again")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
