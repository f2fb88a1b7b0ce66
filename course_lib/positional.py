"""Sinusoidal position tables (introduced in notebook 03)."""
import torch

from ._validate import require_positive_int


def sinusoidal_table(n_positions, d_model, dtype=torch.float32):
    """The table of "Attention Is All You Need", shape ``(n_positions, d_model)`` (notebook 03).

    ``PE[pos, 2i]   = sin(pos / 10000^(2i / d_model))``
    ``PE[pos, 2i+1] = cos(pos / 10000^(2i / d_model))``

    Computed in float64 and cast to ``dtype``, so large positions keep their accuracy.
    An odd ``d_model`` is allowed: the last column is a sine.
    """
    require_positive_int("n_positions", n_positions, allow_zero=True)
    require_positive_int("d_model", d_model)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch dtype (sines and cosines lie in [-1, 1]), got {dtype}")
    pos = torch.arange(n_positions, dtype=torch.float64).unsqueeze(1)  # (n_positions, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (ceil(d_model/2),)
    angle = pos / torch.pow(10000.0, two_i / d_model)  # (n_positions, ceil(d_model/2))
    table = torch.empty(n_positions, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle[:, : d_model // 2])
    return table.to(dtype)
