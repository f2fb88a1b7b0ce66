"""The four choices that separate GPT-2 from today's decoders (introduced in notebook 17).

Llama, Mistral, Qwen and SmolLM2 are notebook 06's GPT with four parts swapped:

- **RMSNorm** instead of LayerNorm: divide by the root mean square, no mean subtracted, no bias.
- **Rotary position embeddings** (RoPE, Su et al. 2021) instead of a position table added to the
  input: each query and key is *rotated* by an angle proportional to its position, so the score
  of a query and a key depends on their distance only.
- **SwiGLU** instead of Linear -> GELU -> Linear: a gate ``silu(x W_gate)`` multiplies ``x W_up``.
- **Grouped-query attention** (GQA, Ainslie et al. 2023): fewer key/value heads than query heads,
  each shared by a group of query heads, so the KV cache shrinks by the group size.

``course_lib.gpt.GPTConfig`` offers each as an option (``norm="rmsnorm"``, ``positions="rope"``,
``activation="swiglu"``, ``n_kv_heads``); this module holds the pieces.
"""
import torch
import torch.nn.functional as F
from torch import nn

from ._validate import require_finite_number, require_positive_int, require_tensor


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x**2) + eps) * weight`` over the last axis (Zhang & Sennrich 2019; notebook 17).

    LayerNorm subtracts the mean and divides by the standard deviation, then adds a bias; RMSNorm
    keeps only the division (by the root mean square) and the learned scale: fewer operations,
    the same training in practice. Half-precision inputs are normalised in float32, as Llama does,
    then cast back. Equal to ``torch.nn.RMSNorm`` (tested).
    """

    def __init__(self, d_model, eps=1e-6):
        super().__init__()
        require_positive_int("d_model", d_model)
        require_finite_number("eps", eps, low=0.0, low_open=True)
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(d_model))

    def forward(self, x):  # (..., d_model) -> (..., d_model)
        work = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x  # half precision loses the mean's digits
        normed = work * torch.rsqrt(work.pow(2).mean(dim=-1, keepdim=True) + self.eps)
        return normed.to(x.dtype) * self.weight

    def extra_repr(self):
        return f"{self.weight.shape[0]}, eps={self.eps:g}"


def rope_tables(n_positions, head_dim, base=10000.0, dtype=torch.float32, device=None):
    """``(cos, sin)``, each ``(n_positions, head_dim)``: the rotation angles of RoPE (notebook 17).

    Pair ``i`` of a head (features ``i`` and ``i + head_dim/2``, the "rotate-half" layout of
    GPT-NeoX, Hugging Face and this course) turns by ``position * base**(-2i/head_dim)``: the first
    pairs spin fast (they tell neighbours apart), the last ones slowly (they reach far). Both
    halves of the table repeat the same angles, so ``x * cos + rotate_half(x) * sin`` rotates every
    pair at once. Computed in float64, like the sinusoidal table of notebook 03.
    """
    require_positive_int("n_positions", n_positions, allow_zero=True)
    require_positive_int("head_dim", head_dim)
    if head_dim % 2:
        raise ValueError(f"head_dim must be even for RoPE (features rotate in pairs), got {head_dim}")
    require_finite_number("base", base, low=1.0, low_open=True)
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (head_dim/2,)
    angles = torch.arange(n_positions, dtype=torch.float64)[:, None] * inv_freq[None, :]  # (n_positions, head_dim/2)
    angles = torch.cat([angles, angles], dim=-1)  # (n_positions, head_dim)
    return angles.cos().to(dtype=dtype, device=device), angles.sin().to(dtype=dtype, device=device)


def rotate_half(x):
    """``(x1, x2) -> (-x2, x1)`` on the two halves of the last axis: a quarter turn of every pair (notebook 17)."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat([-x2, x1], dim=-1)


def apply_rope(x, cos, sin):
    """Rotate each pair of ``x`` ``(batch, heads, T, head_dim)`` by its position's angle (notebook 17).

    ``cos`` and ``sin`` are the rows of ``rope_tables`` for ``x``'s positions: ``(T, head_dim)``
    (every row of the batch at the same positions) or ``(batch, 1, T, head_dim)`` (a position per
    row). In complex numbers, pair ``(a, b)`` is ``a + ib`` and the rotation is a multiplication
    by ``e^(i * angle)`` (tested against that formula).
    """
    require_tensor("x", x, dim=4, floating=True)
    if cos.shape != sin.shape or cos.shape[-1] != x.shape[-1] or cos.shape[-2] != x.shape[-2]:
        raise ValueError(f"cos and sin must be (T={x.shape[-2]}, head_dim={x.shape[-1]}) rows of rope_tables, "
                         f"got {tuple(cos.shape)} and {tuple(sin.shape)}")
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)
    return x * cos + rotate_half(x) * sin


class SwiGLU(nn.Module):
    """``W_down(silu(x W_gate) * (x W_up))``: the gated feed-forward of PaLM and Llama (Shazeer 2020; notebook 17).

    Three matrices instead of two; Llama shrinks ``d_ff`` to about 2/3 of ``4 * d_model`` to keep
    the parameter count. The gate decides, feature by feature, how much of ``x W_up`` passes.
    """

    def __init__(self, d_model, d_ff, dropout=0.0, bias=False):
        super().__init__()
        require_positive_int("d_model", d_model)
        require_positive_int("d_ff", d_ff)
        self.w_gate = nn.Linear(d_model, d_ff, bias=bias)
        self.w_up = nn.Linear(d_model, d_ff, bias=bias)
        self.w_down = nn.Linear(d_ff, d_model, bias=bias)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x):  # (batch, T, d_model) -> (batch, T, d_model)
        return self.dropout(self.w_down(F.silu(self.w_gate(x)) * self.w_up(x)))


def repeat_kv(x, n_rep):
    """``(batch, kv_heads, T, head_dim) -> (batch, kv_heads * n_rep, T, head_dim)``: each key/value head
    repeated for the ``n_rep`` query heads of its group (grouped-query attention, notebook 17).

    Head ``h`` of the result is head ``h // n_rep`` of ``x``: query heads 0..n_rep-1 share the
    first key/value head, and so on (the order Llama and Hugging Face use).
    """
    require_tensor("x", x, dim=4)
    require_positive_int("n_rep", n_rep)
    if n_rep == 1:
        return x
    batch, kv_heads, T, head_dim = x.shape
    return x[:, :, None].expand(batch, kv_heads, n_rep, T, head_dim).reshape(batch, kv_heads * n_rep, T, head_dim)
