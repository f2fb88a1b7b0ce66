"""Optional tools some tests need: skipped on a student's machine without them, required in CI."""
import importlib.util
import os
import shutil

import pytest


def require(module=None, executable=None, why=""):
    """Skip the test when the tool is missing, unless running in CI (CI=true), where that fails."""
    missing = []
    if module and importlib.util.find_spec(module) is None:
        missing.append(f"Python package {module}")
    if executable and shutil.which(executable) is None:
        missing.append(f"program {executable}")
    if missing:
        message = f"{' and '.join(missing)} not installed ({why})"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"CI must run this test: {message}; .ci/run installs it")
        pytest.skip(message)
