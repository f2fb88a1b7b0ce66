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


def token_id_list(ids):
    """``ids`` as a list of ints: a list or tuple of ints, or a 1-D integer tensor (every tokenizer's ``decode``)."""
    if isinstance(ids, torch.Tensor):
        if ids.dim() != 1 or ids.is_floating_point() or ids.is_complex():
            raise ValueError(f"decode expects one sequence of token ids (a 1-D integer tensor), got a {ids.dim()}-D "
                             f"{ids.dtype} tensor of shape {tuple(ids.shape)}: decode each row on its own")
        return ids.tolist()
    if not isinstance(ids, (list, tuple)):
        raise TypeError(f"decode expects a list of token ids or a 1-D tensor, got {type(ids).__name__}")
    bad = next((i for i in ids if isinstance(i, bool) or not isinstance(i, int)), None)
    if bad is not None:
        raise TypeError(f"decode expects int token ids, got {type(bad).__name__} {bad!r:.40}: one sequence, not a batch")
    return list(ids)


def is_compiling():
    """True while ``torch.compile`` traces the code: checks that read tensor values step aside then."""
    check = getattr(getattr(torch, "compiler", None), "is_compiling", None)
    return bool(check is not None and check())


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


def require_finite_number(name, value, low=None, high=None, low_open=False, high_open=False):
    """Raise TypeError/ValueError unless ``value`` is a real, finite number within the bounds given."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__} {value!r}")
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(f"{name} must be a finite number, got {value}")
    if low is not None and (value < low or (low_open and value == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low}, got {value}")
    if high is not None and (value > high or (high_open and value == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high}, got {value}")


def require_token_ids(name, ids, vocab_size=None, ignore_index=None):
    """Token ids: an int64/int32 tensor whose values lie in [0, vocab_size) (or equal ``ignore_index``)."""
    require_tensor(name, ids, integer=True)
    if ids.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"{name} must be torch.long (int64) or int32 token ids, got {ids.dtype}: convert with .long()")
    if vocab_size is not None and ids.numel():
        real = ids if ignore_index is None else ids[ids != ignore_index]
        if real.numel():
            low, high = (int(v) for v in torch.aminmax(real))  # one pass, one sync
            if low < 0 or high >= vocab_size:
                allowed = f"[0, {vocab_size}) (vocab_size)" + (f" or {ignore_index} (ignored)" if ignore_index is not None else "")
                raise ValueError(f"{name} must lie in {allowed}, got values from {low} to {high}")


# --- one validation helper per public function, so the function itself reads like its notebook ---

def check_attention_args(q, k, v, mask):
    """The checks of ``attention.scaled_dot_product_attention`` (notebook 01)."""
    require_tensor("q", q, min_dim=2, floating=True)
    require_tensor("k", k, min_dim=2, floating=True)
    require_tensor("v", v, min_dim=2, floating=True)
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k and v must share a dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
    if q.shape[-1] == 0:
        raise ValueError(f"q and k have d_k = 0 features (q has shape {tuple(q.shape)}): a score needs at least one "
                         "(and dividing by sqrt(0) gives NaN)")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must share their last dimension d_k: q has shape {tuple(q.shape)}, "
            f"k has shape {tuple(k.shape)} (expected k to be (..., T_k, {q.shape[-1]}))")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same number of positions T_k: k has shape {tuple(k.shape)}, "
            f"v has shape {tuple(v.shape)} (expected v to be (..., {k.shape[-2]}, d_v))")
    leading = broadcast_shape(q.shape[:-2], k.shape[:-2], v.shape[:-2])
    if leading is None:
        raise ValueError(
            f"the leading (batch/head) dimensions of q {tuple(q.shape)}, k {tuple(k.shape)} and "
            f"v {tuple(v.shape)} do not broadcast together")
    if mask is not None:
        scores_shape = (*broadcast_shape(q.shape[:-2], k.shape[:-2]), q.shape[-2], k.shape[-2])
        check_mask(mask, scores_shape)


def check_mask(mask, scores_shape):
    """A boolean mask (True = may attend) that broadcasts to the attention scores' shape."""
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a boolean torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"mask must have dtype torch.bool (True = may attend), got {mask.dtype}; "
            "convert with mask.bool() after checking which value means 'attend'")
    if broadcast_shape(mask.shape, scores_shape) != tuple(scores_shape):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the attention scores' shape "
            f"{tuple(scores_shape)} (..., T_q, T_k)")


def check_model_input(name, x, d_model, weight_dtype=None):
    """A ``(batch, seq, d_model)`` floating-point tensor, as attention and decoder blocks take; of the
    weights' dtype (``weight_dtype``) unless autocast mixes precisions on purpose (notebook 12)."""
    require_tensor(name, x, floating=True)
    if x.dim() != 3 or x.shape[-1] != d_model:
        raise ValueError(f"{name} must have shape (batch, seq, d_model={d_model}), got {tuple(x.shape)}")
    if weight_dtype is not None and x.dtype != weight_dtype and not _autocasting(x.device.type):
        raise TypeError(f"{name} is {x.dtype} but the module's weights are {weight_dtype}: convert one to the other "
                        f"(x.to({weight_dtype}) or module.to({x.dtype})), or run under torch.autocast")
    if x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): give at least one sequence of one position")


def _autocasting(device_type):
    try:
        return torch.is_autocast_enabled(device_type)  # PyTorch >= 2.4
    except TypeError:
        return torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()


def check_heads(d_model, n_heads):
    """``n_heads`` positive and dividing ``d_model``."""
    require_positive_int("d_model", d_model)
    require_positive_int("n_heads", n_heads)
    if d_model % n_heads != 0:
        raise ValueError(
            f"n_heads={n_heads} does not divide d_model={d_model}: each head gets "
            f"d_model / n_heads features, so choose n_heads among the divisors of {d_model}")


def check_dropout(dropout):
    require_finite_number("dropout", dropout, low=0.0, high=1.0, high_open=True)
