"""Scaled dot-product attention (notebook 01) and multi-head attention (notebook 02)."""
import math

import torch
from torch import nn

from ._validate import check_attention_args, check_dropout, check_heads, check_model_input


def scaled_dot_product_attention(q, k, v, mask=None, dropout=None):
    """softmax(q k^T / sqrt(d_k)) v, returning ``(output, weights)``.

    Introduced in notebook 01.

    Shapes: ``q`` is ``(..., T_q, d_k)``, ``k`` is ``(..., T_k, d_k)``, ``v`` is ``(..., T_k, d_v)``;
    ``output`` is ``(..., T_q, d_v)`` and ``weights`` is ``(..., T_q, T_k)``.

    ``mask`` is boolean and broadcastable to ``(..., T_q, T_k)``; ``True`` means "may attend", the
    convention of ``torch.nn.functional.scaled_dot_product_attention``. A query row that may attend
    to nothing gets all-zero weights and a zero output (never NaN). ``dropout`` (an ``nn.Dropout``,
    notebook 02) is applied to the weights before they mix the values; the weights returned are the
    ones before dropout, the ones to draw.
    """
    check_attention_args(q, k, v, mask)  # clear errors for wrong shapes and dtypes (_validate.py)

    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., T_q, T_k)
    if mask is not None:
        # The dtype's own minimum, not -1e9: -1e9 overflows to -inf in float16. A finite fill
        # keeps softmax (and its gradient) free of NaN even when a whole row is masked.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)

    # Half-precision softmax loses digits; compute it in float32 and come back.
    work_dtype = torch.float32 if scores.dtype in (torch.float16, torch.bfloat16) else scores.dtype
    weights = torch.softmax(scores.to(work_dtype), dim=-1).to(scores.dtype)  # (..., T_q, T_k)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)  # a fully masked row came out uniform: zero it

    mixing = dropout(weights) if dropout is not None else weights  # dropout cuts some links in training
    return mixing @ v, weights  # (..., T_q, d_v), (..., T_q, T_k)


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
        check_heads(d_model, n_heads)
        check_dropout(dropout)
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
        self._check_inputs(x, context, cache)
        context = x if context is None else context  # self-attention unless told otherwise
        q = self.split_heads(self.w_q(x))  # (batch, heads, T_q, head_dim)
        k = self.split_heads(self.w_k(context))  # (batch, heads, T_k, head_dim)
        v = self.split_heads(self.w_v(context))  # (batch, heads, T_k, head_dim)
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (batch, heads, past + T_k, head_dim)
        dropout = self.dropout if self.training and self.dropout.p > 0 else None
        out, weights = scaled_dot_product_attention(q, k, v, mask, dropout)  # (batch, heads, T_q, head_dim)
        self.attention_weights = weights.detach()
        return self.w_o(self.merge_heads(out))  # (batch, T_q, d_model)

    def _check_inputs(self, x, context, cache):
        check_model_input("x", x, self.d_model)
        if context is not None:
            if cache is not None:
                raise ValueError("a KV cache is for self-attention: pass context=None with cache")
            check_model_input("context", context, self.d_model)
            if context.shape[0] != x.shape[0]:
                raise ValueError(
                    f"context has batch size {context.shape[0]} but x has {x.shape[0]}; "
                    f"expected context of shape ({x.shape[0]}, T_k, {self.d_model})")

    def extra_repr(self):
        return f"d_model={self.d_model}, n_heads={self.n_heads}, head_dim={self.head_dim}"
