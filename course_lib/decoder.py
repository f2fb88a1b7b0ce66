"""The decoder block a GPT repeats (introduced in notebook 05)."""
import torch
from torch import nn

from ._validate import check_model_input, require_positive_int
from .attention import MultiHeadAttention
from .masks import causal_mask
from .modern import RMSNorm, SwiGLU

#: GELU as the course computes it by default (exact, with erf), and GPT-2's tanh approximation (notebook 13)
ACTIVATIONS = {"gelu": "none", "gelu_tanh": "tanh"}
#: the feed-forward's kinds: the GELU networks above, or the gated SwiGLU of Llama (notebook 17)
FEED_FORWARDS = (*ACTIVATIONS, "swiglu")
#: LayerNorm (GPT-2) or RMSNorm (Llama, notebook 17)
NORMS = ("layernorm", "rmsnorm")


def make_norm(kind, d_model, eps=1e-5, bias=True):
    """The normalisation layer ``kind`` names: ``"layernorm"`` or ``"rmsnorm"`` (notebook 17)."""
    if kind == "layernorm":
        return nn.LayerNorm(d_model, eps=eps, bias=bias)
    if kind == "rmsnorm":
        return RMSNorm(d_model, eps=eps)
    raise ValueError(f"norm must be one of {NORMS}, got {kind!r}")


def make_feed_forward(activation, d_model, d_ff, dropout=0.0, bias=True):
    """The position-wise network: ``FeedForward`` with a GELU, or ``SwiGLU`` (notebook 17)."""
    if activation == "swiglu":
        return SwiGLU(d_model, d_ff, dropout, bias)
    return FeedForward(d_model, d_ff, dropout, activation, bias)


class FeedForward(nn.Module):
    """Position-wise feed-forward network: Linear(d_model, d_ff) -> GELU -> Linear(d_ff, d_model) (notebook 05).

    "Position-wise" means the same two layers act on every position separately (the seed's
    kernel-size-1 convolutions compute exactly this). ``activation="gelu_tanh"`` is GPT-2's
    approximation of GELU (notebook 13); ``bias=False`` drops the layers' biases.
    """

    def __init__(self, d_model, d_ff, dropout=0.0, activation="gelu", bias=True):
        super().__init__()
        require_positive_int("d_ff", d_ff)
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
        self.net = nn.Sequential(nn.Linear(d_model, d_ff, bias=bias), nn.GELU(approximate=ACTIVATIONS[activation]),
                                 nn.Linear(d_ff, d_model, bias=bias), nn.Dropout(dropout))

    def forward(self, x):  # (batch, T, d_model) -> (batch, T, d_model)
        return self.net(x)


_BUILD_HERE = object()  # DecoderBlock's default: no mask was handed in, build it


class DecoderBlock(nn.Module):
    """Masked multi-head self-attention and a feed-forward network, each in a pre-LN residual branch.

    Introduced in notebook 05::

        x = x + Dropout(Attention(LayerNorm(x), causal & padding mask))
        x = x + FeedForward(LayerNorm(x))

    ``forward(x, padding_mask=None)``: ``x`` is ``(batch, T, d_model)``. The causal mask is always
    applied; ``padding_mask`` (``course_lib.masks.padding_mask``, ``(batch, 1, 1, T)``, True = real
    token) is combined with it by ``&``. With ``cache`` (notebook 11) the positions of ``x`` follow
    the cached ones, and the block's keys and values are appended to the cache's layer ``layer``.

    Notebook 17's options: ``norm="rmsnorm"``, ``activation="swiglu"``, ``n_kv_heads`` (grouped-query
    attention), and ``rope=(cos, sin)`` in ``forward`` for rotary positions.
    """

    def __init__(self, d_model, n_heads, d_ff, dropout=0.0, activation="gelu", bias=True, norm="layernorm",
                 norm_eps=1e-5, n_kv_heads=None):
        super().__init__()
        self.d_model = d_model
        self.ln1 = make_norm(norm, d_model, norm_eps, bias)
        self.attn = MultiHeadAttention(d_model, n_heads, dropout=dropout, bias=bias, n_kv_heads=n_kv_heads)
        self.ln2 = make_norm(norm, d_model, norm_eps, bias)
        self.ffn = make_feed_forward(activation, d_model, d_ff, dropout, bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, padding_mask=None, cache=None, layer=0, attn_mask=_BUILD_HERE, rope=None):
        """``attn_mask``: the pair ``block_mask`` returns, already built by the caller (``GPT``
        builds it once per forward pass for all its blocks); without it the block checks ``x`` and
        builds its own."""
        if attn_mask is _BUILD_HERE:
            check_model_input("x", x, self.d_model, next(self.attn.w_q.parameters()).dtype)
            if padding_mask is not None and (not isinstance(padding_mask, torch.Tensor) or padding_mask.dtype != torch.bool):
                raise TypeError(f"padding_mask must be a bool tensor (True = a real token; course_lib.masks.padding_mask), "
                                f"got {getattr(padding_mask, 'dtype', type(padding_mask).__name__)}")
            attn_mask = block_mask(x.shape[1], padding_mask, cache, layer, x.device)
        mask, is_causal = attn_mask
        attended = self.attn(self.ln1(x), mask=mask, cache=cache, layer=layer, is_causal=is_causal, rope=rope)
        x = x + self.dropout(attended)  # (batch, T, d_model)
        x = x + self.ffn(self.ln2(x))  # (batch, T, d_model)
        return x


def block_mask(T, padding_mask=None, cache=None, layer=0, device=None, key_mask=None):
    """What a decoder block attends with, as ``(mask, is_causal)`` (notebook 05; ``is_causal`` notebook 12).

    The mask is causal, with ``padding_mask`` combined by ``&``. Two cases need no tensor: the
    plain causal mask (no padding, nothing cached) is ``(None, True)``, which lets the fused
    attention kernel skip the hidden half without reading a mask; one new query after the cache
    (generation, notebook 11) may see every position before it: ``(None, False)``.

    ``key_mask`` ``(batch, past + T)`` (batched generation, notebook 21) marks the real keys, the
    cached ones included; it works with a cache, and is combined with the causal mask by ``&``.
    """
    past = cache.cached(layer) if cache is not None else 0
    if key_mask is not None:  # (batch, 1, T, past + T): causal, and never a padding key
        return causal_mask(T, device=device, past=past) & key_mask[:, None, None, :], False
    if padding_mask is not None and cache is not None:
        raise ValueError("padding_mask is not supported together with a KV cache")
    if padding_mask is None:
        if past == 0:
            return None, T > 1
        if T == 1:
            return None, False
    mask = causal_mask(T, device=device, past=past)  # (T, past + T)
    if padding_mask is not None:
        mask = mask & padding_mask  # (batch, 1, T, T)
    return mask, False
