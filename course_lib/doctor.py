"""Environment check: ``python -m course_lib.doctor``.

Prints one [OK] or [FAIL] line per item, with the fix for each failure, and exits non-zero when
anything failed. Run it first when a notebook will not start.
"""
import importlib
import importlib.metadata
import platform
import sys

MIN_PYTHON = (3, 9)
MINIMUM = {"torch": "2.1", "numpy": "1.24", "matplotlib": "3.7", "ipywidgets": "7.6", "jupyterlab": "4.0", "tqdm": "4.60"}
INSTALL = "pip install -r requirements.txt (from the repository root)"


def _version_tuple(text):
    parts = []
    for piece in text.split("+")[0].split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits) if digits else 0)
    return tuple(parts)


def _package(name):
    try:
        version = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return False, "not installed", f"{INSTALL}, or: pip install '{name}>={MINIMUM[name]}'"
    if _version_tuple(version) < _version_tuple(MINIMUM[name]):
        return False, f"{version} (needs >= {MINIMUM[name]})", f"pip install --upgrade '{name}>={MINIMUM[name]}'"
    return True, version, ""


def checks():
    """Yield (item, ok, detail, fix) for every item the course needs."""
    ok = sys.version_info[:2] >= MIN_PYTHON
    yield ("Python", ok, platform.python_version(),
           "" if ok else f"install Python {MIN_PYTHON[0]}.{MIN_PYTHON[1]} or newer")
    for name in ("torch", "numpy", "matplotlib", "tqdm"):
        yield (name, *_package(name))
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
    yield ("ipywidgets", *_package("ipywidgets"))
    yield ("JupyterLab", *_package("jupyterlab"))
    try:
        from course_lib.data import data_path

        path = data_path("lang.txt")
        yield ("data/ folder", True, str(path.parent), "")
    except FileNotFoundError as error:
        yield ("data/ folder", False, str(error),
               "run from a full clone of the repository and install it with pip install -e . "
               "(or point COURSE_DATA_DIR at the folder holding lang.txt)")


def main():
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
