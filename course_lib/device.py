"""Choosing where tensors live (introduced in notebook 01)."""
import os

import torch

_KNOWN = ("cpu", "cuda", "mps")


def get_device(name=None) -> torch.device:
    """The best available device: CUDA, then Apple's MPS, then the CPU (notebook 07).

    ``name`` (for example ``"cpu"`` or ``"cuda:1"``, as the command line's ``--device`` passes it)
    or else the environment variable ``COURSE_DEVICE`` overrides the choice, so a notebook can be
    forced onto the CPU for deterministic output without editing it. Either is checked.
    """
    if isinstance(name, torch.device):
        name = str(name)
    if name is not None and not isinstance(name, str):
        raise TypeError(f"device must be a str such as 'cpu' or 'cuda:0', a torch.device or None, got {type(name).__name__}")
    source = "--device" if name else "COURSE_DEVICE"
    wanted = (name or os.environ.get("COURSE_DEVICE", "")).strip()
    if wanted:
        kind, _, index = wanted.partition(":")
        if kind not in _KNOWN or (index and not index.isdigit()):
            raise ValueError(
                f"{source}={wanted!r} is not a device this course knows; expected one of "
                f"{', '.join(_KNOWN)} (optionally with an index, e.g. 'cuda:0')"
            )
        if kind == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{source}={wanted!r} but PyTorch sees no CUDA GPU here")
        if kind == "mps" and not _mps_available():
            raise ValueError(f"{source}={wanted!r} but Apple's MPS backend is not available")
        return torch.device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
