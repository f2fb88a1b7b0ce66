"""Scaled dot-product attention (notebook 01) and multi-head attention (notebook 02)."""
import math

import torch
from torch import nn

from ._validate import broadcast_shape, require_positive_int, require_tensor


def scaled_dot_product_attention(q, k, v, mask=None):
    """softmax(q k^T / sqrt(d_k)) v, returning ``(output, weights)``.

    Introduced in notebook 01.

    Shapes: ``q`` is ``(..., T_q, d_k)``, ``k`` is ``(..., T_k, d_k)``, ``v`` is ``(..., T_k, d_v)``;
    ``output`` is ``(..., T_q, d_v)`` and ``weights`` is ``(..., T_q, T_k)``.

    ``mask`` is boolean and broadcastable to ``(..., T_q, T_k)``; ``True`` means "may attend", the
    convention of ``torch.nn.functional.scaled_dot_product_attention``. A query row that may attend
    to nothing gets all-zero weights and a zero output (never NaN).
    """
    require_tensor("q", q, min_dim=2, floating=True)
    require_tensor("k", k, min_dim=2, floating=True)
    require_tensor("v", v, min_dim=2, floating=True)
    if not (q.dtype == k.dtype == v.dtype):
        raise TypeError(f"q, k and v must share a dtype, got {q.dtype}, {k.dtype} and {v.dtype}")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must share their last dimension d_k: q has shape {tuple(q.shape)}, "
            f"k has shape {tuple(k.shape)} (expected k to be (..., T_k, {q.shape[-1]}))"
        )
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(
            f"k and v must have the same number of positions T_k: k has shape {tuple(k.shape)}, "
            f"v has shape {tuple(v.shape)} (expected v to be (..., {k.shape[-2]}, d_v))"
        )
    if broadcast_shape(q.shape[:-2], k.shape[:-2], v.shape[:-2]) is None:
        raise ValueError(
            f"the leading (batch/head) dimensions of q {tuple(q.shape)}, k {tuple(k.shape)} and "
            f"v {tuple(v.shape)} do not broadcast together"
        )

    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., T_q, T_k)

    if mask is not None:
        _check_mask(mask, scores.shape)
        # The dtype's own minimum, not -1e9: -1e9 overflows to -inf in float16. A finite fill
        # keeps softmax (and its gradient) free of NaN even when a whole row is masked.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)

    # Half-precision softmax loses digits; compute it in float32 and come back.
    work_dtype = torch.float32 if scores.dtype in (torch.float16, torch.bfloat16) else scores.dtype
    weights = torch.softmax(scores.to(work_dtype), dim=-1).to(scores.dtype)  # (..., T_q, T_k)

    if mask is not None:
        # A fully masked row came out uniform above; zero it so it attends to nothing.
        weights = weights.masked_fill(~mask, 0.0)

    output = weights @ v  # (..., T_q, d_v)
    return output, weights


def _check_mask(mask, scores_shape):
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a boolean torch.Tensor, got {type(mask).__name__}")
    if mask.dtype != torch.bool:
        raise TypeError(
            f"mask must have dtype torch.bool (True = may attend), got {mask.dtype}; "
            "convert with mask.bool() after checking which value means 'attend'"
        )
    if broadcast_shape(mask.shape, scores_shape) != tuple(scores_shape):
        raise ValueError(
            f"mask of shape {tuple(mask.shape)} does not broadcast to the attention scores' shape "
            f"{tuple(scores_shape)} (..., T_q, T_k)"
        )


class MultiHeadAttention(nn.Module):
    """Multi-head attention: ``n_heads`` scaled dot-product attentions side by side.

    Introduced in notebook 02.

    ``forward(x, context=None, mask=None)``: ``x`` is ``(batch, T_q, d_model)``. With ``context``
    None it is self-attention (keys and values come from ``x``); otherwise keys and values come
    from ``context`` ``(batch, T_k, d_model)``: cross-attention. ``mask`` is boolean, broadcastable
    to ``(batch, heads, T_q, T_k)``, True = may attend. After each call the attention weights,
    ``(batch, heads, T_q, T_k)``, are kept (detached) on ``.attention_weights`` for plotting.

    ``cache`` (a ``course_lib.kv_cache.KVCache``, with ``layer`` its index) makes self-attention
    incremental (notebook 11): this call's keys and values are appended to the cached ones and the
    queries attend over all of them.
    """

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True):
        super().__init__()
        require_positive_int("d_model", d_model)
        require_positive_int("n_heads", n_heads)
        if d_model % n_heads != 0:
            raise ValueError(
                f"n_heads={n_heads} does not divide d_model={d_model}: each head gets "
                f"d_model / n_heads features, so choose n_heads among the divisors of {d_model}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.d_model = d_model
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, d_model, bias=bias)
        self.w_v = nn.Linear(d_model, d_model, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.attention_weights = None

    def split_heads(self, x):
        """(batch, T, d_model) -> (batch, heads, T, head_dim)."""
        batch, T, _ = x.shape
        return x.view(batch, T, self.n_heads, self.head_dim).transpose(1, 2)

    def merge_heads(self, x):
        """(batch, heads, T, head_dim) -> (batch, T, d_model)."""
        batch, _, T, _ = x.shape
        return x.transpose(1, 2).contiguous().view(batch, T, self.d_model)

    def forward(self, x, context=None, mask=None, cache=None, layer=0):
        self._check_input("x", x)
        if cache is not None and context is not None:
            raise ValueError("a KV cache is for self-attention: pass context=None with cache")
        if context is None:
            context = x
        else:
            self._check_input("context", context)
            if context.shape[0] != x.shape[0]:
                raise ValueError(
                    f"context has batch size {context.shape[0]} but x has {x.shape[0]}; "
                    f"expected context of shape ({x.shape[0]}, T_k, {self.d_model})"
                )
        q = self.split_heads(self.w_q(x))  # (batch, heads, T_q, head_dim)
        k = self.split_heads(self.w_k(context))  # (batch, heads, T_k, head_dim)
        v = self.split_heads(self.w_v(context))  # (batch, heads, T_k, head_dim)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (batch, heads, past + T_k, head_dim)
        out, weights = scaled_dot_product_attention(q, k, v, mask)  # (batch, heads, T_q, head_dim)
        if self.training and self.dropout.p > 0:
            # Dropout on the weights: recompute the weighted sum with some links cut.
            out = self.dropout(weights) @ v
        self.attention_weights = weights.detach()
        return self.w_o(self.merge_heads(out))  # (batch, T_q, d_model)

    def _check_input(self, name, t):
        require_tensor(name, t, floating=True)
        if t.dim() != 3 or t.shape[-1] != self.d_model:
            raise ValueError(
                f"{name} must have shape (batch, seq, d_model={self.d_model}), got {tuple(t.shape)}"
            )

    def extra_repr(self):
        return f"d_model={self.d_model}, n_heads={self.n_heads}, head_dim={self.head_dim}"
