# %% [markdown]
# # 01 · Scaled dot-product attention
#
# **Goal.** Build the one operation every GPT is made of, check it against PyTorch's own
# implementation, and look at what it does on a real sentence.
#
# **You will build** `scaled_dot_product_attention(q, k, v, mask=None) -> (output, weights)`,
# the function `course_lib.attention` keeps for the rest of the course.
#
# **Prerequisites.** Matrix multiplication and softmax. Nothing else.

# %%
import math

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import course_lib
from course_lib import checks
from course_lib.data import load_sentences
from course_lib.plotting import plot_attention

course_lib.seed_everything(0)
torch.set_printoptions(precision=4, sci_mode=False)

# %% [markdown]
# ## 1. The idea: a soft dictionary look-up
#
# A Python `dict` answers a query with the value whose key *equals* the query. Attention answers a
# query with a *blend* of all the values, weighted by how well each key *matches* the query.
#
# - a **query** $q$ says what a position is looking for,
# - a **key** $k_j$ says what position $j$ offers,
# - a **value** $v_j$ is what position $j$ hands over if chosen.
#
# Match is measured by the dot product $q \cdot k_j$; softmax turns the scores into weights that are
# positive and sum to 1; the output is the weighted sum of the values. For all queries at once:
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}}\right) V$$
#
# with shapes $Q: (T_q, d_k)$, $K: (T_k, d_k)$, $V: (T_k, d_v)$ and output $(T_q, d_v)$.

# %% [markdown]
# ## 2. Build it step by step
#
# Three queries, four keys and values, small enough to read.

# %%
T_q, T_k, d_k, d_v = 3, 4, 8, 2
q = torch.randn(T_q, d_k)  # (T_q, d_k)
k = torch.randn(T_k, d_k)  # (T_k, d_k)
v = torch.randn(T_k, d_v)  # (T_k, d_v)

scores = q @ k.T / math.sqrt(d_k)  # (T_q, T_k): Q K^T / sqrt(d_k)
weights = torch.softmax(scores, dim=-1)  # (T_q, T_k): each row sums to 1
output = weights @ v  # (T_q, d_v): a blend of the value rows
print("scores ", tuple(scores.shape))
print("weights", tuple(weights.shape), "row sums:", weights.sum(dim=-1))
print("output ", tuple(output.shape))

# %% [markdown]
# Softmax runs over the **last** axis, the keys: for each query, the weights over the keys sum to 1.
# Running it over the queries (`dim=0`) is a classic bug; exercise 3 below is about it.

# %% [markdown]
# ## 3. Why divide by $\sqrt{d_k}$?
#
# If the entries of $q$ and $k$ are independent with mean 0 and variance 1, then $q\cdot k$ is a
# sum of $d_k$ such products and has variance $d_k$. With $d_k = 512$ the scores are spread over
# roughly $\pm 45$; softmax of such numbers is almost one-hot, and its gradient almost zero:
# learning stalls. Dividing by $\sqrt{d_k}$ brings the variance back to 1, whatever $d_k$.
# Let us measure it.

# %%
for dim in (8, 64, 512):
    a, b = torch.randn(10_000, dim), torch.randn(10_000, dim)
    dots = (a * b).sum(-1)
    print(f"d_k={dim:4d}  var(q.k)={dots.var().item():8.1f}   var(q.k/sqrt(d_k))={(dots / math.sqrt(dim)).var().item():.2f}")

# %%
dim = 512
q_demo, k_demo = torch.randn(1, dim), torch.randn(10, dim)
raw = torch.softmax(q_demo @ k_demo.T, dim=-1)[0]
scaled = torch.softmax(q_demo @ k_demo.T / math.sqrt(dim), dim=-1)[0]
fig, axes = plt.subplots(1, 2, figsize=(10, 3), sharey=True)
axes[0].bar(range(10), raw.numpy())
axes[0].set_title("softmax(q.k), d_k = 512: saturated")
axes[1].bar(range(10), scaled.numpy(), color="tab:orange")
axes[1].set_title("softmax(q.k / sqrt(d_k)): spread out")
for ax in axes:
    ax.set_xlabel("key")
axes[0].set_ylabel("weight")
plt.show()
print(f"largest weight without scaling: {raw.max().item():.3f}, with scaling: {scaled.max().item():.3f}")


# %% [markdown]
# Without the scale one key takes (nearly) everything; the gradient of softmax,
# $\partial w_i / \partial s_j = w_i(\delta_{ij} - w_j)$, is then close to zero for every key.

# %% [markdown]
# ## 4. The function, with batches and a mask
#
# Real models attend over batches and heads at once, so the function accepts any leading axes:
# `q` is `(..., T_q, d_k)`. It also takes a boolean **mask**, broadcastable to `(..., T_q, T_k)`,
# where `True` means *may attend* (PyTorch's own convention). Masked scores are filled with the
# dtype's most negative number before softmax, so they get weight 0. Notebook 04 is about masks;
# here we only make sure the function is ready for them.
#
# This is the version in `course_lib.attention` (which also checks its arguments and handles half
# precision and rows that may attend to nothing):

# %%
def scaled_dot_product_attention(q, k, v, mask=None):
    d_k = q.shape[-1]
    scores = q @ k.transpose(-2, -1) / math.sqrt(d_k)  # (..., T_q, T_k)
    if mask is not None:
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)  # masked -> ~ -inf
    weights = torch.softmax(scores, dim=-1)  # (..., T_q, T_k)
    if mask is not None:
        weights = weights.masked_fill(~mask, 0.0)  # a row with nothing allowed stays all zero
    return weights @ v, weights  # (..., T_q, d_v), (..., T_q, T_k)


# %% [markdown]
# ## 5. Check it against an independent reference
#
# PyTorch ships `torch.nn.functional.scaled_dot_product_attention`. In float64, with random masks,
# our output must match it to 1e-10. The course's library version must too.

# %% tags=["nbval-ignore-output"]
from course_lib.attention import scaled_dot_product_attention as library_version

q = torch.randn(2, 4, 5, 16, dtype=torch.float64)  # (batch, heads, T_q, d_k)
k = torch.randn(2, 4, 7, 16, dtype=torch.float64)  # (batch, heads, T_k, d_k)
v = torch.randn(2, 4, 7, 8, dtype=torch.float64)  # (batch, heads, T_k, d_v)
mask = torch.rand(2, 1, 5, 7) > 0.3  # (batch, 1, T_q, T_k), broadcast over heads
mask[..., 0] = True  # every query may see at least one key

reference = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
ours, ours_weights = scaled_dot_product_attention(q, k, v, mask)
library, _ = library_version(q, k, v, mask)
print("max |ours - PyTorch|    :", f"{(ours - reference).abs().max().item():.1e}")
print("max |library - PyTorch| :", f"{(library - reference).abs().max().item():.1e}")
assert torch.allclose(ours, reference, atol=1e-10) and torch.allclose(library, reference, atol=1e-10)
assert torch.all(ours_weights[~mask.expand_as(ours_weights)] == 0)

# %% [markdown]
# The library version also refuses bad input with a message that says what was expected, instead
# of a broadcast error three frames deep:

# %%
try:
    library_version(torch.randn(3, 4), torch.randn(5, 6), torch.randn(5, 2))
except ValueError as error:
    print("ValueError:", error)

# %% [markdown]
# ## 6. Attention over the words of a sentence
#
# A trained model learns its queries and keys. To *see* attention before any training, give each
# word a hand-made vector: how often each letter a–z occurs in it, normalised to length 1. Then
# $q \cdot k$ is high for words spelled alike, and a word attends mostly to itself and its
# look-alikes. We use the same vectors as queries, keys and values (self-attention). Dot products of
# unit vectors lie in [0, 1], too close together for a sharp picture, so we scale the queries and
# keys until each score is 8 × the cosine similarity of the two words.

# %%
sentence = load_sentences("lang.txt")[10]
words = sentence.rstrip(".").split()
print(sentence)


def letter_vector(word):
    counts = torch.zeros(26)
    for ch in word.lower():
        if "a" <= ch <= "z":
            counts[ord(ch) - ord("a")] += 1
    return counts / counts.norm()


x = torch.stack([letter_vector(w) for w in words])  # (T, 26)
sharpness = 8.0
# scores = (sharpness x)(sqrt(26) x)^T / sqrt(26) = sharpness * cosine similarity
_, word_weights = scaled_dot_product_attention(sharpness * x, math.sqrt(26) * x, x)  # (T, T)
_ = plot_attention(word_weights, words, words, title="self-attention with letter-count vectors")
plt.show()
i, j = words.index("Data"), words.index("data")
print(f"'Data' attends to 'data' with weight {word_weights[i, j].item():.3f} (uniform would be {1 / len(words):.3f})")


# %% [markdown]
# Each row is one query word; the bright cells show where it looks. "Data" and "data" find each
# other, as do words sharing many letters. A GPT's learned queries and keys do the same thing with
# features that are far more useful than spelling; notebook 07 shows a trained model's maps.

# %% [markdown]
# ## Exercises
#
# Each exercise has a cell for your answer and a test cell under it that checks it: run the test
# cell, and silence means pass; otherwise its message says what is wrong. Nothing else in the
# notebook depends on the exercises. Instructors grade them with nbgrader (see `INSTRUCTORS.md`),
# whose hidden tests check more than the visible ones.
#
# **Exercise 1 (implement, 2 points).** Write `attention_weights(q, k)` returning
# $\mathrm{softmax}(q k^\top / \sqrt{d_k})$ for inputs with any number of leading axes.

# %% solution="ex01_attention_weights"
def attention_weights(q, k):
    ### BEGIN SOLUTION
    return torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    ### END SOLUTION


# %% tests="ex01_attention_weights_tests" points=2
_g = torch.Generator().manual_seed(0)
_q = torch.randn(2, 3, generator=_g, dtype=torch.float64)  # 2 queries, d_k = 3
_k = torch.randn(4, 3, generator=_g, dtype=torch.float64)  # 4 keys
_w = attention_weights(_q, _k)
checks.expect_shape(_w, (2, 4), "attention_weights(q, k) for 2 queries and 4 keys")
assert torch.allclose(_w.sum(-1), torch.ones(2, dtype=torch.float64)), \
    "each query's weights must sum to 1 over the keys: softmax comes last, over the last axis (dim=-1)"
_s = _q @ _k.T
checks.expect_close(_w, torch.softmax(_s / math.sqrt(3), -1), "attention_weights(q, k)", atol=1e-8, mistakes={
    "divide the scores by sqrt(d_k), not by d_k": torch.softmax(_s / 3, -1),
    "divide the scores by sqrt(d_k) before the softmax": torch.softmax(_s, -1),
    "d_k is the size of each query and key, q.shape[-1], not the number of keys": torch.softmax(_s / 2, -1),
    "d_k is the size of each query and key, q.shape[-1], not the number of queries": torch.softmax(_s / math.sqrt(2), -1),
})
_qb = torch.randn(2, 5, 2, 3, generator=_g, dtype=torch.float64)  # (batch, heads, T_q, d_k)
_kb = torch.randn(2, 5, 4, 3, generator=_g, dtype=torch.float64)  # (batch, heads, T_k, d_k)
try:
    _wb = attention_weights(_qb, _kb)
except RuntimeError as _error:
    raise AssertionError("with (batch, heads) axes in front, transpose only the last two axes of k: "
                         f"k.transpose(-2, -1), not k.T ({_error})") from None
checks.expect_close(_wb, torch.softmax(_qb @ _kb.transpose(-2, -1) / math.sqrt(3), -1),
                    "attention_weights with (batch, heads) axes", atol=1e-8)
### BEGIN HIDDEN TESTS
_q, _k = torch.randn(2, 3, 6, 16, dtype=torch.float64), torch.randn(2, 3, 9, 16, dtype=torch.float64)
checks.expect_close(attention_weights(_q, _k), library_version(_q, _k, torch.randn(2, 3, 9, 1, dtype=torch.float64))[1],
                    "attention_weights(q, k) with batch and head axes", atol=1e-8)
_q32, _k32 = torch.randn(7, 5), torch.randn(3, 5)
checks.expect_close(attention_weights(_q32, _k32), torch.softmax(_q32 @ _k32.T / math.sqrt(5), -1), "float32 inputs", atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (predict, then run; 1 point).** Every key is the same vector, `k = torch.ones(4, 8)`,
# and `v` holds four different rows. Before running anything, predict the output for *any* query:
#
# - **A**: the first row of `v`
# - **B**: the mean of the rows of `v`
# - **C**: a vector of zeros
# - **D**: it depends on the query
#
# Set `prediction = "A"` (or B, C, D). Then check yourself in a new cell.

# %% solution="ex01_predict_identical_keys"
prediction = None  # your answer
### BEGIN SOLUTION
prediction = "B"
### END SOLUTION

# %% tests="ex01_predict_identical_keys_tests" points=1
checks.answered(prediction=prediction)
assert prediction in {"A", "B", "C", "D"}, 'prediction must be one of "A", "B", "C", "D"'
### BEGIN HIDDEN TESTS
_out, _ = library_version(torch.randn(2, 8), torch.ones(4, 8), torch.arange(8.0).view(4, 2))
assert torch.allclose(_out, torch.arange(8.0).view(4, 2).mean(0).expand(2, 2))
checks.expect_equal(prediction, "B", "prediction")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (spot the bug, 2 points).** This version runs without error, gives weights that sum
# to 1 *somewhere*, and is wrong. Find the bug, then write the fixed `fixed_attention`.

# %%
def buggy_attention(q, k, v):
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = torch.softmax(scores, dim=-2)
    return weights @ v, weights


# %% solution="ex01_spot_the_bug"
def fixed_attention(q, k, v):
    ### BEGIN SOLUTION
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    weights = torch.softmax(scores, dim=-1)
    return weights @ v, weights
    ### END SOLUTION


# %% tests="ex01_spot_the_bug_tests" points=2
_g = torch.Generator().manual_seed(1)
_q, _k, _v = (torch.randn(*shape, generator=_g, dtype=torch.float64) for shape in ((3, 4), (5, 4), (5, 2)))
_out, _w = fixed_attention(_q, _k, _v)
checks.expect_shape(_w, (3, 5), "fixed_attention's weights for 3 queries and 5 keys")
assert torch.allclose(_w.sum(-1), torch.ones(3, dtype=torch.float64)), \
    "each query's weights must sum to 1 over the KEYS: softmax over the last axis (dim=-1), not over the queries"
_reference = torch.softmax(_q @ _k.T / 2, -1)  # sqrt(d_k) = 2
checks.expect_close(_w, _reference, "fixed_attention's weights", atol=1e-8)
checks.expect_close(_out, _reference @ _v, "fixed_attention's output", atol=1e-8)
### BEGIN HIDDEN TESTS
_q, _k, _v = torch.randn(2, 3, 8, dtype=torch.float64), torch.randn(2, 6, 8, dtype=torch.float64), torch.randn(2, 6, 4, dtype=torch.float64)
checks.expect_close(fixed_attention(_q, _k, _v)[0], F.scaled_dot_product_attention(_q, _k, _v), "fixed_attention's output",
                    atol=1e-8)
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# - Attention is a soft look-up: $\mathrm{softmax}(QK^\top/\sqrt{d_k})\,V$, softmax over the keys.
# - Dividing by $\sqrt{d_k}$ keeps the scores' variance at 1, so softmax does not saturate.
# - Our function matches `torch.nn.functional.scaled_dot_product_attention` to 1e-10 in float64;
#   `course_lib.attention.scaled_dot_product_attention` is the version later notebooks import.
#
# **Next: [02 · Multi-head attention](02_multi_head_attention.ipynb)**: several attentions side by
# side, each with its own learned queries, keys and values.
