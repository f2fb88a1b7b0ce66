"""get_device: the best device, and COURSE_DEVICE / --device overrides (course_lib.device)."""
import pytest
import torch

from course_lib.device import get_device


def test_get_device_default_and_override(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert get_device().type == expected
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    assert get_device("cpu") == torch.device("cpu")  # an explicit name wins over the variable
    with pytest.raises(ValueError, match="--device='cpu:x'"):
        get_device("cpu:x")
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="COURSE_DEVICE='tpu'"):
        get_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("COURSE_DEVICE", "cuda")
        with pytest.raises(ValueError, match="no CUDA GPU"):
            get_device()

