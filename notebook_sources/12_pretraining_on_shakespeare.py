# %% [markdown]
# # 12 · Pretraining on Shakespeare: a real corpus at real speed
#
# **Goal.** Train the course's GPT the way small language models are trained: on one long text
# (a megabyte of Shakespeare), cut into random windows, with the training loop practitioners use
# (warm-up and cosine decay, weight decay on the right parameters, gradient accumulation, mixed
# precision, fast attention) and on several processes when one is not enough. Measure everything in
# **bits per character**, so that models with different tokenizers can be compared, and next to
# nanoGPT's published figures.
#
# **You will build** the learning-rate schedule, the weight-decay groups, and the rank's share of a
# distributed batch, all kept in `course_lib.pretraining`, plus the token stream of
# `course_lib.stream`.
#
# On a CPU this notebook trains a small model for about 17 seconds. On a GPU it picks nanoGPT's
# `shakespeare_char` configuration by itself (section 7).

# %%
import math
import time

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import course_lib
from course_lib import checks
from course_lib.attention import recording_attention, scaled_dot_product_attention
from course_lib.bpe import BPETokenizer
from course_lib.data import data_path
from course_lib.gpt import GPT, GPTConfig
from course_lib.stream import encode_stream, random_windows, split_text
from course_lib.tokenizer import CharTokenizer

course_lib.seed_everything(0)
device = course_lib.get_device()
on_gpu = device.type == "cuda"
grading = course_lib.grading_run()  # under nbgrader: the ungraded training of section 7 runs a few steps only
print("device:", device)

# %% [markdown]
# ## 1. The corpus
#
# `data/shakespeare.txt` holds Shakespeare's plays: about a million characters, assembled from
# the public-domain Gutenberg texts of the `shakespeare` package (its content is CC-BY 2.5, Open
# Knowledge Foundation) by `tools/make_shakespeare.py`, which checks the download's and the
# output's sha256 (see `data/README.md`). It is the same kind of text as nanoGPT's
# `shakespeare_char`, so the figures below can be set side by side with nanoGPT's.

# %%
text = data_path("shakespeare.txt").read_text(encoding="utf-8")
print(f"{len(text):,} characters, {len(set(text))} distinct")
print(text[20_000:20_400])

# %% [markdown]
# ## 2. Tokens: characters, or byte pairs
#
# Notebook 07's word tokenizer needs one sentence per line and turns every unseen word into
# `<unk>`. A continuous text needs a tokenizer that can encode anything: **characters** (one token
# per distinct character, nanoGPT's `shakespeare_char`) or **byte-level BPE** (notebook 09).
# Notebook 09's BPE merged one pair at a time in Python; `course_lib.bpe.BPETokenizer` computes the
# same merges with NumPy (checked against the plain loop in `tests/test_bpe.py`), fast enough for a
# megabyte:

# %% tags=["nbval-ignore-output"]
chars = CharTokenizer.from_text(text)
started = time.perf_counter()
bpe = BPETokenizer.train(text, 512)
bpe_seconds = time.perf_counter() - started
started = time.perf_counter()
bpe_ids = bpe.encode(text)
encode_seconds = time.perf_counter() - started
print(f"characters: {len(chars)} tokens, 1.00 character per token")
print(f"BPE, 512 tokens: {len(text) / len(bpe_ids):.2f} characters per token; "
      f"learned in {bpe_seconds:.1f} s, encoded 1 MB in {encode_seconds:.1f} s")
assert bpe.decode(bpe_ids) == text

# %%
line = "O Romeo, Romeo! wherefore art thou Romeo?"
print(len(chars.encode(line)), "character tokens;", len(bpe.encode(line)), "BPE tokens:", bpe.token_strings(bpe.encode(line)))

# %% [markdown]
# ## 3. A token stream, cut into windows
#
# Encode the text once into a 1-D tensor of ids. Hold out its **last** 10% for validation (cut at a
# line break): text the model never sees, not random windows that would overlap the training ones.
# A training batch is `batch_size` windows of `context_length` tokens at random starts; each
# window's targets are the same window shifted by one token, so every position is a prediction.

# %%
train_text, val_text = split_text(text, 0.1)
train_ids, val_ids = encode_stream(chars, train_text), encode_stream(chars, val_text)
print(f"train: {len(train_ids):,} tokens; validation: {len(val_ids):,} tokens")
x, y = random_windows(train_ids, 24, 2, torch.Generator().manual_seed(0))
for row in range(2):
    print(repr(chars.decode(x[row])), "->", repr(chars.decode(y[row])))

# %% [markdown]
# ## 4. Bits per character
#
# A loss in nats per token depends on the tokenizer: a BPE token carries about two characters, so
# its loss per token is naturally higher. Divide by $\ln 2$ for bits, and multiply by tokens per
# character: **bits per character** compares any two models of the same text.
#
# Two baselines: a model that guesses uniformly among the characters pays $\log_2 76 = 6.25$ bits;
# one that knows only how often each character occurs pays the entropy of that distribution.

# %%
counts = torch.bincount(train_ids, minlength=len(chars)).double()
p = counts / counts.sum()
unigram_bits = -(p[p > 0] * p[p > 0].log2()).sum().item()
print(f"uniform: {math.log2(len(chars)):.2f} bits/char; character frequencies only: {unigram_bits:.2f} bits/char")
print(f"nanoGPT shakespeare_char, validation loss 1.47 nats = {1.47 / math.log(2):.2f} bits/char (GPU), "
      f"1.88 nats = {1.88 / math.log(2):.2f} bits/char (its CPU configuration)")


# %% [markdown]
# ## 5. The training loop practitioners use
#
# Notebook 07's `train` is five lines a step. `course_lib.pretraining.pretrain` is the same loop
# with what it takes to train a real model:
#
# | piece | why |
# |---|---|
# | **warm-up**, then **cosine decay** of the learning rate | Adam's first steps use poor estimates of the gradient's scale: start small; end small to settle into a minimum |
# | **weight decay on matrices only** | pulls weights towards 0 (a prior for simple models); not biases, LayerNorms or embeddings |
# | **gradient accumulation** | a batch too big for memory, in pieces: average the pieces' gradients, then step once |
# | **gradient clipping** | one rare huge gradient should not undo hours of training |
# | **mixed precision** | matrix products in bfloat16 (or float16 with a gradient scaler) run several times faster on GPUs |
# | **fused attention** | PyTorch's flash / memory-efficient kernels never build the $T \times T$ weights |
# | **`torch.compile`** (opt-in) | fuses the small operations between the matrix products |
# | **tokens/s and MFU** | how fast, and how close to the hardware's peak |
#
# ### The schedule
#
# **Exercise 1 (implement, 2 points).** Write `warmup_cosine(step, lr, min_lr, warmup, decay_steps)`,
# the learning rate of optimizer step `step` (0-based):
#
# - during warm-up (`step < warmup`): `lr * (step + 1) / warmup` (so the first step is not 0);
# - then half a cosine from `lr` down to `min_lr` over the steps from `warmup` to `decay_steps`:
#   `min_lr + 0.5 * (1 + cos(pi * progress)) * (lr - min_lr)`, with `progress = (step - warmup) /
#   (decay_steps - warmup)`;
# - `min_lr` from `decay_steps` on.

# %% solution="ex12_schedule"
def warmup_cosine(step, lr, min_lr, warmup, decay_steps):
    ### BEGIN SOLUTION
    if step < warmup:
        return lr * (step + 1) / warmup
    if step >= decay_steps:
        return min_lr
    progress = (step - warmup) / (decay_steps - warmup)
    return min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (lr - min_lr)
    ### END SOLUTION


# %% tests="ex12_schedule_tests" points=2
_curve = torch.tensor([float(warmup_cosine(s, 1.0, 0.1, 10, 100)) for s in range(120)], dtype=torch.float64)


def _at(step, expected, what, mistakes=None):
    checks.expect_close(_curve[step], torch.tensor(expected, dtype=torch.float64),
                        f"warmup_cosine({step}, lr=1.0, min_lr=0.1, warmup=10, decay_steps=100): {what}", atol=1e-6,
                        mistakes=mistakes)


_at(0, 0.1, "the first warm-up step", {"warm-up uses (step + 1) / warmup: the first step must not be 0": 0.0})
_at(9, 1.0, "the last warm-up step reaches lr", {"warm-up uses (step + 1) / warmup, so step 9 of 10 reaches lr": 0.9})
_at(10, 1.0, "the cosine starts at lr")
_at(55, 0.1 + 0.5 * (1 + math.cos(math.pi * 0.5)) * 0.9, "half-way down", {
    "the cosine's progress counts from the end of the warm-up: (step - warmup) / (decay_steps - warmup)":
        0.1 + 0.5 * (1 + math.cos(math.pi * 0.55)) * 0.9,
    "the cosine ends at min_lr, not at 0: min_lr + 0.5 * (1 + cos) * (lr - min_lr)": 0.5 * (1 + math.cos(math.pi * 0.5)),
})
_at(30, 0.1 + 0.5 * (1 + math.cos(math.pi * 20 / 90)) * 0.9, "on the way down", {
    "a cosine, not a straight line": 1.0 - 0.9 * 20 / 90,
})
_at(100, 0.1, "at decay_steps")
_at(119, 0.1, "after decay_steps it stays at min_lr")
### BEGIN HIDDEN TESTS
from course_lib.pretraining import TrainConfig, lr_at

for _w, _d in [(1, 50), (20, 20 + 7), (5, 300)]:
    _config = TrainConfig(steps=_d + 10, lr=3e-3, min_lr=2e-4, warmup_steps=_w, lr_decay_steps=_d)
    _ours = torch.tensor([float(warmup_cosine(_s, 3e-3, 2e-4, _w, _d)) for _s in range(_d + 10)], dtype=torch.float64)
    _reference = torch.tensor([lr_at(_s, _config) for _s in range(_d + 10)], dtype=torch.float64)
    checks.expect_close(_ours, _reference, f"warmup_cosine(step, 3e-3, 2e-4, {_w}, {_d}) for steps 0..{_d + 9}", atol=1e-8)
### END HIDDEN TESTS

# %% [markdown]
# The library's version, `lr_at(step, config)`, is checked in `tests/test_pretraining.py` against
# PyTorch's own `LinearLR` + `CosineAnnealingLR` schedulers, step by step. Its shape:

# %%
from course_lib.pretraining import TrainConfig, lr_at

_example = TrainConfig(steps=1000, lr=1e-3, min_lr=1e-4, warmup_steps=100)
fig, ax = plt.subplots(figsize=(6, 2.5))
ax.plot([lr_at(s, _example) for s in range(1000)])
ax.set_xlabel("step")
ax.set_ylabel("learning rate")
ax.set_title("linear warm-up (100 steps), cosine decay to min_lr")
plt.show()


# %% [markdown]
# ### Which parameters to decay
#
# AdamW's weight decay shrinks every parameter it is given by `lr * weight_decay` of itself at
# every step. That is a sensible prior for the weight matrices of the linear layers. It is not for
# the rest: a bias or a LayerNorm scale pulled towards 0 only distorts the layer, and an embedding
# row is used only when its token occurs, so decaying it at *every* step shrinks rare tokens'
# vectors towards nothing. (A head tied to the embedding *is* the embedding.)
#
# **Exercise 2 (implement, 2 points).** Write `decay_names(model)`: the names (as
# `model.named_parameters()` gives them) of the weight matrices of every `nn.Linear` in `model`,
# leaving out any that is also the weight of an `nn.Embedding` (a tied head). Order does not matter.

# %% solution="ex12_decay_groups"
def decay_names(model):
    ### BEGIN SOLUTION
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Embedding)}
    linear = {id(m.weight) for m in model.modules() if isinstance(m, torch.nn.Linear)}
    return [name for name, p in model.named_parameters() if id(p) in linear and id(p) not in embeddings]
    ### END SOLUTION


# %% tests="ex12_decay_groups_tests" points=2
_model = GPT(GPTConfig(vocab_size=20, context_length=8, d_model=16, n_heads=2, n_layers=2, d_ff=32, positions="learned"))
_names = sorted(decay_names(_model))
_expected = sorted(f"blocks.{i}.{part}.weight" for i in range(2)
                   for part in ("attn.w_q", "attn.w_k", "attn.w_v", "attn.w_o", "ffn.net.0", "ffn.net.2"))
assert len(set(_names)) == len(_names), f"a name is listed twice in {_names}"
for _name in _names:
    assert not _name.endswith("bias"), f"{_name} is a bias: biases are not decayed"
    assert "ln" not in _name, f"{_name} belongs to a LayerNorm: LayerNorm scales are not decayed"
    assert "embedding" not in _name, f"{_name} is an embedding: a row is used only when its token occurs, so it is not decayed"
checks.expect_equal(_names, _expected, "decay_names(GPT with 2 blocks)")
### BEGIN HIDDEN TESTS
_untied = GPT(GPTConfig(vocab_size=20, context_length=8, d_model=16, n_heads=2, n_layers=1, d_ff=32, tie_weights=False))
from course_lib.pretraining import decay_parameter_names

checks.expect_equal(sorted(decay_names(_untied)), sorted(decay_parameter_names(_untied)), "decay_names with an untied head")
_plain = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.LayerNorm(4), torch.nn.Linear(4, 2, bias=False))
checks.expect_equal(sorted(decay_names(_plain)), ["0.weight", "2.weight"], "decay_names(Linear, LayerNorm, Linear)")


class _Renamed(torch.nn.Module):  # an embedding and a tied head under other names than the GPT's
    def __init__(self):
        super().__init__()
        self.wte, self.proj, self.head = torch.nn.Embedding(10, 4), torch.nn.Linear(4, 4), torch.nn.Linear(4, 10, bias=False)
        self.head.weight = self.wte.weight


checks.expect_equal(sorted(decay_names(_Renamed())), ["proj.weight"], "decay_names with an embedding named wte and a tied head")
### END HIDDEN TESTS

# %% [markdown]
# ### Fast attention: the same numbers, without the $T \times T$ matrix
#
# Since this notebook, `MultiHeadAttention` computes attention with PyTorch's fused
# `torch.nn.functional.scaled_dot_product_attention`: on a GPU the flash-attention kernel, which
# never writes the `(batch, heads, T, T)` weights to memory. The course's own function (notebook
# 01) still runs when the weights are wanted: inside `with recording_attention(model):`, as notebooks
# 02, 05 and 07 draw them. Same outputs and gradients (checked to 1e-5 in `tests/test_attention.py`):

# %% tags=["nbval-ignore-output"]
q, k, v = (torch.randn(8, 4, 256, 32, requires_grad=True) for _ in range(3))
causal = torch.ones(256, 256, dtype=torch.bool).tril()
ours, _ = scaled_dot_product_attention(q, k, v, causal)
fused = F.scaled_dot_product_attention(q, k, v, is_causal=True)
print(f"max |ours - fused| = {(ours - fused).abs().max().item():.1e}")
assert torch.allclose(ours, fused, atol=1e-5)


def seconds(run, repeat=5):
    best = math.inf
    for _ in range(repeat):
        started = time.perf_counter()
        run().sum().backward()
        best = min(best, time.perf_counter() - started)
    return best


ours_s = seconds(lambda: scaled_dot_product_attention(q, k, v, causal)[0])
fused_s = seconds(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True))
print(f"forward + backward, context 256, CPU: ours {1e3 * ours_s:.1f} ms, fused {1e3 * fused_s:.1f} ms "
      f"({ours_s / fused_s:.1f}x faster)")

# %% [markdown]
# ### Model FLOPs utilisation
#
# Training on one token costs about $6N + 12LTd$ floating-point operations: each of the $N$ weights
# of the matrix products is a multiply and an add forward and twice that backward, and attention
# adds its scores and mixing ($L$ layers, context $T$, width $d$). MFU is tokens/s times that,
# divided by the hardware's peak (known for common GPUs in bfloat16; not printed on a CPU).
# PyTorch's own FLOP counter agrees exactly (attention recorded as plain matrix products, which it
# can count):

# %%
from course_lib.pretraining import model_flops_per_token

_small = GPT(GPTConfig(vocab_size=len(chars), context_length=64, d_model=64, n_heads=4, n_layers=2, d_ff=256))
_ids = torch.randint(0, len(chars), (1, 64))
with recording_attention(_small), FlopCounterMode(display=False) as counter:
    _small(_ids, _ids)[1].backward()
print(f"formula: {model_flops_per_token(_small.config) * 64:,} FLOPs; PyTorch's counter: {counter.get_total_flops():,}")
assert counter.get_total_flops() == model_flops_per_token(_small.config) * 64


# %% [markdown]
# ## 6. Beyond one machine: distributed data parallel
#
# With $N$ processes (GPUs, or CPU cores with the gloo backend), each holds a copy of the model, runs
# forward and backward on **its share** of the batch, and `DistributedDataParallel` averages the
# gradients across processes during the backward pass. Every copy then takes the same step. In the
# course every process draws the same global batch of window starts from the same seed, and takes
# its own slice, so $N$ processes compute exactly the gradient one process computes on the whole
# batch (tested on 2 CPU processes in `tests/test_pretraining.py`):
#
# ```bash
# torchrun --nproc_per_node=2 -m course_lib train --tokenizer char --data data/shakespeare.txt --out runs/s.pt
# ```
#
# Rank 0 alone prints and writes the checkpoint; `--resume runs/s.pt` continues it.
#
# **Exercise 3 (spot the bug, 2 points).** This helper gives a process its rows of the global
# batch. Training with it on 4 GPUs is no better than on one. Find the bug, then write
# `fixed_rows_for_rank(starts, rank, world_size)`: the `rank`-th of `world_size` equal, disjoint
# shares of `starts` (a 1-D tensor whose length is a multiple of `world_size`), which together hold
# every row.

# %%
def rows_for_rank(starts, rank, world_size):
    per_rank = len(starts) // world_size
    return starts[:per_rank]


# %% solution="ex12_ddp_bug"
def fixed_rows_for_rank(starts, rank, world_size):
    ### BEGIN SOLUTION
    per_rank = len(starts) // world_size
    return starts[rank * per_rank:(rank + 1) * per_rank]
    ### END SOLUTION


# %% tests="ex12_ddp_bug_tests" points=2
_starts = torch.arange(100, 112)
_shares = [fixed_rows_for_rank(_starts, r, 4) for r in range(4)]
assert not all(torch.equal(_shares[0], s) for s in _shares[1:]), \
    "every rank gets the same rows: the processes then average 4 copies of one gradient. Use the rank to pick its share"
for _r, _share in enumerate(_shares):
    checks.expect_shape(_share, (3,), f"fixed_rows_for_rank(12 starts, rank={_r}, world_size=4)")
_all = torch.cat(_shares).sort().values
checks.expect_equal(_all.tolist(), _starts.tolist(), "the 4 shares put together (each row exactly once)")
### BEGIN HIDDEN TESTS
_starts = torch.randperm(1000, generator=checks.grading_generator("ex12_ddp_bug"))[:24]
for _world in (1, 2, 3, 8):
    _shares = [fixed_rows_for_rank(_starts, r, _world) for r in range(_world)]
    checks.expect_equal(sorted(torch.cat(_shares).tolist()), sorted(_starts.tolist()),
                        f"the {_world} shares of 24 starts put together")
    checks.expect_equal([len(s) for s in _shares], [24 // _world] * _world, f"the sizes of {_world} shares")
### END HIDDEN TESTS

# %% [markdown]
# ## 7. Training
#
# The CPU configuration is small: 3 blocks of width 96, context 32, 32 windows a step, 600 steps
# at a peak learning rate of 1e-2: about 17 seconds on two cores. On a GPU it is nanoGPT's
# `shakespeare_char` model: 6 blocks of width 384, context 256, 64 windows a step, dropout 0.2,
# 5,000 steps at 1e-3 in bfloat16.
#
# One choice differs from notebook 07: `scale_embeddings=False`. With *learned* positions, word
# and position vectors start at the same scale, and multiplying the word vectors by $\sqrt{d}$
# made them drown the positions: measured on this text and model, 2.49 against 2.32 nats after
# 500 steps.

# %%
if on_gpu:  # nanoGPT's shakespeare_char configuration
    config = GPTConfig(vocab_size=len(chars), context_length=256, d_model=384, n_heads=6, n_layers=6, d_ff=1536,
                       dropout=0.2, positions="learned", scale_embeddings=False)
    train_config = TrainConfig(steps=5000, batch_size=64, lr=1e-3, min_lr=1e-4, warmup_steps=100, eval_every=500,
                               eval_windows=200, precision="auto", compile=True)
else:
    config = GPTConfig(vocab_size=len(chars), context_length=32, d_model=96, n_heads=4, n_layers=3, d_ff=384,
                       positions="learned", scale_embeddings=False)
    train_config = TrainConfig(steps=20 if grading else 600, batch_size=32, lr=1e-2, min_lr=1e-3,
                               warmup_steps=5 if grading else 30, eval_every=10 if grading else 150,
                               eval_windows=200, weight_decay=0.1)
course_lib.seed_everything(0)
model = GPT(config)
print(f"{model.num_parameters():,} parameters; {train_config.steps} steps of {train_config.batch_size} x "
      f"{config.context_length} tokens on {device}")

# %% [markdown]
# Train in two halves, the second *resumed* from the checkpoint the first wrote: the checkpoint
# holds the weights, the optimizer's moments, the step, the batch generator's and the dropout's
# random states, so the resumed run is bitwise the run that never stopped (`tests/test_pretraining.py`
# checks it). A crash, a closed laptop or a Colab time-out costs only the steps since the last save.

# %% tags=["nbval-ignore-output"]
from pathlib import Path

from course_lib.pretraining import pretrain

checkpoint = Path("runs") / "shakespeare.pt"
log = []
first = pretrain(model, train_ids, val_ids, train_config, out=checkpoint, tokenizer=chars, progress=False,
                 on_log=log.append, stop_after=train_config.steps // 2)
print(f"stopped at step {first['step'][-1]}; checkpoint: {checkpoint}")

# %% tags=["nbval-ignore-output"]
from course_lib.training import load_checkpoint

model, _ = load_checkpoint(checkpoint, device=device)
history = pretrain(model, train_ids, val_ids, train_config, out=checkpoint, tokenizer=chars, resume_from=checkpoint,
                   progress=False, on_log=log.append)
for record in log:
    mfu = f", MFU {record['mfu']:.0%}" if record["mfu"] is not None else ""
    print(f"step {record['step']:5d}  train {record['loss']:.3f}  val {record['val_loss']:.3f} nats "
          f"= {record['val_bpc']:.2f} bits/char  ({record['tokens_per_s']:,.0f} tokens/s{mfu})")
final = history["val_loss"][-1]
print(f"\n{history['seconds']:.0f} s of training in all")

# %% [markdown]
# What the run must reach (asserted, so that CI notices a regression): on the CPU configuration a
# validation loss below 2.45 nats per character (measured: 2.12 nats = 3.06 bits/char on the 2-core
# AMD EPYC this notebook was stored on); on the GPU configuration below 1.6.

# %%
assert grading or final < (1.6 if on_gpu else 2.45), f"validation loss {final:.3f}"
print(f"validation loss below {'1.6' if on_gpu else '2.45'} nats per character: yes")

# %% tags=["nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(6, 3))
ax.plot(history["step"], history["loss"], alpha=0.5, label="training (one batch)")
ax.plot(history["val_step"], history["val_loss"], "o-", label="validation")
ax.axhline(1.47, color="gray", ls=":", label="nanoGPT on an A100 (1.47)")
ax.set_xlabel("step")
ax.set_ylabel("nats per character")
ax.legend()
plt.show()

# %% [markdown]
# ### Samples
#
# Low temperatures repeat the most common patterns; high ones invent words. The model has learned
# the play's layout (names in capitals, a colon, a line break) before it has learned English.

# %% tags=["nbval-ignore-output"]
from course_lib.sampling import generate_text

for temperature in (0.5, 0.8, 1.0):
    sample = generate_text(model, chars, "ROMEO:\n", max_new_tokens=200, temperature=temperature,
                           generator=torch.Generator().manual_seed(0))
    print(f"--- temperature {temperature}\n{sample}\n")

# %% [markdown]
# ### Next to nanoGPT
#
# | model | where | validation loss | bits per character |
# |---|---|---|---|
# | nanoGPT `shakespeare_char` (10.7 M parameters, 5,000 steps) | one A100, about 3 minutes | 1.47 | 2.12 |
# | nanoGPT, its CPU configuration (0.8 M parameters, 2,000 steps) | a MacBook, about 3 minutes | 1.88 | 2.71 |
# | this notebook, CPU configuration (0.35 M parameters, 600 steps) | 2-core AMD EPYC, 17 s | 2.12 | 3.06 |
# | this notebook, GPU configuration (10.7 M parameters, 5,000 steps) | not measured yet | — | — |
#
# nanoGPT's figures are from its README; the course's were measured by running this notebook. The
# corpora differ slightly (nanoGPT uses the 1.1 MB `tinyshakespeare`; ours is 1.0 MB from other
# editions of the plays), so compare the size of the gap, not the third decimal.

# %% [markdown]
# ## Summary
#
# - A real corpus is one stream of tokens; train on random windows, validate on the held-out end,
#   and report **bits per character** to compare tokenizers (characters: 76 tokens; BPE: 512
#   tokens, 1.95 characters per token).
# - The practitioner's loop: warm-up + cosine, decay on weight matrices only, accumulation,
#   clipping, bfloat16 / float16 + scaler, fused attention, `torch.compile`, tokens/s and MFU.
# - Checkpoints with the optimizer, step and random states make `--resume` exact; several
#   processes with DDP compute the one-process gradient of the whole batch.
# - Measured on a 2-core CPU: 2.12 nats (3.06 bits) per character in 17 seconds; nanoGPT's
#   GPU configuration reaches 1.47 in 3 minutes on an A100.
#
# **Next:** load the real GPT-2's weights into this same model class.
