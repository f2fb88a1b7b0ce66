# %% [markdown]
# # 05 · The decoder block
#
# **Goal.** Assemble the block a GPT repeats: masked multi-head self-attention and a position-wise
# feed-forward network, each wrapped in a residual connection with LayerNorm. Check it against
# PyTorch's own Transformer layer, prove it cannot see the future, count its parameters.
#
# **You will build** `DecoderBlock(d_model, n_heads, d_ff)`, kept in `course_lib.decoder`.
#
# **Builds on** notebooks 02 (`MultiHeadAttention`) and 04 (`causal_mask`, `padding_mask`).

# %%
import matplotlib.pyplot as plt
import torch
from torch import nn

import course_lib
from course_lib import checks
from course_lib.attention import MultiHeadAttention
from course_lib.masks import causal_mask
from course_lib.plotting import plot_attention_heads

course_lib.seed_everything(0)
torch.set_printoptions(precision=4, sci_mode=False)


# %% [markdown]
# ## 1. The two sub-layers
#
# **Attention** lets each position gather information from earlier positions. The
# **feed-forward network** then processes each position on its own, with the same weights everywhere
# ("position-wise"):
#
# $$\mathrm{FFN}(x) = W_2\,\mathrm{GELU}(W_1 x + b_1) + b_2, \qquad W_1: d_{model} \to d_{ff},\; W_2: d_{ff} \to d_{model}$$
#
# with $d_{ff}$ usually $4 \times d_{model}$. GPT uses GELU, a smooth ReLU. (The seed code writes the
# same thing as two `Conv1d` layers with kernel size 1: a convolution that looks at one position at a
# time *is* a per-position linear layer.)

# %%
class FeedForward(nn.Module):
    def __init__(self, d_model, d_ff):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Linear(d_ff, d_model))

    def forward(self, x):  # (batch, T, d_model) -> (batch, T, d_model)
        return self.net(x)


ffn = FeedForward(16, 64)
x = torch.randn(2, 5, 16)
# position-wise: running the positions one by one gives the same result
print("per-position == all at once:", torch.allclose(ffn(x), torch.stack([ffn(x[:, t]) for t in range(5)], 1), atol=1e-6))


# %% [markdown]
# ## 2. Residual connections and LayerNorm: pre-LN and post-LN
#
# Each sub-layer $F$ is wrapped so that it *adds* to its input instead of replacing it (a residual
# connection), which gives gradients a direct path through a deep stack. LayerNorm keeps the numbers
# at a steady scale. There are two places to put it:
#
# | | one sub-layer | used by |
# |---|---|---|
# | **post-LN** | $x \leftarrow \mathrm{LN}(x + F(x))$ | the original Transformer (2017), the seed code |
# | **pre-LN** | $x \leftarrow x + F(\mathrm{LN}(x))$ | GPT-2, GPT-3 and most models since |
#
# In pre-LN the input flows to the output untouched (the "residual stream"), and each sub-layer writes
# a correction into it. Post-LN normalises the stream after every sub-layer; deep post-LN models need a
# learning-rate warm-up to train at all (Xiong et al., 2020, *On Layer Normalization in the
# Transformer Architecture*). The course uses **pre-LN**.

# %%
class DecoderBlock(nn.Module):
    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.ffn = FeedForward(d_model, d_ff)

    def forward(self, x, padding_mask=None):  # x: (batch, T, d_model)
        mask = causal_mask(x.shape[1], device=x.device)  # (T, T): never the future
        if padding_mask is not None:
            mask = mask & padding_mask  # (batch, 1, T, T): nor padding
        x = x + self.attn(self.ln1(x), mask=mask)  # x + Attention(LN(x))
        x = x + self.ffn(self.ln2(x))  # x + FFN(LN(x))
        return x  # (batch, T, d_model)


block = DecoderBlock(d_model=32, n_heads=4, d_ff=128)
print(tuple(block(torch.randn(2, 7, 32)).shape))

# %% [markdown]
# ## 3. Check against PyTorch's Transformer layer
#
# `nn.TransformerEncoderLayer(norm_first=True, activation="gelu")` computes exactly a pre-LN block.
# (PyTorch calls it an *encoder* layer; given a causal mask it is a GPT decoder block: a GPT has no
# cross-attention.) Copy our weights into it and compare in float64. The library's `DecoderBlock`
# has the same parameter names as ours, plus dropout.

# %%
from course_lib.decoder import DecoderBlock as LibraryBlock


def copy_into_pytorch_layer(block):
    a = block.attn
    ref = nn.TransformerEncoderLayer(a.d_model, a.n_heads, block.ffn.net[0].out_features, dropout=0.0,
                                     activation="gelu", batch_first=True, norm_first=True, dtype=torch.float64)
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(torch.cat([a.w_q.weight, a.w_k.weight, a.w_v.weight]))
        ref.self_attn.in_proj_bias.copy_(torch.cat([a.w_q.bias, a.w_k.bias, a.w_v.bias]))
        ref.self_attn.out_proj.weight.copy_(a.w_o.weight)
        ref.self_attn.out_proj.bias.copy_(a.w_o.bias)
        ref.linear1.load_state_dict(block.ffn.net[0].state_dict())
        ref.linear2.load_state_dict(block.ffn.net[2].state_dict())
        ref.norm1.load_state_dict(block.ln1.state_dict())
        ref.norm2.load_state_dict(block.ln2.state_dict())
    return ref.eval()


ours = DecoderBlock(32, 4, 128).double().eval()
library = LibraryBlock(32, 4, 128).double().eval()
library.load_state_dict(ours.state_dict())  # same parameter names, so the weights copy across
reference = copy_into_pytorch_layer(ours)

x = torch.randn(3, 9, 32, dtype=torch.float64)
expected = reference(x, src_mask=~causal_mask(9))  # PyTorch: True = NOT allowed
assert torch.allclose(ours(x), expected, atol=1e-10) and torch.allclose(library(x), expected, atol=1e-10)
print("ours and the library's block match nn.TransformerEncoderLayer to 1e-10 (float64)")

# %% [markdown]
# ## 4. Proof by perturbation: position $t$ never sees positions after $t$
#
# Change the input at one position at a time and record which outputs move. The result must be a
# lower-triangular pattern: changing position $s$ affects only positions $t \ge s$.

# %%
x = torch.randn(1, 8, 32, dtype=torch.float64)
influence = torch.zeros(8, 8)  # influence[t, s]: does changing input s move output t?
with torch.no_grad():
    base = library(x)
    for s in range(8):
        changed = x.clone()
        changed[0, s] += torch.randn(32, dtype=torch.float64)
        influence[:, s] = ((library(changed) - base).abs().amax(-1)[0] > 0).float()
assert torch.equal(influence.bool(), causal_mask(8))
fig, ax = plt.subplots(figsize=(4.5, 4))
ax.imshow(influence, cmap="Greys")
ax.set_xlabel("input position changed (s)")
ax.set_ylabel("output position (t)")
ax.set_title("which outputs move")
plt.show()

# %% [markdown]
# ## 5. Counting parameters, by formula and by PyTorch
#
# - attention: four $d \times d$ matrices and four biases: $4(d^2 + d)$
# - feed-forward: $d \cdot d_{ff} + d_{ff} + d_{ff} \cdot d + d$
# - two LayerNorms, each a scale and a shift: $2 \cdot 2d$

# %%
d, d_ff = 64, 256
by_formula = 4 * (d * d + d) + (d * d_ff + d_ff + d_ff * d + d) + 2 * 2 * d
by_pytorch = sum(p.numel() for p in LibraryBlock(d, 4, d_ff).parameters())
print(f"by formula: {by_formula:,}   by PyTorch: {by_pytorch:,}")
assert by_formula == by_pytorch


# %% [markdown]
# Two thirds of a block's parameters sit in the feed-forward network, not in attention.

# %% [markdown]
# ## 6. Spot the bug: the seed's double residual
#
# The code this course grew from has a `MultiHeadAttention` that *already* adds the residual and
# applies LayerNorm inside (`layer_norm(output + residual)`), and a decoder layer that then does it
# *again*: `norm1(dec_inputs + attn_output)`. Written out, with $A$ the attention:
#
# $$\mathrm{LN}_1\big(x + \mathrm{LN}_{\text{inside}}(x + A(x))\big)$$
#
# The input is added twice, and normalised twice. It still trains (the model learns around it), which
# is exactly why such bugs survive: nothing crashes. Let us measure how much of the output is just
# a copy of the input in each version, at initialisation:

# %%
class SeedStyleAttention(nn.Module):  # the seed's attention: residual and LayerNorm inside
    def __init__(self, d_model, n_heads):
        super().__init__()
        self.attn = MultiHeadAttention(d_model, n_heads)
        self.layer_norm = nn.LayerNorm(d_model)

    def forward(self, x, mask):
        return self.layer_norm(x + self.attn(x, mask=mask))


seed_attention = SeedStyleAttention(32, 4)
norm1 = nn.LayerNorm(32)
x = torch.randn(4, 10, 32)
mask = causal_mask(10)
with torch.no_grad():
    once = seed_attention(x, mask)  # residual + LN once: correct post-LN
    twice = norm1(x + seed_attention(x, mask))  # the seed: residual + LN again on top


def similarity_to_input(y):
    return nn.functional.cosine_similarity(y.flatten(), x.flatten(), dim=0).item()


print(f"cosine(output, input), residual once : {similarity_to_input(once):.3f}")
print(f"cosine(output, input), residual twice: {similarity_to_input(twice):.3f}")

# %% [markdown]
# Twice the input in the sum means the attention's contribution is diluted further: the layer is
# closer to an identity map than its author intended. Fix: let a sub-layer *either* own its residual
# and LayerNorm *or* leave both to the block, never both. In `course_lib`, `MultiHeadAttention`
# returns only the attention, and `DecoderBlock` owns the residuals.

# %% [markdown]
# ## 7. Inside the block: attention maps
#
# An untrained block on a random sequence: every head's map is lower-triangular.

# %%
from course_lib.attention import recording_attention

with recording_attention(library):  # keep the weights (notebook 02): the fast kernel never builds them
    _ = library(torch.randn(1, 6, 32, dtype=torch.float64) * 4)
fig = plot_attention_heads(library.attn.attention_weights, labels=[f"t{i}" for i in range(6)], title="untrained decoder block")
plt.show()


# %% [markdown]
# ## Exercises
#
# Each test cell checks the exercise just above it, and nothing else in the notebook uses the
# exercises: skip one and the rest still runs. Silence means pass; otherwise the message says what
# is wrong.
#
# **Exercise 1 (implement, 2 points).** Write `post_ln_forward(block, x)`: the **post-LN** version of
# the block, using `block`'s own layers: $x \leftarrow \mathrm{LN}_1(x + A(x))$, then
# $x \leftarrow \mathrm{LN}_2(x + \mathrm{FFN}(x))$, with the causal mask.

# %% solution="ex05_post_ln"
def post_ln_forward(block, x):
    ### BEGIN SOLUTION
    mask = causal_mask(x.shape[1], device=x.device)
    x = block.ln1(x + block.attn(x, mask=mask))
    return block.ln2(x + block.ffn(x))
    ### END SOLUTION


# %% tests="ex05_post_ln_tests" points=2
torch.manual_seed(0)
_block = LibraryBlock(16, 2, 32).double().eval()
with torch.no_grad():  # two different LayerNorms, so that using the wrong one (or one twice) shows
    for _ln in (_block.ln1, _block.ln2):
        _ln.weight.uniform_(0.5, 1.5)
        _ln.bias.uniform_(-0.5, 0.5)
_x = torch.randn(2, 5, 16, dtype=torch.float64)
_out = post_ln_forward(_block, _x)
checks.expect_shape(_out, (2, 5, 16), "post_ln_forward(block, x)")


def _post_ln(first_norm, second_norm, causal=True):
    h = first_norm(_x + _block.attn(_x, mask=causal_mask(5) if causal else None))
    return second_norm(h + _block.ffn(h))


checks.expect_close(_out, _post_ln(_block.ln1, _block.ln2), "post_ln_forward(block, x)", atol=1e-8, mistakes={
    "this is the pre-LN block: post-LN normalises AFTER adding, x = LN(x + sublayer(x))": _block(_x),
    "ln1 goes with the attention, ln2 with the feed-forward network (they are swapped)": _post_ln(_block.ln2, _block.ln1),
    "each sublayer has its own LayerNorm: ln1 after the attention, ln2 after the feed-forward (ln1 used twice)":
        _post_ln(_block.ln1, _block.ln1),
    "each sublayer has its own LayerNorm: ln1 after the attention, ln2 after the feed-forward (ln2 used twice)":
        _post_ln(_block.ln2, _block.ln2),
    "the attention must be causal: pass mask=causal_mask(T)": _post_ln(_block.ln1, _block.ln2, causal=False),
})
### BEGIN HIDDEN TESTS
_ref = copy_into_pytorch_layer(_block)
_ref.norm_first = False
checks.expect_close(post_ln_forward(_block, _x), _ref(_x, src_mask=~causal_mask(5)),
                    "post_ln_forward vs nn.TransformerEncoderLayer(norm_first=False)", atol=1e-8)
_x7 = torch.randn(1, 7, 16, dtype=torch.float64)
checks.expect_close(post_ln_forward(_block, _x7), _ref(_x7, src_mask=~causal_mask(7)), "post_ln_forward on 7 positions", atol=1e-8)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (predict, then run; 1 point).** How many parameters does
# `DecoderBlock(d_model=128, n_heads=8, d_ff=512)` have? Use the formula of section 5, set
# `predicted_block_parameters`, then check with PyTorch. Does `n_heads` matter?

# %% solution="ex05_predict_parameters"
predicted_block_parameters = None  # your answer
### BEGIN SOLUTION
predicted_block_parameters = 4 * (128 * 128 + 128) + (128 * 512 + 512 + 512 * 128 + 128) + 4 * 128
### END SOLUTION

# %% tests="ex05_predict_parameters_tests" points=1
checks.answered(predicted_block_parameters=predicted_block_parameters)
assert isinstance(predicted_block_parameters, int), "predicted_block_parameters must be an int"
### BEGIN HIDDEN TESTS
assert predicted_block_parameters == sum(p.numel() for p in LibraryBlock(128, 8, 512).parameters())
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (spot the bug, 2 points).** This block runs, has the right shapes, and passes a
# quick look. Find the bug (hint: section 4), then write `fixed_forward(block, x)` that computes the
# correct pre-LN block with `block`'s layers.

# %%
def buggy_forward(block, x):
    mask = causal_mask(x.shape[1]).T
    x = x + block.attn(block.ln1(x), mask=mask)
    return x + block.ffn(block.ln2(x))


# %% solution="ex05_spot_the_bug"
def fixed_forward(block, x):
    ### BEGIN SOLUTION
    # causal_mask(T).T is upper-triangular: every position sees the FUTURE and not the past.
    mask = causal_mask(x.shape[1], device=x.device)
    x = x + block.attn(block.ln1(x), mask=mask)
    return x + block.ffn(block.ln2(x))
    ### END SOLUTION


# %% tests="ex05_spot_the_bug_tests" points=2
_x = torch.randn(1, 6, 16, dtype=torch.float64)
_y = fixed_forward(_block, _x)
checks.expect_shape(_y, (1, 6, 16), "fixed_forward(block, x)")
_changed = _x.clone()
_changed[0, 5] += torch.randn(16, dtype=torch.float64)  # change the LAST position only: no earlier output may move
assert torch.allclose(fixed_forward(_block, _changed)[0, :5], _y[0, :5]), \
    "changing the last token changed earlier outputs: position t may see only positions <= t (causal_mask(T), not its transpose)"
_changed = _x.clone()
_changed[0, 0] += torch.randn(16, dtype=torch.float64)  # change the FIRST position: every later output must move
assert not torch.allclose(fixed_forward(_block, _changed)[0, 5], _y[0, 5]), \
    "the last position did not see the first one: every position must see all the positions before it"
checks.expect_close(_y, _block(_x), "fixed_forward vs the library's pre-LN block", atol=1e-8)
### BEGIN HIDDEN TESTS
_x3 = torch.randn(3, 4, 16, dtype=torch.float64)
checks.expect_close(fixed_forward(_block, _x3), _block(_x3), "fixed_forward on a batch of 3", atol=1e-8)
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# - A decoder block = masked self-attention + position-wise FFN, each as $x + F(\mathrm{LN}(x))$ (pre-LN).
# - It matches `nn.TransformerEncoderLayer(norm_first=True)` with a causal mask to 1e-10, and the
#   perturbation test shows a strictly causal influence pattern.
# - A residual and a LayerNorm belong to exactly one place: the seed's double residual is a silent bug.
#
# **Next: [06 · The GPT model](06_gpt_model.ipynb)**: embeddings, positions, a stack of these blocks,
# and a language-model head.
