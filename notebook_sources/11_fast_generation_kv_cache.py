# %% [markdown]
# # 11 · Fast generation with a KV cache
#
# **Goal.** Make generation fast without changing a single generated token. See why naive
# generation recomputes the past at every step, cache the keys and values instead, prove that
# cached and uncached generation agree token for token, and measure the speed-up.
#
# **You will build** the idea behind `course_lib.kv_cache.KVCache` and `generate(..., use_cache=True)`
# (the default).

# %%
import time

import matplotlib.pyplot as plt
import torch

import course_lib
from course_lib import checks
from course_lib.gpt import GPT, GPTConfig
from course_lib.kv_cache import KVCache
from course_lib.sampling import generate

course_lib.seed_everything(0)
torch.set_printoptions(precision=4, sci_mode=False)
device = course_lib.get_device()

# %% [markdown]
# ## 1. What naive generation recomputes
#
# `generate` (notebook 08) feeds the model the whole sequence at every step and keeps only the last
# position's logits. Generating $n$ tokens from a 1-token prompt therefore pushes
# $1 + 2 + \dots + n = n(n+1)/2$ token positions through every layer: 32,896 for $n = 256$, where 256
# would do. Are the others wasted? In layer $\ell$, the keys and values of position $s$ depend only
# on positions $\le s$ (the causal mask), so once computed they **never change**. Check it on the
# first layer: the keys computed for 10 tokens and for 11 tokens agree on the first 10 positions.

# %%
model = GPT(GPTConfig(vocab_size=50, context_length=64, d_model=32, n_heads=4, n_layers=2, d_ff=64)).double().eval()
ids = torch.randint(0, 50, (1, 11))
attention = model.blocks[0].attn
with torch.no_grad():
    x10 = model.blocks[0].ln1(model.token_embedding(ids[:, :10]) + model.position_table[:10])
    x11 = model.blocks[0].ln1(model.token_embedding(ids) + model.position_table[:11])
    keys10, keys11 = attention.w_k(x10), attention.w_k(x11)
print("keys of positions 0..9 unchanged by token 10:", torch.equal(keys10, keys11[:, :10]))

# %% [markdown]
# (Deeper layers behave the same, because their inputs at positions $\le s$ depend only on tokens
# $\le s$ too: the perturbation tests of notebooks 04–06 again.)
#
# ## 2. The cache
#
# So keep every layer's keys and values, `(batch, heads, positions, head_dim)`, and at each step
# compute them only for the new token, append, and attend with the new query over all of them:
#
# ```python
# k, v = cache.update(layer, k_new, v_new)   # torch.cat along the positions axis
# out, _ = scaled_dot_product_attention(q_new, k, v)   # one query row, all keys
# ```
#
# The new token needs no causal mask (it may see everything before it) and its position index is
# the number of cached positions. Feeding the sequence in pieces must give exactly the logits of
# feeding it whole:

# %%
ids = torch.randint(0, 50, (2, 20))
cache = KVCache(len(model.blocks))
with torch.no_grad():
    full = model(ids)  # (2, 20, 50) in one pass
    pieces = [model(ids[:, :8], cache=cache)]  # a prompt of 8 tokens
    for t in range(8, 20):
        pieces.append(model(ids[:, t:t + 1], cache=cache))  # then one token at a time
incremental = torch.cat(pieces, dim=1)
print("cached positions:", len(cache), "  keys of layer 0:", tuple(cache.keys[0].shape))
assert torch.allclose(incremental, full, atol=1e-10)
print("incremental logits == full logits (float64, 1e-10)")

# %% [markdown]
# ## 3. Same tokens, cached or not, even past the context window
#
# `generate(..., use_cache=True)` runs the prompt once to fill the cache, then feeds one token per
# step. When the sequence outgrows the context window, the model must see only the last
# `context_length` tokens *at positions 0, 1, ...*: every cached key was computed at a position that
# has now shifted, so the cache is rebuilt from the window, which is exactly the uncached
# computation. (Models with relative positions, such as rotary embeddings, can slide a cache
# instead.)

# %%
small = GPT(GPTConfig(vocab_size=50, context_length=16, d_model=32, n_heads=4, n_layers=2, d_ff=64)).double().eval()
prompt = torch.tensor([[3, 1, 4], [1, 5, 9]])
greedy_cached = generate(small, prompt, 40, temperature=0, use_cache=True)  # 43 tokens > context 16
greedy_plain = generate(small, prompt, 40, temperature=0, use_cache=False)
sampled_cached = generate(small, prompt, 40, temperature=1.0, top_k=10, generator=torch.Generator().manual_seed(0))
sampled_plain = generate(small, prompt, 40, temperature=1.0, top_k=10, generator=torch.Generator().manual_seed(0), use_cache=False)
print("greedy, 40 tokens past a 16-token window: identical =", torch.equal(greedy_cached, greedy_plain))
print("seeded sampling:                          identical =", torch.equal(sampled_cached, sampled_plain))
assert torch.equal(greedy_cached, greedy_plain) and torch.equal(sampled_cached, sampled_plain)

# %% [markdown]
# ## 4. How much faster?
#
# Time each generation step of a larger model with random weights (timing needs no training):
# without the cache a step costs more and more as the sequence grows; with it, a step costs about
# the same all the way.

# %%
course_lib.seed_everything(0)
config = GPTConfig(vocab_size=1000, context_length=512, d_model=256, n_heads=8, n_layers=4, d_ff=1024)
big = GPT(config).to(device).eval()


@torch.no_grad()
def step_times(use_cache, n=256):
    ids, cache, times = torch.tensor([[1]], device=device), KVCache(len(big.blocks)), []
    for _ in range(n):
        start = time.perf_counter()
        logits = big(ids[:, -1:], cache=cache) if use_cache else big(ids)
        next_id = logits[:, -1].argmax(-1, keepdim=True)
        next_id.item()  # wait for the device
        times.append(time.perf_counter() - start)
        ids = torch.cat([ids, next_id], dim=1)
    return times, ids


# %% tags=["nbval-ignore-output"]
plain_times, plain_ids = step_times(use_cache=False)
cached_times, cached_ids = step_times(use_cache=True)
print(f"256 tokens: uncached {sum(plain_times):.2f} s, cached {sum(cached_times):.2f} s, "
      f"speed-up {sum(plain_times) / sum(cached_times):.1f}x on {device}")
fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot([1000 * t for t in plain_times], label="uncached: the whole sequence each step")
ax.plot([1000 * t for t in cached_times], label="KV cache: one token each step")
ax.set_xlabel("generation step (sequence length)")
ax.set_ylabel("milliseconds per step")
ax.set_title(f"per-step cost, {device}")
ax.legend()
plt.show()

# %%
assert torch.equal(plain_ids, cached_ids), "the cache must not change the tokens"


# %% [markdown]
# `python benchmarks/generation.py` measures the same model end to end with `generate` (best of 5
# runs). On this course's CI machine (AMD EPYC, 2 CPU threads, PyTorch 2.13.0 CPU build), over
# four runs (the 256-token prompt: one run):
#
# | prompt | new tokens | uncached tokens/s | KV-cache tokens/s | speed-up | same tokens |
# |---|---|---|---|---|---|
# | 1 token | 256 | 116–124 | 634–917 | 5.5–7.4 × | yes |
# | 256 tokens | 256 | 34 | 591 | 17.5 × | yes |
#
# The longer the context already there, the more the cache saves: the uncached step pays for the
# whole sequence, the cached one for one token (plus its attention over the cache, which is cheap
# at this length). The price is memory: $2 \times$ layers $\times$ positions $\times$ `d_model`
# numbers per sequence, 4 MB here in float32 at 512 positions.

# %% [markdown]
# ## Exercises
#
# Each test cell checks the exercise just above it, and nothing else in the notebook uses the
# exercises: skip one and the rest still runs. Silence means pass; otherwise the message says what
# is wrong.
#
# **Exercise 1 (implement, 2 points).** Write `append_to_cache(cached, new)`: both are
# `(batch, heads, positions, head_dim)`; return them joined along the positions axis. `cached` may
# be `None` (an empty cache).

# %% solution="ex11_append"
def append_to_cache(cached, new):
    ### BEGIN SOLUTION
    return new if cached is None else torch.cat([cached, new], dim=-2)
    ### END SOLUTION


# %% tests="ex11_append_tests" points=2
_a, _b = torch.randn(2, 4, 5, 8), torch.randn(2, 4, 1, 8)
_joined = append_to_cache(_a, _b)
checks.expect_shape(_joined, (2, 4, 6, 8), "append_to_cache(5 positions, 1 position): join along the positions axis (dim=-2)")
checks.expect_close(_joined[:, :, :5], _a, "the cached positions, which come first")
checks.expect_close(_joined[:, :, 5], _b[:, :, 0], "the new position, which comes last")
checks.expect_close(append_to_cache(None, _b), _b, "append_to_cache(None, new): an empty cache holds just the new positions")
### BEGIN HIDDEN TESTS
_gen = checks.grading_generator("ex11_append")
_shape = torch.randint(1, 5, (4,), generator=_gen).tolist()
_c, _d = torch.randn(*_shape, generator=_gen), torch.randn(*_shape[:2], 2, _shape[3], generator=_gen)
checks.expect_close(append_to_cache(_c, _d), torch.cat([_c, _d], dim=2), "append_to_cache of 3 and 2 positions")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (predict, then run; 1 point).** Generating 100 new tokens from a 1-token prompt (the
# context is long enough) takes 100 forward passes: the first reads the prompt; each later one reads,
# uncached, the whole sequence so far, and cached, only the newest token. In total over the 100
# passes, how many token positions go through the first layer? Set `positions_uncached` and
# `positions_cached`.

# %% solution="ex11_predict_work"
positions_uncached = None  # your answer
positions_cached = None  # your answer
### BEGIN SOLUTION
positions_uncached = sum(range(1, 101))  # 1 + 2 + ... + 100 = 5050
positions_cached = 100  # the prompt, then one new token for each of the 99 later steps
### END SOLUTION

# %% tests="ex11_predict_work_tests" points=1
checks.answered(positions_uncached=positions_uncached, positions_cached=positions_cached)
### BEGIN HIDDEN TESTS
checks.expect_equal((positions_uncached, positions_cached), (5050, 100), "(positions_uncached, positions_cached)")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (spot the bug, 2 points).** A cached generation step computed its new token's position
# embedding like this, and the text came out garbled after the first word. Why? Write
# `fixed_positions(n_cached, n_new)`: the position indices of `n_new` tokens fed after `n_cached`
# cached ones.

# %%
def buggy_positions(n_cached, n_new):
    return torch.arange(n_new)


# %% solution="ex11_spot_the_bug"
def fixed_positions(n_cached, n_new):
    ### BEGIN SOLUTION
    # The new tokens come after the cached ones: every step was told it was at position 0.
    return torch.arange(n_cached, n_cached + n_new)
    ### END SOLUTION


# %% tests="ex11_spot_the_bug_tests" points=2
_p = fixed_positions(5, 1)
checks.expect_shape(_p, (1,), "fixed_positions(5, 1): one new token")
assert not _p.is_floating_point(), f"positions index the embedding table: they must be integers (torch.arange gives torch.long), got {_p.dtype}"
checks.expect_equal(_p.tolist(), [5], "fixed_positions(5, 1): after 5 cached tokens (positions 0 to 4) the new one is at position 5")
checks.expect_equal(fixed_positions(0, 3).tolist(), [0, 1, 2], "fixed_positions(0, 3): with nothing cached, positions start at 0")
### BEGIN HIDDEN TESTS
checks.expect_close(fixed_positions(7, 3), torch.tensor([7, 8, 9]), "fixed_positions(7, 3)", atol=0)
_cached, _new = torch.randint(0, 50, (2,), generator=checks.grading_generator("ex11_spot_the_bug")).tolist()
_new += 1
checks.expect_close(fixed_positions(_cached, _new), torch.arange(_cached, _cached + _new), f"fixed_positions({_cached}, {_new})", atol=0)
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# - Causal attention never changes the keys and values of past positions, so generation can cache
#   them and feed one new token per step.
# - Cached and uncached generation agree token for token, greedy and sampled, within and past the
#   context window (where the cache is rebuilt, because absolute positions shift).
# - Measured on a 2-thread CPU: 5.5–7.4 × faster for 256 tokens from a 1-token prompt, 17.5 × from
#   a 256-token prompt.
#
# This is the end of the course's core. From here: train on more text (`python -m course_lib train
# --data your.txt --out runs/model.pt`), try a BPE tokenizer for the model, or add rotary position
# embeddings and slide the cache.
