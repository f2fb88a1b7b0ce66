"""Scaled dot-product attention (notebook 01) and multi-head attention (notebook 02)."""
import contextlib
import math

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import check_attention_args, check_dropout, check_heads, check_model_input
from .masks import causal_mask
from .modern import apply_rope, repeat_kv


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
    to ``(batch, heads, T_q, T_k)``, True = may attend; ``is_causal=True`` instead of a mask means
    "the causal mask" (query i sees keys 0..i), which lets fast kernels skip the hidden half.

    Two ways to compute the same thing (notebook 12): by default PyTorch's fused
    ``torch.nn.functional.scaled_dot_product_attention`` (flash / memory-efficient kernels on a
    GPU), which never builds the ``(T_q, T_k)`` weights; with ``record_weights = True`` the course's
    own ``scaled_dot_product_attention``, which keeps the weights, ``(batch, heads, T_q, T_k)``,
    detached on ``.attention_weights`` for plotting. ``with recording_attention(model):`` switches
    every attention inside ``model`` to the recording path for the block's duration.

    ``cache`` (a ``course_lib.kv_cache.KVCache``, with ``layer`` its index) makes self-attention
    incremental (notebook 11): this call's keys and values are appended to the cached ones and the
    queries attend over all of them.

    ``n_kv_heads`` (notebook 17) fewer than ``n_heads`` is grouped-query attention: keys and values
    have ``n_kv_heads`` heads, each shared by ``n_heads // n_kv_heads`` query heads; the cache
    stores the small heads. ``rope=(cos, sin)`` (rows of ``course_lib.modern.rope_tables`` for this
    call's positions) rotates queries and keys before attention: rotary positions (notebook 17).
    """

    def __init__(self, d_model, n_heads, dropout=0.0, bias=True, n_kv_heads=None):
        super().__init__()
        check_heads(d_model, n_heads)
        check_dropout(dropout)
        n_kv_heads = n_heads if n_kv_heads is None else n_kv_heads
        if isinstance(n_kv_heads, bool) or not isinstance(n_kv_heads, int) or n_kv_heads < 1 or n_heads % n_kv_heads:
            raise ValueError(f"n_kv_heads must be a positive int that divides n_heads={n_heads} (each key/value head "
                             f"serves a whole group of query heads), got {n_kv_heads!r}")
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_kv_heads = n_kv_heads
        self.head_dim = d_model // n_heads
        self.w_q = nn.Linear(d_model, d_model, bias=bias)
        self.w_k = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.w_v = nn.Linear(d_model, n_kv_heads * self.head_dim, bias=bias)
        self.w_o = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)
        self.record_weights = False  # True: the course's attention, weights kept for plotting
        self._weights = None

    @property
    def attention_weights(self):
        """The last call's weights ``(batch, heads, T_q, T_k)``, when they were recorded (notebook 02; see notebook 12)."""
        if self._weights is None:
            raise RuntimeError("no attention weights recorded: the fast path never builds them. Run the model inside "
                               "`with course_lib.attention.recording_attention(model):` (or set "
                               "`.record_weights = True` on the attention) to keep them")
        return self._weights

    def split_heads(self, x):
        """(batch, T, heads * head_dim) -> (batch, heads, T, head_dim) (the key/value heads' count for k and v)."""
        batch, T, width = x.shape
        return x.view(batch, T, width // self.head_dim, self.head_dim).transpose(1, 2)

    def merge_heads(self, x):
        """(batch, heads, T, head_dim) -> (batch, T, d_model)."""
        batch, _, T, _ = x.shape
        return x.transpose(1, 2).contiguous().view(batch, T, self.d_model)

    def forward(self, x, context=None, mask=None, cache=None, layer=0, is_causal=False, rope=None):
        self._check_inputs(x, context, mask, cache, is_causal)
        if rope is not None and context is not None:
            raise ValueError("rope is for self-attention: queries and keys at the same positions")
        context = x if context is None else context  # self-attention unless told otherwise
        q = self.split_heads(self.w_q(x))  # (batch, heads, T_q, head_dim)
        k = self.split_heads(self.w_k(context))  # (batch, kv_heads, T_k, head_dim)
        v = self.split_heads(self.w_v(context))  # (batch, kv_heads, T_k, head_dim)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)  # rotated by their positions, before caching
        if cache is not None:
            k, v = cache.update(layer, k, v)  # (batch, kv_heads, past + T_k, head_dim): the cache keeps the small heads
        group = self.n_heads // self.n_kv_heads
        k, v = repeat_kv(k, group), repeat_kv(v, group)  # (batch, heads, past + T_k, head_dim)
        if is_causal and k.shape[-2] != q.shape[-2]:
            raise ValueError(f"is_causal=True needs as many keys as queries, got {k.shape[-2]} keys (cached ones "
                             f"included) for {q.shape[-2]} queries: pass a causal_mask(T, past=...) instead")
        dropout_p = self.dropout.p if self.training else 0.0
        if self.record_weights:
            if is_causal:
                mask = causal_mask(q.shape[-2], device=q.device)  # (T_q, T_k)
            dropout = self.dropout if dropout_p > 0 else None
            out, weights = scaled_dot_product_attention(q, k, v, mask, dropout)  # (batch, heads, T_q, head_dim)
            self._weights = weights.detach()
        else:
            check_attention_args(q, k, v, mask)  # the checks the course's function makes, before the fused kernel
            out = fused_attention(q, k, v, mask, dropout_p, is_causal)  # (batch, heads, T_q, head_dim)
            self._weights = None
        return self.w_o(self.merge_heads(out))  # (batch, T_q, d_model)

    def _check_inputs(self, x, context, mask, cache, is_causal):
        check_model_input("x", x, self.d_model, next(self.w_q.parameters()).dtype)
        if is_causal and (mask is not None or context is not None):
            raise ValueError("is_causal=True is the whole mask of causal self-attention: "
                             "pass mask=None and context=None with it")
        if context is not None:
            if cache is not None:
                raise ValueError("a KV cache is for self-attention: pass context=None with cache")
            check_model_input("context", context, self.d_model, next(self.w_k.parameters()).dtype)
            if context.shape[0] != x.shape[0]:
                raise ValueError(
                    f"context has batch size {context.shape[0]} but x has {x.shape[0]}; "
                    f"expected context of shape ({x.shape[0]}, T_k, {self.d_model})")

    def extra_repr(self):
        kv = f", n_kv_heads={self.n_kv_heads}" if self.n_kv_heads != self.n_heads else ""
        return f"d_model={self.d_model}, n_heads={self.n_heads}{kv}, head_dim={self.head_dim}"


def fused_attention(q, k, v, mask=None, dropout_p=0.0, is_causal=False):
    """The course's attention computed by PyTorch's fused kernel; returns the output only (notebook 12).

    ``torch.nn.functional.scaled_dot_product_attention`` computes ``softmax(q k^T / sqrt(d_k)) v``
    without materialising the weights (flash attention on a GPU), with the same mask convention.
    One difference is smoothed over: a query row that may attend to nothing gets a zero output, as
    in ``scaled_dot_product_attention`` above, on every device and kernel (some give NaN).
    """
    if mask is None:
        return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=is_causal)
    sees_something = mask.any(dim=-1, keepdim=True)  # (..., T_q, 1): False for a fully hidden row
    safe_mask = mask | ~sees_something  # such a row may attend anywhere (no 0/0), and is zeroed below
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=safe_mask, dropout_p=dropout_p)
    return out * sees_something  # (..., T_q, d_v)


@contextlib.contextmanager
def recording_attention(model):
    """Inside the block, every ``MultiHeadAttention`` in ``model`` keeps its weights (notebook 02; why: notebook 12).

    ``with recording_attention(gpt): gpt(ids)`` then ``gpt.attention_weights`` gives one
    ``(batch, heads, T, T)`` tensor per layer. Outside it the fast fused kernel runs again.
    """
    modules = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    if not modules:
        raise TypeError(f"{type(model).__name__} holds no MultiHeadAttention to record")
    before = [m.record_weights for m in modules]
    for m in modules:
        m.record_weights = True
    try:
        yield model
    finally:
        for m, was in zip(modules, before):
            m.record_weights = was
