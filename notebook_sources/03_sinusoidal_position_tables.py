# %% [markdown]
# # 03 · Sinusoidal position tables
#
# **Goal.** Give attention a sense of word order. Build the sinusoidal position table of
# *Attention Is All You Need* from its formula, see why it works (a shift in position is a rotation),
# and compare it with learned position embeddings.
#
# **You will build** `sinusoidal_table(n_positions, d_model)`, kept in `course_lib.positional`.

# %%
import math

import matplotlib.pyplot as plt
import torch
from torch import nn

import course_lib
from course_lib import checks
from course_lib.attention import scaled_dot_product_attention
from course_lib.plotting import plot_attention

course_lib.seed_everything(0)
torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# ## 1. Attention does not know word order
#
# Shuffle the input rows and self-attention's output rows are shuffled the same way, nothing more:
# "dog bites man" and "man bites dog" look alike to it. Let us check that claim.

# %%
x = torch.randn(5, 8, dtype=torch.float64)  # (T, d): five "words"
perm = torch.tensor([3, 0, 4, 1, 2])
out, _ = scaled_dot_product_attention(x, x, x)
out_shuffled, _ = scaled_dot_product_attention(x[perm], x[perm], x[perm])
print("shuffling the input only shuffles the output:", torch.allclose(out[perm], out_shuffled))


# %% [markdown]
# So we add to each token's embedding a vector that depends on its position. The sinusoidal table:
#
# $$PE_{(pos,\,2i)} = \sin\!\left(\frac{pos}{10000^{2i/d_{model}}}\right), \qquad
# PE_{(pos,\,2i+1)} = \cos\!\left(\frac{pos}{10000^{2i/d_{model}}}\right)$$
#
# Column pair $i$ is a clock hand turning at angular speed $\omega_i = 10000^{-2i/d_{model}}$: fast
# for the first pairs, very slow for the last. Together the hands give every position a distinct
# reading.

# %% [markdown]
# ## 2. Build it, shapes annotated

# %%
def sinusoidal_table(n_positions, d_model):
    pos = torch.arange(n_positions, dtype=torch.float64).unsqueeze(1)  # (n_positions, 1)
    two_i = torch.arange(0, d_model, 2, dtype=torch.float64)  # (d_model/2,): 0, 2, 4, ...
    angle = pos / 10000 ** (two_i / d_model)  # (n_positions, d_model/2) by broadcasting
    table = torch.zeros(n_positions, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)  # even columns 2i
    table[:, 1::2] = torch.cos(angle)  # odd columns 2i+1
    return table


pe = sinusoidal_table(64, 32)
print(tuple(pe.shape))

# %% [markdown]
# ## 3. Check it against the formula, one entry at a time
#
# A brute-force double loop over positions and columns, written straight from the formula, and
# the library version (which also handles odd widths and other dtypes):

# %%
from course_lib.positional import sinusoidal_table as library_table

brute = torch.zeros(64, 32, dtype=torch.float64)
for p in range(64):
    for j in range(32):
        rate = 10000 ** (2 * (j // 2) / 32)
        brute[p, j] = math.sin(p / rate) if j % 2 == 0 else math.cos(p / rate)
print("ours == brute force   :", torch.allclose(pe, brute, atol=1e-12))
print("library == brute force:", torch.allclose(library_table(64, 32, dtype=torch.float64), brute, atol=1e-12))

# %% [markdown]
# ## 4. What it looks like

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
plot_attention(pe, ax=axes[0], title="PE (positions x columns)", cmap="RdBu", vmin=-1, vmax=1)
axes[0].set_xlabel("column (2i: sin, 2i+1: cos)")
axes[0].set_ylabel("position")
for j in (0, 2, 8, 16):
    axes[1].plot(pe[:, j], label=f"column {j}")
axes[1].set_xlabel("position")
axes[1].set_title("low columns turn fast, high columns slowly")
axes[1].legend()
fig.tight_layout()
plt.show()


# %% [markdown]
# ## 5. A shift in position is a rotation
#
# Take column pair $i$ at position $p$: $(\sin p\omega_i, \cos p\omega_i)$. At position $p+k$ the
# angle-sum formulas give
#
# $$\begin{pmatrix}\sin (p+k)\omega \\ \cos (p+k)\omega\end{pmatrix} =
# \begin{pmatrix}\cos k\omega & \sin k\omega \\ -\sin k\omega & \cos k\omega\end{pmatrix}
# \begin{pmatrix}\sin p\omega \\ \cos p\omega\end{pmatrix}$$
#
# The matrix depends on the offset $k$ only, not on $p$. So one fixed linear map $M_k$ (a rotation in
# each column pair) takes $PE_p$ to $PE_{p+k}$ for *every* $p$: a model can learn "look 3 words back"
# once and use it everywhere. Build $M_k$ and check it on all positions:

# %%
def shift_matrix(k, d_model):
    m = torch.zeros(d_model, d_model, dtype=torch.float64)
    for i in range(d_model // 2):
        w = 1 / 10000 ** (2 * i / d_model)
        c, s = math.cos(k * w), math.sin(k * w)
        m[2 * i: 2 * i + 2, 2 * i: 2 * i + 2] = torch.tensor([[c, s], [-s, c]], dtype=torch.float64)
    return m


k = 3
M = shift_matrix(k, 32)
print(f"M_{k} @ PE[p] == PE[p+{k}] for every p:", torch.allclose(pe[:-k] @ M.T, pe[k:], atol=1e-10))
print("M is a rotation (M M^T = I):", torch.allclose(M @ M.T, torch.eye(32, dtype=torch.float64)))

# %% [markdown]
# ## 6. Similarity falls off with distance
#
# Because each pair is a rotation, $PE_p \cdot PE_q = \sum_i \cos((p-q)\omega_i)$ depends only on
# the distance $p - q$, and is largest at distance 0.

# %%
pe_long = library_table(100, 64, dtype=torch.float64)
similarity = pe_long @ pe_long.T  # (100, 100)
fig, axes = plt.subplots(1, 2, figsize=(12, 4))
plot_attention(similarity, ax=axes[0], title="PE_p . PE_q", cmap="magma")
axes[0].set_xlabel("position q")
axes[0].set_ylabel("position p")
axes[1].plot(similarity[50].numpy())
axes[1].axvline(50, color="grey", linestyle=":")
axes[1].set_xlabel("position q")
axes[1].set_title("similarity of position 50 with every position")
plt.show()
print("PE_50 . PE_q at distance 0, 1, 5, 20: "
      + ", ".join(f"{similarity[50, 50 + d].item():.2f}" for d in (0, 1, 5, 20)))

# %% [markdown]
# ## 7. Learned position embeddings
#
# GPT-2 and the seed's code learn positions instead: `nn.Embedding(context_length, d_model)`, one
# trainable row per position.
#
# | | sinusoidal | learned |
# |---|---|---|
# | parameters | none | `context_length × d_model` |
# | positions beyond training length | defined (though models rarely use them well) | do not exist: an index error |
# | structure | shift = rotation, built in | whatever training finds |
#
# Both work well at GPT scale; the course's `GPTConfig` lets you choose (notebook 06).

# %%
learned = nn.Embedding(16, 32)  # 16 positions
try:
    learned(torch.tensor([16]))
except IndexError as error:
    print("IndexError:", str(error)[:60])
print("sinusoidal table for 1000 positions:", tuple(library_table(1000, 32).shape))


# %% [markdown]
# ## Exercises
#
# Each test cell checks the exercise just above it, and nothing else in the notebook uses the
# exercises: skip one and the rest still runs. Silence means pass; otherwise the message says what
# is wrong.
#
# **Exercise 1 (implement, 2 points).** Write `angular_speeds(d_model)`, the vector of
# $\omega_i = 1/10000^{2i/d_{model}}$ for $i = 0, \dots, d_{model}/2 - 1$ (float64).

# %% solution="ex03_angular_speeds"
def angular_speeds(d_model):
    ### BEGIN SOLUTION
    return 1.0 / 10000 ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    ### END SOLUTION


# %% tests="ex03_angular_speeds_tests" points=2
_w8 = angular_speeds(8)
checks.expect_shape(_w8, (4,), "angular_speeds(8): one speed per sin/cos pair, d_model / 2 of them")
assert _w8.dtype == torch.float64, f"return float64, as asked (got {_w8.dtype})"
checks.expect_close(_w8, torch.tensor([1.0, 0.1, 0.01, 0.001], dtype=torch.float64), "angular_speeds(8)", atol=1e-12, mistakes={
    "the exponent is 2i / d_model for i = 0 .. d_model/2 - 1, i.e. torch.arange(0, d_model, 2) / d_model":
        1 / 10000 ** (torch.arange(4, dtype=torch.float64) / 8),
    "the speeds are 1 / 10000^(2i / d_model), not 10000^(2i / d_model)": 10000 ** (torch.arange(0, 8, 2, dtype=torch.float64) / 8),
})
### BEGIN HIDDEN TESTS
_w = angular_speeds(32)
checks.expect_close(torch.sin(5 * _w), library_table(6, 32, dtype=torch.float64)[5, 0::2], "sin(5 * angular_speeds(32))", atol=1e-12)
checks.expect_shape(angular_speeds(2), (1,), "angular_speeds(2)")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (predict, then run; 1 point).** Without running code: what is the sum of the row
# `PE[0]` for `d_model = 16`? Set `predicted_row_sum`, then check.

# %% solution="ex03_predict_row0"
predicted_row_sum = None  # your answer
### BEGIN SOLUTION
predicted_row_sum = 8.0  # sin(0) = 0 in the 8 even columns, cos(0) = 1 in the 8 odd ones
### END SOLUTION

# %% tests="ex03_predict_row0_tests" points=1
checks.answered(predicted_row_sum=predicted_row_sum)
assert isinstance(predicted_row_sum, (int, float)), "predicted_row_sum must be a number"
### BEGIN HIDDEN TESTS
assert abs(predicted_row_sum - library_table(1, 16).sum().item()) < 1e-6
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (spot the bug, 2 points).** This table has the right shape, values in [-1, 1], and
# looks fine in a heatmap. Why does the rotation property of section 5 fail for it? Write
# `fixed_table`.

# %%
def buggy_table(n_positions, d_model):
    pos = torch.arange(n_positions, dtype=torch.float64).unsqueeze(1)
    angle = pos / 10000 ** (torch.arange(d_model, dtype=torch.float64) / d_model)  # (n, d_model)
    table = torch.zeros(n_positions, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle[:, 0::2])
    table[:, 1::2] = torch.cos(angle[:, 1::2])
    return table


# %% solution="ex03_spot_the_bug"
def fixed_table(n_positions, d_model):
    ### BEGIN SOLUTION
    # Column 2i+1 must use the SAME speed as column 2i (exponent 2i/d_model, i.e. j // 2), or a
    # sin/cos pair is no longer one clock hand and a shift is no longer a rotation.
    pos = torch.arange(n_positions, dtype=torch.float64).unsqueeze(1)
    angle = pos / 10000 ** (torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    table = torch.zeros(n_positions, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angle)
    table[:, 1::2] = torch.cos(angle)
    return table
    ### END SOLUTION


# %% tests="ex03_spot_the_bug_tests" points=2
_t = fixed_table(10, 8)
checks.expect_shape(_t, (10, 8), "fixed_table(10, 8)")
checks.expect_close(_t[3, 1], math.cos(3.0), "column 1 (the cosine of pair 0, speed 1) at position 3", atol=1e-6, mistakes={
    "columns 2i and 2i+1 must turn at the SAME speed: the cosine in column 2i+1 uses the exponent 2i / d_model, "
    "like its sine, so the pair is one clock hand": math.cos(3 / 10000 ** (1 / 8)),
})
checks.expect_close(_t, library_table(10, 8, dtype=torch.float64), "fixed_table(10, 8)", atol=1e-6)
### BEGIN HIDDEN TESTS
checks.expect_close(fixed_table(50, 16), library_table(50, 16, dtype=torch.float64), "fixed_table(50, 16)", atol=1e-6)
assert torch.allclose(fixed_table(50, 16).double()[:-2] @ shift_matrix(2, 16).T, fixed_table(50, 16).double()[2:], atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# - Attention alone ignores order; adding $PE_{pos}$ to each embedding restores it.
# - Each (sin, cos) column pair is a clock hand with its own speed; shifting by $k$ positions rotates
#   every hand by a fixed angle, so relative offsets are linear maps.
# - Learned embeddings are the alternative: flexible, but limited to the trained length.
#
# **Next: [04 · Causal and padding masks](04_causal_masks.ipynb)**: stop a language model from
# reading the future, and from attending to padding.
