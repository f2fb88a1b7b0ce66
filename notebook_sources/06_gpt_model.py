# %% [markdown]
# # 06 · The GPT model
#
# **Goal.** Turn token ids into next-token predictions: embeddings, positions, a stack of decoder
# blocks, a final LayerNorm and a language-model head. Understand weight tying, check that an
# untrained model is as unsure as it should be, and fix the seed's position bug.
#
# **You will build** `GPTConfig` and `GPT(config)`, kept in `course_lib.gpt`.
#
# **Builds on** notebook 03 (`sinusoidal_table`) and 05 (`DecoderBlock`).

# %%
import math
from dataclasses import dataclass

import matplotlib.pyplot as plt
import torch
from torch import nn

import course_lib
from course_lib import checks
from course_lib.decoder import DecoderBlock
from course_lib.positional import sinusoidal_table

course_lib.seed_everything(0)
torch.set_printoptions(precision=4, sci_mode=False)


# %% [markdown]
# ## 1. The whole model on one page
#
# For token ids $x_0 \dots x_{T-1}$:
#
# $$h^{(0)}_t = \sqrt{d_\text{model}}\,E[x_t] + PE_t, \qquad h^{(\ell)} = \mathrm{Block}_\ell(h^{(\ell-1)}), \qquad
# \mathrm{logits}_t = \mathrm{LN}(h^{(L)}_t)\, E^\top$$
#
# - $E$ (`vocab_size × d_model`) is the token embedding: one learned vector per word, scaled by
#   $\sqrt{d_\text{model}}$ before the position is added (section 4 below says why);
# - $PE_t$ is the position vector from notebook 03 (or a learned one);
# - $L$ decoder blocks (notebook 05), then a final LayerNorm (pre-LN leaves the stream un-normalised);
# - the **language-model head** maps each position back to one score per vocabulary word. With
#   **weight tying** it reuses $E$: a word's output score is the dot product of the hidden state
#   with that word's own embedding, and the model saves `vocab_size × d_model` parameters.
#
# `logits[:, t]` predicts token $t+1$; the causal masks make sure it only used tokens $0..t$.

# %%
@dataclass
class GPTConfig:
    vocab_size: int
    context_length: int = 32
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256


class GPT(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.d_model)
        self.register_buffer("position_table", sinusoidal_table(config.context_length, config.d_model), persistent=False)
        self.blocks = nn.ModuleList(DecoderBlock(config.d_model, config.n_heads, config.d_ff) for _ in range(config.n_layers))
        self.ln_f = nn.LayerNorm(config.d_model)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        self.lm_head.weight = self.token_embedding.weight  # weight tying: one matrix, used twice

    def forward(self, token_ids):  # (batch, T) integer ids
        T = token_ids.shape[1]
        if T > self.config.context_length:
            raise ValueError(f"{T} tokens exceed the context length {self.config.context_length}")
        tokens = self.token_embedding(token_ids) * math.sqrt(self.config.d_model)  # (batch, T, d_model)
        x = tokens + self.position_table[:T]  # (batch, T, d_model)
        for block in self.blocks:
            x = block(x)  # (batch, T, d_model)
        return self.lm_head(self.ln_f(x))  # (batch, T, vocab_size)


model = GPT(GPTConfig(vocab_size=100))
ids = torch.randint(0, 100, (2, 10))
print("logits:", tuple(model(ids).shape))

# %% [markdown]
# ## 2. The library's GPT computes the same function
#
# `course_lib.gpt.GPT` adds dropout, learned positions as an option, padding masks, a loss, GPT-2's
# initialisation and argument checks. Loaded with our weights, it must give the same logits.

# %%
from course_lib.gpt import GPT as LibraryGPT
from course_lib.gpt import GPTConfig as LibraryConfig

library = LibraryGPT(LibraryConfig(vocab_size=100))
library.load_state_dict(model.state_dict())  # same parameter names
print("max |library - ours| =", f"{(library(ids) - model(ids)).abs().max().item():.1e}")
assert torch.allclose(library(ids), model(ids), atol=1e-5)

# %% [markdown]
# ## 3. Weight tying, measured

# %%
tied = LibraryGPT(LibraryConfig(vocab_size=5000))
untied = LibraryGPT(LibraryConfig(vocab_size=5000, tie_weights=False))
print(f"tied  : {tied.num_parameters():,} parameters")
print(f"untied: {untied.num_parameters():,} parameters (+{untied.num_parameters() - tied.num_parameters():,} = 5000 x 64)")
print("lm_head.weight is token_embedding.weight:", tied.lm_head.weight is tied.token_embedding.weight)

# %% [markdown]
# With a large vocabulary the embedding matrix is a big share of a small model: tying it halves that
# share. GPT-2 ties its weights; the course's `GPTConfig(tie_weights=True)` does by default. At
# GPT-2's 50,257 words × 768 the matrix is 38.6 M of its 124 M parameters: untied, the model would
# carry a second matrix as large as a third of itself, one that only the output ever trains.
#
# ## 3b. Why the token vectors are scaled by $\sqrt{d_\text{model}}$
#
# The weights start small, $\mathcal N(0, 0.02)$, as in GPT-2, so a token vector's length is about
# $0.02\sqrt{d_\text{model}}$. A sinusoidal position vector has $d_\text{model}/2$ sines and
# $d_\text{model}/2$ cosines, so its length is exactly $\sqrt{d_\text{model}/2}$. Added together, the
# word would be a whisper under the position:

# %%
d = 64
word = LibraryGPT(LibraryConfig(vocab_size=5000, d_model=d)).token_embedding.weight  # (5000, 64)
position = sinusoidal_table(32, d)  # (32, 64)
print(f"mean length of a token vector    : {word.norm(dim=1).mean().item():.2f}")
print(f"length of every position vector  : {position.norm(dim=1).mean().item():.2f}  (sqrt(d/2) = {math.sqrt(d / 2):.2f})")
print(f"token vector times sqrt(d_model) : {(word * math.sqrt(d)).norm(dim=1).mean().item():.2f}")

# %% [markdown]
# The first layer then sees mostly *where* a token is and barely *which* token it is; training must
# first grow the word vectors, and with weight tying those same vectors are the output layer, so it
# cannot grow them freely. Vaswani et al. (section 3.4) multiply the embeddings by
# $\sqrt{d_\text{model}}$; the library does the same (`GPTConfig(scale_embeddings=True)`, the default).
# Notebook 07 measures what it buys: about half the training steps on lang.txt.

# %% [markdown]
# ## 4. An untrained model should know nothing
#
# Before training, a good initialisation gives every word about the same probability, so the
# cross-entropy of the next token is close to $-\ln(1/V) = \ln V$. A much larger loss at step 0
# means the initial logits are too large (a model that is confidently wrong) and training will waste
# its first steps undoing that. The library's GPT-2 initialisation (weights $\sim \mathcal N(0, 0.02)$)
# lands right at $\ln V$:

# %%
vocab_size = 134  # the size of lang.txt's vocabulary (notebook 07)
course_lib.seed_everything(0)
fresh = LibraryGPT(LibraryConfig(vocab_size=vocab_size))
ids = torch.randint(0, vocab_size, (20, 16))
targets = torch.randint(0, vocab_size, (20, 16))
_, loss = fresh(ids, targets)
print(f"untrained loss {loss.item():.3f}   ln(vocab_size) = {math.log(vocab_size):.3f}")
assert abs(loss.item() - math.log(vocab_size)) < 0.05

# %%
probs = torch.softmax(fresh(ids[:1])[0, -1], dim=-1)
fig, ax = plt.subplots(figsize=(9, 2.8))
ax.bar(range(vocab_size), probs.detach().numpy(), width=1.0)
ax.axhline(1 / vocab_size, color="red", linestyle=":", label="1 / vocab_size")
ax.set_xlabel("token id")
ax.set_ylabel("probability")
ax.set_title("an untrained model's next-token distribution: nearly uniform")
ax.legend()
plt.show()

# %% [markdown]
# ## 5. Causality, end to end
#
# Change one token and see which positions' logits move: none before it.

# %%
fresh.eval()
ids = torch.randint(0, vocab_size, (1, 12))
changed = ids.clone()
changed[0, 7] = (changed[0, 7] + 1) % vocab_size
with torch.no_grad():
    moved = (fresh(ids) - fresh(changed)).abs().amax(-1)[0] > 0
print("positions whose logits moved:", moved.nonzero().flatten().tolist())
assert not moved[:7].any() and moved[7:].all()

# %% [markdown]
# ## 6. Spot the bug: the seed's positions
#
# The seed's decoder builds its positions like this:
#
# ```python
# positions = torch.arange(len(dec_inputs), device=dec_inputs.device).unsqueeze(-1)
# inputs_embedding = self.src_emb(dec_inputs) + self.pos_emb(positions)
# ```
#
# `len(dec_inputs)` is the **batch size**, not the sequence length. So `positions` is
# `[[0], [1], [2]]` for a batch of 3: every token of sentence $b$ gets position $b$, and the
# `(batch, 1, d)` position embeddings broadcast along the sequence. Let us watch it happen:

# %%
seed_pos_emb = nn.Embedding(17, 8)  # the seed's learned positions; max_seq_len = 17
batch = torch.randint(0, 50, (3, 16))  # 3 sentences of 16 tokens
positions = torch.arange(len(batch)).unsqueeze(-1)  # the seed's line
print("seed positions:", positions.flatten().tolist(), "shape", tuple(positions.shape))
added = seed_pos_emb(positions)  # (3, 1, 8): one vector per SENTENCE
print("same position vector for every token of sentence 0:", torch.equal(added[0, 0], seed_pos_emb.weight[0]),
      "- and it broadcasts along all 16 tokens:", tuple((torch.zeros(3, 16, 8) + added).shape))
try:
    seed_pos_emb(torch.arange(30).unsqueeze(-1))  # a batch of 30 sentences
except IndexError as error:
    print("batch of 30 > max_seq_len 17 -> IndexError:", error)

# %% [markdown]
# Two symptoms of one bug: the model never sees word order (all tokens of a sentence share one
# "position"), and it crashes as soon as a batch holds more sentences than the context length. The
# seed trains with batch size 3, so neither shows. The fix is one word: `dec_inputs.size(1)`, the
# sequence length. The library's GPT computes `torch.arange(T)` along the sequence, and its tests
# check that a row's logits are the same alone or in a batch of 30:

# %%
model = LibraryGPT(LibraryConfig(vocab_size=50, context_length=16)).eval()
big_batch = torch.randint(0, 50, (30, 16))
with torch.no_grad():
    same = torch.allclose(model(big_batch)[5], model(big_batch[5:6])[0], atol=1e-6)
print("batch of 30 works, and row 5's logits do not depend on the batch:", same)

# %% [markdown]
# The library also refuses a sequence longer than its context with a clear message:

# %%
try:
    model(torch.zeros(1, 17, dtype=torch.long))
except ValueError as error:
    print("ValueError:", error)


# %% [markdown]
# ## Exercises
#
# Each test cell checks the exercise just above it, and nothing else in the notebook uses the
# exercises: skip one and the rest still runs. Silence means pass; otherwise the message says what
# is wrong.
#
# **Exercise 1 (implement, 2 points).** Write `count_gpt_parameters(vocab_size, context_length,
# d_model, n_layers, d_ff, positions)` by formula for the library's GPT with tied weights: token
# embedding, learned position table if `positions == "learned"` (sinusoidal has none), `n_layers`
# blocks (notebook 05's formula), and the final LayerNorm.

# %% solution="ex06_count_parameters"
def count_gpt_parameters(vocab_size, context_length, d_model, n_layers, d_ff, positions):
    ### BEGIN SOLUTION
    block = 4 * (d_model * d_model + d_model) + (2 * d_model * d_ff + d_ff + d_model) + 4 * d_model
    position_table = context_length * d_model if positions == "learned" else 0
    return vocab_size * d_model + position_table + n_layers * block + 2 * d_model
    ### END SOLUTION


# %% tests="ex06_count_parameters_tests" points=2
_n = count_gpt_parameters(100, 32, 64, 2, 256, "sinusoidal")
assert isinstance(_n, int), f"return an int, got {type(_n).__name__}"
_true = LibraryGPT(LibraryConfig(vocab_size=100, context_length=32, d_model=64, n_heads=4, n_layers=2, d_ff=256)).num_parameters()
_hints = {_true + 100 * 64: "the output layer is tied to the token embedding: that matrix counts once",
          _true + 32 * 64: "sinusoidal positions are a fixed table (a buffer), not parameters",
          _true - 2 * 64: "count the final LayerNorm (ln_f): 2 * d_model",
          _true - 2 * 4 * 64: "each block has two LayerNorms of 2 * d_model parameters each",
          _true - 2 * (4 * 64 + 256 + 64): "count the biases: the 4 attention projections' and both feed-forward layers'"}
assert _n == _true, _hints.get(_n, f"count_gpt_parameters(100, 32, 64, 2, 256, 'sinusoidal') = {_n:,}, but the model has {_true:,}")
_learned = LibraryGPT(LibraryConfig(vocab_size=100, context_length=32, d_model=64, n_heads=4, n_layers=2, d_ff=256,
                                    positions="learned")).num_parameters()
checks.expect_equal(count_gpt_parameters(100, 32, 64, 2, 256, "learned"), _learned,
                    "with learned positions (a context_length x d_model table of parameters)")
### BEGIN HIDDEN TESTS
_gen = checks.grading_generator("ex06_count_parameters")
_drawn = [tuple(torch.randint(low, high, (1,), generator=_gen).item() for low, high in ((2, 600), (1, 40), (1, 17), (1, 4), (1, 300)))
          for _ in range(3)]
for _args in [(500, 16, 32, 3, 64, "learned"), (7, 5, 8, 1, 3, "sinusoidal")] + [(v, c, 4 * d, n, f, ("learned", "sinusoidal")[i % 2]) for i, (v, c, d, n, f) in enumerate(_drawn)]:
    _cfg = LibraryConfig(vocab_size=_args[0], context_length=_args[1], d_model=_args[2], n_heads=4 if _args[2] % 4 == 0 else 1,
                         n_layers=_args[3], d_ff=_args[4], positions=_args[5])
    checks.expect_equal(count_gpt_parameters(*_args), LibraryGPT(_cfg).num_parameters(), f"count_gpt_parameters{_args}")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (predict, then run; 1 point).** A freshly initialised GPT with a vocabulary of 50,257
# words (GPT-2's): roughly what cross-entropy loss do you expect on random targets? Set
# `predicted_initial_loss` to a number (two decimals are plenty).

# %% solution="ex06_predict_loss"
predicted_initial_loss = None  # your answer
### BEGIN SOLUTION
predicted_initial_loss = math.log(50257)
### END SOLUTION

# %% tests="ex06_predict_loss_tests" points=1
checks.answered(predicted_initial_loss=predicted_initial_loss)
assert isinstance(predicted_initial_loss, (int, float)), "predicted_initial_loss must be a number"
### BEGIN HIDDEN TESTS
assert abs(predicted_initial_loss - 10.82) < 0.1
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (spot the bug, 2 points).** Write `seed_positions_fixed(dec_inputs)`: the position
# indices the seed *meant*, shape `(1, T)` for `dec_inputs` of shape `(batch, T)`, so that
# `pos_emb(positions)` broadcasts over the batch.

# %% solution="ex06_spot_the_bug"
def seed_positions_fixed(dec_inputs):
    ### BEGIN SOLUTION
    return torch.arange(dec_inputs.size(1), device=dec_inputs.device).unsqueeze(0)
    ### END SOLUTION


# %% tests="ex06_spot_the_bug_tests" points=2
_p = seed_positions_fixed(torch.zeros(3, 16, dtype=torch.long))
assert isinstance(_p, torch.Tensor), f"return a tensor of positions, got {type(_p).__name__}"
assert tuple(_p.shape) != (1, 3), "positions run along the sequence (dim 1, 16 here), not along the batch (dim 0, 3 here)"
checks.expect_shape(_p, (1, 16), "seed_positions_fixed for a batch of 3 sequences of 16 tokens: one row that broadcasts over the batch")
assert not _p.is_floating_point(), \
    f"positions index an embedding table (nn.Embedding): they must be integers, e.g. torch.arange(T), got {_p.dtype}"
checks.expect_equal(_p.tolist(), [list(range(16))], "the positions")
### BEGIN HIDDEN TESTS
assert seed_positions_fixed(torch.zeros(30, 5, dtype=torch.long)).tolist() == [[0, 1, 2, 3, 4]]
assert seed_positions_fixed(torch.zeros(1, 2, dtype=torch.long)).tolist() == [[0, 1]]
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# - GPT = token embedding + positions → $L$ pre-LN decoder blocks → final LayerNorm → LM head
#   (tied to the embedding).
# - An untrained model's loss is $\approx \ln V$: the check that the initialisation is sane.
# - Positions index the **sequence**, never the batch: the seed's bug, and its fix.
#
# **Next: [07 · Training on lang.txt](07_training_on_lang_txt.ipynb)**: tokenize a real text, train,
# and compare the loss with the lowest loss any model could reach.
