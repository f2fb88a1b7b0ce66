# %% [markdown]
# # 02 · Multi-head attention
#
# **Goal.** Run several attentions side by side, each with its own learned view of the input,
# build the `MultiHeadAttention` module, and prove it computes exactly what
# `torch.nn.MultiheadAttention` computes.
#
# **You will build** `MultiHeadAttention(d_model, n_heads)`, kept in `course_lib.attention`.
#
# **Builds on** notebook 01's `scaled_dot_product_attention`.

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

import course_lib
from course_lib import checks
from course_lib.attention import scaled_dot_product_attention
from course_lib.data import load_sentences
from course_lib.plotting import plot_attention_heads

course_lib.seed_everything(0)
torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# ## 1. The idea
#
# One attention produces one weighting of the positions. But a word may need several at once: the
# subject of its verb, the previous word, the last mention of a name. Multi-head attention projects
# the input into $h$ smaller query/key/value spaces, attends in each one separately, and mixes the
# results:
#
# $$\mathrm{head}_i = \mathrm{Attention}(X W^Q_i,\; X W^K_i,\; X W^V_i), \qquad
# \mathrm{MultiHead}(X) = \mathrm{Concat}(\mathrm{head}_1, \dots, \mathrm{head}_h)\, W^O$$
#
# Each head has width $d_{head} = d_{model} / h$, so all heads together cost the same as one
# full-width attention. That is why `n_heads` must divide `d_model`.

# %% [markdown]
# ## 2. Split and merge heads, shapes annotated
#
# Instead of $h$ separate small matrices, one `Linear(d_model, d_model)` computes every head's
# queries at once; a reshape then cuts the last axis into heads.

# %%
batch, T, d_model, n_heads = 2, 5, 12, 3
head_dim = d_model // n_heads
x = torch.randn(batch, T, d_model)  # (batch, T, d_model)
w_q = nn.Linear(d_model, d_model)

q = w_q(x)  # (batch, T, d_model): all heads' queries side by side
q = q.view(batch, T, n_heads, head_dim)  # (batch, T, heads, head_dim): cut the last axis
q = q.transpose(1, 2)  # (batch, heads, T, head_dim): heads become a batch axis
print("split:", tuple(q.shape))

# %% [markdown]
# With heads as a batch axis, notebook 01's function attends in every head at once. Merging undoes
# the split: move heads back next to the features, then glue them together.

# %%
merged = q.transpose(1, 2).contiguous().view(batch, T, d_model)  # (batch, T, d_model)
print("merge:", tuple(merged.shape), "  round trip exact:", torch.equal(merged, w_q(x)))


# %% [markdown]
# `contiguous()` is needed because `transpose` only changes strides; `view` needs the memory laid out
# in the new order. (Skipping the transpose and calling `view` straight away runs without error and
# scrambles positions with heads: exercise 3.)

# %% [markdown]
# ## 3. The module
#
# Four linear maps ($W^Q, W^K, W^V, W^O$), the split, notebook 01's attention, the merge.
# `context` lets the same module do cross-attention (keys and values from another sequence), which
# an encoder-decoder Transformer needs; a GPT only uses self-attention.

# %%
class MultiHeadAttention(nn.Module):
    def __init__(self, d_model, n_heads):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"n_heads={n_heads} does not divide d_model={d_model}")
        self.d_model, self.n_heads, self.head_dim = d_model, n_heads, d_model // n_heads
        self.w_q = nn.Linear(d_model, d_model)
        self.w_k = nn.Linear(d_model, d_model)
        self.w_v = nn.Linear(d_model, d_model)
        self.w_o = nn.Linear(d_model, d_model)

    def split_heads(self, t):  # (batch, T, d_model) -> (batch, heads, T, head_dim)
        return t.view(t.shape[0], t.shape[1], self.n_heads, self.head_dim).transpose(1, 2)

    def merge_heads(self, t):  # (batch, heads, T, head_dim) -> (batch, T, d_model)
        return t.transpose(1, 2).contiguous().view(t.shape[0], t.shape[2], self.d_model)

    def forward(self, x, context=None, mask=None):
        context = x if context is None else context
        q = self.split_heads(self.w_q(x))  # (batch, heads, T_q, head_dim)
        k = self.split_heads(self.w_k(context))  # (batch, heads, T_k, head_dim)
        v = self.split_heads(self.w_v(context))  # (batch, heads, T_k, head_dim)
        out, self.attention_weights = scaled_dot_product_attention(q, k, v, mask)
        return self.w_o(self.merge_heads(out))  # (batch, T_q, d_model)


mha = MultiHeadAttention(d_model=12, n_heads=3)
print(tuple(mha(x).shape), tuple(mha.attention_weights.shape))

# %% [markdown]
# ## 4. Check against `torch.nn.MultiheadAttention`
#
# PyTorch's module stores $W^Q, W^K, W^V$ stacked in one `in_proj_weight` of shape
# `(3 * d_model, d_model)`. Copy our weights in, run both in float64, compare. PyTorch's
# `attn_mask` uses the *opposite* convention (True = **not** allowed), so we pass `~mask`.

# %% tags=["nbval-ignore-output"]
from course_lib.attention import MultiHeadAttention as LibraryMHA

ours = MultiHeadAttention(32, 4).double()
library = LibraryMHA(32, 4).double()
library.record_weights = True  # keep its weights to compare them too (section 5 says why this is asked for)
library.load_state_dict(ours.state_dict())  # same parameter names
reference = nn.MultiheadAttention(32, 4, batch_first=True, dtype=torch.float64)
with torch.no_grad():
    reference.in_proj_weight.copy_(torch.cat([ours.w_q.weight, ours.w_k.weight, ours.w_v.weight]))
    reference.in_proj_bias.copy_(torch.cat([ours.w_q.bias, ours.w_k.bias, ours.w_v.bias]))
    reference.out_proj.weight.copy_(ours.w_o.weight)
    reference.out_proj.bias.copy_(ours.w_o.bias)

x = torch.randn(3, 7, 32, dtype=torch.float64)  # (batch, T, d_model)
mask = torch.ones(7, 7, dtype=torch.bool).tril()  # a causal mask (notebook 04)
ref_out, ref_weights = reference(x, x, x, attn_mask=~mask, average_attn_weights=False)
for name, module in [("ours", ours), ("library", library)]:
    out = module(x, mask=mask)
    print(f"{name:8s} max |out - PyTorch| = {(out - ref_out).abs().max().item():.1e}   "
          f"max |weights - PyTorch| = {(module.attention_weights - ref_weights).abs().max().item():.1e}")
    assert torch.allclose(out, ref_out, atol=1e-6) and torch.allclose(module.attention_weights, ref_weights, atol=1e-6)

# %% [markdown]
# The library version adds dropout, `bias=False`, argument checks, and keeps the weights detached on
# `.attention_weights`. A width that the heads do not divide is refused up front:

# %%
try:
    LibraryMHA(d_model=64, n_heads=5)
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## 5. What the heads look at
#
# An untrained module on a sentence: each word gets a random embedding, and each head, with its own
# random projections, already spreads its attention differently. Training (notebook 07) turns these
# into useful patterns.
#
# The library's module computes attention with PyTorch's fused kernel, which is faster but never
# builds the weights (notebook 12 explains why). To draw them, run it inside
# `recording_attention(...)`: the course's own `scaled_dot_product_attention` then runs and keeps
# them on `.attention_weights`. Same output either way.

# %%
from course_lib.attention import recording_attention

words = load_sentences("lang.txt")[0].rstrip(".").split()
embed = nn.Embedding(len(words), 32)
with torch.no_grad(), recording_attention(LibraryMHA(32, 4).eval()) as mha4:
    tokens = embed(torch.arange(len(words))).unsqueeze(0)  # (1, T, 32)
    _ = mha4(tokens * 3)  # larger inputs give sharper maps
fig = plot_attention_heads(mha4.attention_weights, words, title="4 untrained heads, one sentence")
plt.show()
print("weights shape (batch, heads, T_q, T_k):", tuple(mha4.attention_weights.shape))


# %% [markdown]
# ## Exercises
#
# Each test cell checks the exercise just above it, and nothing else in the notebook uses the
# exercises: skip one and the rest still runs. Silence means pass; otherwise the message says what
# is wrong.
#
# **Exercise 1 (implement, 2 points).** Write `split_heads(t, n_heads)`:
# `(batch, T, d_model) -> (batch, n_heads, T, d_model // n_heads)`, where head `h` holds features
# `h * head_dim : (h + 1) * head_dim`.

# %% solution="ex02_split_heads"
def split_heads(t, n_heads):
    ### BEGIN SOLUTION
    batch, T, d_model = t.shape
    return t.view(batch, T, n_heads, d_model // n_heads).transpose(1, 2)
    ### END SOLUTION


# %% tests="ex02_split_heads_tests" points=2
_t = torch.arange(2 * 3 * 8.0).view(2, 3, 8)  # (batch 2, T 3, d_model 8): each number says where it came from
_s = split_heads(_t, 4)
checks.expect_shape(_s, (2, 4, 3, 2), "split_heads(t, 4) for t of shape (2, 3, 8)")
checks.expect_close(_s[0, 1, 0], _t[0, 0, 2:4], "head 1 at position 0 (it should hold features 2:4)", atol=0, mistakes={
    "view as (batch, T, heads, head_dim) first, then swap T and heads: reshaping straight to "
    "(batch, heads, T, head_dim) mixes positions into heads": _t.reshape(2, 4, 3, 2)[0, 1, 0],
    "head h holds the consecutive features h * head_dim : (h + 1) * head_dim, not every n_heads-th one": _t[0, 0, 1::4],
})
for _h in range(4):
    checks.expect_close(_s[:, _h], _t[..., 2 * _h: 2 * _h + 2], f"head {_h}", atol=0)
### BEGIN HIDDEN TESTS
_t2 = torch.randn(3, 5, 12, generator=checks.grading_generator("ex02_split_heads"))
checks.expect_close(split_heads(_t2, 3), LibraryMHA(12, 3).split_heads(_t2), "split_heads(t, 3) on (3, 5, 12)", atol=0)
checks.expect_close(split_heads(_t2, 6), _t2.view(3, 5, 6, 2).transpose(1, 2), "split_heads(t, 6) on (3, 5, 12)", atol=0)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (predict, then run; 1 point).** How many trainable parameters does
# `course_lib.attention.MultiHeadAttention(d_model=64, n_heads=4)` have? Work it out on paper from
# the four `Linear` layers, set `predicted_parameters`, then check with
# `sum(p.numel() for p in module.parameters())`. Does the answer depend on `n_heads`?

# %% solution="ex02_predict_parameters"
predicted_parameters = None  # your answer
### BEGIN SOLUTION
predicted_parameters = 4 * (64 * 64 + 64)
### END SOLUTION

# %% tests="ex02_predict_parameters_tests" points=1
checks.answered(predicted_parameters=predicted_parameters)
assert isinstance(predicted_parameters, int), "predicted_parameters must be an int"
### BEGIN HIDDEN TESTS
assert predicted_parameters == sum(p.numel() for p in LibraryMHA(64, 4).parameters()) == 16640
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (spot the bug, 2 points).** This merge gives the right shape and the wrong numbers.
# What is the cause? Set `merge_bug_cause` to one letter, then write `fixed_merge_heads(t)` for any
# `(batch, heads, T, head_dim)` tensor.
#
# - **A**: `reshape` copies the data, so the result no longer shares memory with `t`
# - **B**: `t` is laid out as (heads, T) in memory; reshaping without first moving the heads next to
#   `head_dim` reads the numbers in that order, so positions and heads get mixed
# - **C**: `heads * head_dim` is not `d_model`

# %%
def buggy_merge_heads(t):  # (batch, heads, T, head_dim) -> (batch, T, d_model)
    batch, heads, T, head_dim = t.shape
    return t.reshape(batch, T, heads * head_dim)


# %% solution="ex02_spot_the_bug"
merge_bug_cause = None  # your answer: "A", "B" or "C"
### BEGIN SOLUTION
merge_bug_cause = "B"
### END SOLUTION


def fixed_merge_heads(t):
    ### BEGIN SOLUTION
    # reshape without transposing reads the heads' blocks in memory order, so "position 1" gets
    # the second half of head 0's rows: heads and positions are mixed up.
    batch, heads, T, head_dim = t.shape
    return t.transpose(1, 2).reshape(batch, T, heads * head_dim)
    ### END SOLUTION


# %% tests="ex02_spot_the_bug_tests" points=2
checks.answered(merge_bug_cause=merge_bug_cause)
assert merge_bug_cause in {"A", "B", "C"}, 'merge_bug_cause must be "A", "B" or "C"'
_x = torch.randn(2, 5, 12)
_heads = _x.view(2, 5, 3, 4).transpose(1, 2)  # (2, 3, 5, 4): x split into 3 heads, as split_heads gives it
checks.expect_close(fixed_merge_heads(_heads), _x, "fixed_merge_heads(x split into heads): merging must give x back", atol=0)
_plain = torch.randn(2, 3, 5, 4)  # a (batch, heads, T, head_dim) tensor laid out in that order in memory
try:
    _merged = fixed_merge_heads(_plain)
except RuntimeError as _error:
    raise AssertionError("fixed_merge_heads must work on any (batch, heads, T, head_dim) tensor, not only on a transposed "
                         f"view: after transpose, use reshape (or .contiguous().view) ({_error})") from None
checks.expect_close(_merged, _plain.transpose(1, 2).reshape(2, 5, 12), "fixed_merge_heads of a plain tensor", atol=0)
### BEGIN HIDDEN TESTS
checks.expect_equal(merge_bug_cause, "B", "merge_bug_cause")
assert torch.equal(fixed_merge_heads(LibraryMHA(12, 3).split_heads(_x)), _x)
_odd = torch.randn(3, 2, 7, 5)
checks.expect_close(fixed_merge_heads(_odd), _odd.transpose(1, 2).reshape(3, 7, 10), "fixed_merge_heads on (3, 2, 7, 5)", atol=0)
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# - Multi-head attention = $h$ attentions of width $d_{model}/h$ side by side, then one output map.
# - Split: `view(batch, T, heads, head_dim).transpose(1, 2)`; merge: the reverse, with `contiguous()`.
# - With the same weights, our module matches `torch.nn.MultiheadAttention` to 1e-6 in float64.
#
# **Next: [03 · Sinusoidal position tables](03_sinusoidal_position_tables.ipynb)**: attention
# ignores word order; position tables put it back.
