"""Argument checks shared by the course's modules: clear errors instead of broadcast errors deep inside."""
from itertools import zip_longest

import torch


def require_tensor(name, value, min_dim=None, dim=None, floating=False, integer=False):
    """Raise TypeError/ValueError naming `name` unless `value` is a tensor of the expected kind."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if floating and not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {value.dtype}")
    if integer and (value.is_floating_point() or value.is_complex() or value.dtype == torch.bool):
        raise TypeError(f"{name} must hold integer token ids (e.g. torch.long), got dtype {value.dtype}")
    if dim is not None and value.dim() != dim:
        raise ValueError(f"{name} must have {dim} dimensions, got shape {tuple(value.shape)}")
    if min_dim is not None and value.dim() < min_dim:
        raise ValueError(
            f"{name} must have at least {min_dim} dimensions, got shape {tuple(value.shape)}"
        )


def require_positive_int(name, value, allow_zero=False):
    """Raise TypeError/ValueError unless `value` is an int > 0 (or >= 0 with allow_zero)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {type(value).__name__} {value!r}")
    if value < 0 or (value == 0 and not allow_zero):
        bound = ">= 0" if allow_zero else "> 0"
        raise ValueError(f"{name} must be {bound}, got {value}")


def broadcast_shape(*shapes):
    """The shape ``shapes`` broadcast to, or None when they do not broadcast together.

    Plain Python: ``torch.broadcast_shapes`` goes through a slow reference implementation, and this
    check runs in every attention call, for every generated token.
    """
    result = []
    for dims in zip_longest(*(reversed(tuple(s)) for s in shapes), fillvalue=1):
        sizes = {d for d in dims if d != 1}
        if len(sizes) > 1:
            return None
        result.append(sizes.pop() if sizes else 1)
    return tuple(reversed(result))
