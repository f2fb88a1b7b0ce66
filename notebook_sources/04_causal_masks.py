# %% [markdown]
# # 04 · Causal and padding masks
#
# **Goal.** A language model predicts each next word from the words *before* it, so position $t$
# must never see positions after $t$. Build the causal mask, the padding mask, combine them, prove
# by perturbation that the future cannot leak, and learn the classic mask bugs.
#
# **You will build** `causal_mask(seq_len)` and `padding_mask(token_ids, pad_id)`, kept in
# `course_lib.masks`. Convention, as in PyTorch: `True` means **may attend**.

# %%
import matplotlib.pyplot as plt
import torch

import course_lib
from course_lib import checks
from course_lib.attention import MultiHeadAttention, scaled_dot_product_attention
from course_lib.plotting import plot_attention

course_lib.seed_everything(0)
torch.set_printoptions(precision=4, sci_mode=False)


# %% [markdown]
# ## 1. The causal mask
#
# Query $t$ may attend to keys $0, \dots, t$: true on and below the diagonal, a lower triangle.
#
# $$\text{mask}_{t,s} = [\, s \le t \,]$$

# %%
def causal_mask(seq_len):
    return torch.ones(seq_len, seq_len, dtype=torch.bool).tril()  # (T, T)


print(causal_mask(5).int())


# %% [markdown]
# ## 2. The padding mask
#
# Sentences in a batch have different lengths, so short ones are padded with a `<pad>` id (here 0).
# No query should take information from a padding key. The mask has shape `(batch, 1, 1, T)`: the
# two 1-axes broadcast over heads and queries.

# %%
def padding_mask(token_ids, pad_id):
    return (token_ids != pad_id)[:, None, None, :]  # (batch, 1, 1, T)


token_ids = torch.tensor([[11, 12, 13, 14, 15],
                          [21, 22, 23, 0, 0]])  # (batch=2, T=5); the second sentence is padded
combined = causal_mask(5) & padding_mask(token_ids, pad_id=0)  # (2, 1, 5, 5) by broadcasting
print("combined mask shape:", tuple(combined.shape))

fig, axes = plt.subplots(1, 3, figsize=(14, 3.6))
labels = ["w0", "w1", "w2", "<pad>", "<pad>"]
plot_attention(causal_mask(5), labels, labels, ax=axes[0], title="causal", colorbar=False)
plot_attention(padding_mask(token_ids, 0)[1, 0].expand(5, 5), labels, labels, ax=axes[1], title="padding (sentence 2)", colorbar=False)
plot_attention(combined[1, 0], labels, labels, ax=axes[2], title="causal & padding", colorbar=False)
plt.show()

# %% [markdown]
# The library versions must agree with these and with `torch.tril`:

# %%
from course_lib import masks

assert torch.equal(masks.causal_mask(7), torch.tril(torch.ones(7, 7)).bool())
assert torch.equal(masks.causal_mask(5) & masks.padding_mask(token_ids, 0), combined)
print("library masks agree")

# %% [markdown]
# ## 3. What the mask does to an attention map
#
# The same scores with and without the causal mask: masked weights are exactly 0, and every row still
# sums to 1 over what it may see.

# %%
x = torch.randn(1, 6, 16)  # (batch, T, d)
_, free = scaled_dot_product_attention(x, x, x)
_, causal = scaled_dot_product_attention(x, x, x, masks.causal_mask(6))
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
plot_attention(free, ax=axes[0], title="no mask", vmin=0, vmax=1)
plot_attention(causal, ax=axes[1], title="causal mask", vmin=0, vmax=1)
plt.show()
print("row sums with the mask:", causal.sum(-1))

# %% [markdown]
# ## 4. Proof by perturbation: the future cannot leak
#
# Change the input at position 4. With the causal mask, outputs at positions 0–3 must not move at
# all; positions 4 and 5 may.

# %%
mha = MultiHeadAttention(16, 4).double().eval()
x = torch.randn(1, 6, 16, dtype=torch.float64)
x_changed = x.clone()
x_changed[0, 4] += torch.randn(16, dtype=torch.float64)
with torch.no_grad():
    change = (mha(x, mask=masks.causal_mask(6)) - mha(x_changed, mask=masks.causal_mask(6))).abs().amax(-1)[0]
    change_no_mask = (mha(x) - mha(x_changed)).abs().amax(-1)[0]
print("positions whose output changed, with causal mask   :", (change > 0).nonzero().flatten().tolist())
print("positions whose output changed, without any mask   :", (change_no_mask > 0).nonzero().flatten().tolist())
assert torch.all(change[:4] == 0) and torch.all(change[4:] > 0)

# %% [markdown]
# ## 5. Spot the bug: three classic mask mistakes
#
# **(a) `uint8` masks.** Older tutorials (including the code this course grew from) build masks with
# `.byte()`. Current PyTorch refuses them, and `course_lib` says what to do instead:

# %%
scores = torch.randn(3, 3)
old_style = torch.triu(torch.ones(3, 3), diagonal=1).byte()  # 1 = "masked": the opposite convention!
try:
    scores.masked_fill(old_style, float("-inf"))
except RuntimeError as error:
    print("PyTorch   :", error)
try:
    scaled_dot_product_attention(torch.randn(3, 4), torch.randn(3, 4), torch.randn(3, 4), old_style)
except TypeError as error:
    print("course_lib:", error)

# %% [markdown]
# Converting with `.bool()` is not enough: that old mask marks the positions to *hide* with 1, while
# `True` means *may attend* here. The right conversion is `~old_style.bool()`.
#
# **(b) A `-1e9` fill in half precision.** `-1e9` is far outside float16's range (about ±65504):

# %%
print("torch.tensor(-1e9).half() =", torch.tensor(-1e9).half())
try:
    torch.zeros(2, dtype=torch.float16).masked_fill(torch.tensor([True, False]), -1e9)
except RuntimeError as error:
    print("masked_fill(-1e9) in float16:", error)
additive = torch.tensor([[0.0, -1e9, 0.0], [-1e9, -1e9, -1e9]]).half()  # second row: nothing allowed
print("softmax with an additive -1e9 mask in float16:\n", torch.softmax(torch.zeros(2, 3).half() + additive, -1))

# %% [markdown]
# The fully masked row became `-inf` everywhere, and softmax of all `-inf` is `0/0 = NaN`, which then
# spreads through every later layer. `course_lib` fills with the dtype's own minimum and zeroes such
# rows afterwards:

# %%
q = torch.randn(2, 4).half()
mask = torch.tensor([[True, False, True], [False, False, False]])
out, weights = scaled_dot_product_attention(q, torch.randn(3, 4).half(), torch.randn(3, 4).half(), mask)
print("course_lib weights in float16:\n", weights)

# %% [markdown]
# **(c) A decoder that forgets the padding mask.** With padding on the *left* (common when batching
# prompts for generation), the real words come after the pads, so the causal mask alone lets them
# attend to padding. Their outputs then depend on how much padding the batch needed:

# %%
mha = MultiHeadAttention(16, 2).eval()
embed = torch.nn.Embedding(30, 16)
sentence = torch.tensor([[5, 6, 7]])
padded = torch.tensor([[0, 0, 5, 6, 7]])  # the same sentence, left-padded to length 5
with torch.no_grad():
    alone = mha(embed(sentence), mask=masks.causal_mask(3))
    forgot = mha(embed(padded), mask=masks.causal_mask(5))
    right = mha(embed(padded), mask=masks.causal_mask(5) & masks.padding_mask(padded, 0))
print("without padding mask, same as unpadded:", torch.allclose(forgot[:, 2:], alone, atol=1e-6))
print("with padding mask,    same as unpadded:", torch.allclose(right[:, 2:], alone, atol=1e-6))


# %% [markdown]
# With right padding the causal mask happens to hide the pads from real words, but the pad
# *positions* still produce predictions; those must be kept out of the loss (notebook 07).

# %% [markdown]
# ## Exercises
#
# Each test cell checks the exercise just above it, and nothing else in the notebook uses the
# exercises: skip one and the rest still runs. Silence means pass; otherwise the message says what
# is wrong.
#
# **Exercise 1 (implement, 2 points).** Write `sliding_window_mask(seq_len, window)`: causal, and
# query $t$ may only see the last `window` positions $t-\text{window}+1, \dots, t$ (used by
# long-context models such as Mistral).

# %% solution="ex04_sliding_window"
def sliding_window_mask(seq_len, window):
    ### BEGIN SOLUTION
    ones = torch.ones(seq_len, seq_len, dtype=torch.bool)
    return ones.tril() & ones.triu(-(window - 1))
    ### END SOLUTION


# %% tests="ex04_sliding_window_tests" points=2
_m = sliding_window_mask(5, 2)
checks.expect_shape(_m, (5, 5), "sliding_window_mask(5, 2)")
assert _m.dtype == torch.bool, f"return a boolean mask (True = may attend), got {_m.dtype}"
_expected = torch.tensor([[(s <= t) and (t - s < 2) for s in range(5)] for t in range(5)])
checks.expect_close(_m, _expected, "sliding_window_mask(5, 2)", atol=0, mistakes={
    "the mask must stay causal: query t never sees a later key (nothing above the diagonal)":
        torch.tensor([[abs(t - s) < 2 for s in range(5)] for t in range(5)]),
    "query t sees window positions, t - window + 1 .. t (itself included), not window + 1":
        torch.tensor([[(s <= t) and (t - s <= 2) for s in range(5)] for t in range(5)]),
    "query t sees itself: the diagonal belongs to the window": torch.tensor([[(s < t) and (t - s <= 2) for s in range(5)] for t in range(5)]),
    "True means 'may attend': this mask marks the positions to hide": ~_expected,
})
### BEGIN HIDDEN TESTS
_gen = checks.grading_generator("ex04_sliding_window")
for _T, _w in [(7, 3), (4, 10), (6, 1), *(torch.randint(1, 12, (2,), generator=_gen).tolist() for _ in range(4))]:
    _expected = torch.tensor([[(s <= t) and (t - s < _w) for s in range(_T)] for t in range(_T)])
    checks.expect_close(sliding_window_mask(_T, _w), _expected, f"sliding_window_mask({_T}, {_w})", atol=0)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (predict, then run; 1 point).** Causal self-attention over 6 positions, no padding:
# how many of the 36 entries of the weight matrix are exactly zero? Set `predicted_zeros`.

# %% solution="ex04_predict_zeros"
predicted_zeros = None  # your answer
### BEGIN SOLUTION
predicted_zeros = 15  # the strict upper triangle: 6 * 5 / 2
### END SOLUTION

# %% tests="ex04_predict_zeros_tests" points=1
checks.answered(predicted_zeros=predicted_zeros)
assert isinstance(predicted_zeros, int), "predicted_zeros must be an int"
### BEGIN HIDDEN TESTS
_, _w = scaled_dot_product_attention(*(torch.randn(6, 8) for _ in range(3)), masks.causal_mask(6))
assert predicted_zeros == int((_w == 0).sum()) == 15
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (spot the bug, 2 points).** This helper is meant to return "may attend" masks for a
# decoder. It runs. What are its two bugs? Write `fixed_decoder_mask(token_ids, pad_id)` returning
# the `(batch, 1, T, T)` causal-and-padding mask.

# %%
def buggy_decoder_mask(token_ids, pad_id):
    T = token_ids.shape[1]
    causal = torch.triu(torch.ones(T, T), diagonal=1).bool()
    return causal & (token_ids == pad_id)[:, None, None, :]


# %% solution="ex04_spot_the_bug"
def fixed_decoder_mask(token_ids, pad_id):
    ### BEGIN SOLUTION
    # bug 1: triu(diagonal=1) marks the FUTURE (the positions to hide), not what may be attended;
    # bug 2: == pad_id selects the padding instead of the real tokens.
    T = token_ids.shape[1]
    causal = torch.ones(T, T, dtype=torch.bool).tril()
    return causal & (token_ids != pad_id)[:, None, None, :]
    ### END SOLUTION


# %% tests="ex04_spot_the_bug_tests" points=2
_ids = torch.tensor([[4, 5, 6, 0], [0, 0, 7, 8]])  # padded on the right, and on the left
_m = fixed_decoder_mask(_ids, 0)
checks.expect_shape(_m, (2, 1, 4, 4), "fixed_decoder_mask for 2 sequences of 4 tokens")
assert _m.dtype == torch.bool, f"return a boolean mask (True = may attend), got {_m.dtype}"
_real = (_ids != 0)[:, None, :, None]  # the rows of real (not padding) queries
_reference = masks.causal_mask(4) & masks.padding_mask(_ids, 0)
checks.expect_close(_m & _real, _reference & _real, "fixed_decoder_mask (rows of real tokens)", atol=0, mistakes={
    "True must mean 'may attend': tril() keeps the past and the present, triu(diagonal=1) is the future":
        torch.ones(4, 4).triu(1).bool() & masks.padding_mask(_ids, 0) & _real,
    "the padding part must be True at real tokens: token_ids != pad_id": masks.causal_mask(4) & (_ids == 0)[:, None, None, :] & _real,
    "both parts are inverted: True must mean 'may attend' (the past, and real tokens)":
        torch.ones(4, 4).triu(1).bool() & (_ids == 0)[:, None, None, :] & _real,
    "padding is a property of the KEYS (the columns): a real token must not attend to a padding token, "
    "so the padding part broadcasts as (batch, 1, 1, T)": masks.causal_mask(4) & (_ids != 0)[:, None, :, None] & _real,
})
### BEGIN HIDDEN TESTS
# Rows of padding queries: hiding padding on both axes (all False) and on keys only are both right.
for _ids2, _pad in [(_ids, 0), (torch.tensor([[1, 2, 3, 9, 9], [9, 9, 9, 9, 9], [9, 6, 7, 8, 4]]), 9)]:
    _m2, _T = fixed_decoder_mask(_ids2, _pad), _ids2.shape[1]
    _real2 = (_ids2 != _pad)[:, None, :, None]
    _ref2 = masks.causal_mask(_T) & masks.padding_mask(_ids2, _pad)
    checks.expect_close(_m2 & _real2, _ref2 & _real2, f"fixed_decoder_mask(pad_id={_pad})", atol=0)
    assert torch.equal(_m2 & ~_real2, _ref2 & ~_real2) or not (_m2 & ~_real2).any(), "rows of padding queries"
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# - Causal mask: `tril`, True on and below the diagonal; padding mask: `(ids != pad)[:, None, None, :]`;
#   combine with `&`.
# - Proof by perturbation: changing position 4 changes no output before it.
# - Mask bugs are silent: opposite conventions, `uint8`, `-1e9` in float16, a forgotten padding mask.
#
# **Next: [05 · The decoder block](05_decoder.ipynb)**: attention, a feed-forward network, residual
# connections and LayerNorm, stacked into the block a GPT repeats.
