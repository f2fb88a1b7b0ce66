# %% [markdown]
# # 07 · Training on lang.txt
#
# **Goal.** Train the GPT of notebook 06 on the course's text, `data/lang.txt` (twenty sentences
# about programming and AI), and know how good "good" is: compute the lowest loss *any* model could
# reach on this corpus, and watch the model approach it.
#
# **You will build** the tokenizer and batches (`course_lib.tokenizer`), the corpus floor, and the
# training loop (`course_lib.training.train`, `evaluate`, `save_checkpoint`, `load_checkpoint`).

# %%
import math
from collections import Counter
from pathlib import Path

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F

import course_lib
from course_lib import checks
from course_lib.attention import recording_attention
from course_lib.data import load_sentences
from course_lib.gpt import GPT, GPTConfig
from course_lib.plotting import plot_attention_heads

course_lib.seed_everything(0)
torch.set_printoptions(precision=4, sci_mode=False)
device = course_lib.get_device()  # a GPU when there is one; the stored outputs come from a CPU

# %% [markdown]
# ## 1. The text and its words
#
# One sentence per line. The tokenizer is word-level: split on spaces, one id per distinct word,
# plus four special tokens: `<pad>` (0) fills short rows, `<sos>` (1) starts a sentence, `<eos>` (2)
# ends it, `<unk>` (3) stands for any unknown word. Punctuation stays attached ("language." and
# "language" are different words), as in the seed code: crude, but it keeps the example small.
# Notebook 09 builds better tokenizers.

# %%
from course_lib.tokenizer import WordTokenizer, make_batch

sentences = load_sentences("lang.txt")
tokenizer = WordTokenizer.from_sentences(sentences)
print(f"{len(sentences)} sentences, {sum(len(s.split()) for s in sentences)} words, vocabulary of {len(tokenizer)} (4 special)")
print("first words of the vocabulary:", tokenizer.itos[:12])
ids = tokenizer.encode(sentences[1], add_sos=True, add_eos=True)
print(sentences[1], "->", ids, "->", repr(tokenizer.decode(ids)))

# %% [markdown]
# ## 2. Inputs and next-token targets
#
# A language model learns $p(x_{t+1} \mid x_0 \dots x_t)$ at every position at once: the targets are
# the inputs shifted left by one. Rows are right-padded to the longest sentence.

# %%
inputs, targets = make_batch(tokenizer, sentences)  # (20, 16) each
print("inputs:", tuple(inputs.shape), " targets:", tuple(targets.shape))
row = 1
print(f"{'position':>8} {'input':>10} -> target")
for t in range(inputs.shape[1]):
    print(f"{t:8d} {tokenizer.itos[inputs[row, t]]:>10} -> {tokenizer.itos[targets[row, t]]}")

# %% [markdown]
# ## 3. The floor: the best loss any model can reach
#
# Suppose a model memorised the whole corpus perfectly. Could its loss reach 0? No: training
# sentences come in random order, so after `<sos>` even a perfect memoriser can only know the
# *distribution* of first words: "I" starts 7 of the 20 sentences, so the best it can do is give "I"
# probability 7/20. Wherever several sentences share a prefix ("I am ..."), it must split its bet
# again. Everywhere else it can be certain.
#
# The best possible prediction after a prefix is the fraction of corpus sentences with that prefix
# that continue with each word:
#
# $$p^*(w \mid \text{prefix}) = \frac{\#\,\text{sentences starting with prefix}+w}{\#\,\text{sentences starting with prefix}}$$
#
# and the floor is the mean of $-\ln p^*$ over every target (words and `<eos>`, not padding).

# %%
sequences = [tuple(tokenizer.encode(s, add_sos=True, add_eos=True)) for s in sentences]
prefix_count = Counter(seq[:t] for seq in sequences for t in range(1, len(seq) + 1))
losses = [-math.log(prefix_count[seq[:t + 1]] / prefix_count[seq[:t]])
          for seq in sequences for t in range(1, len(seq))]
floor = sum(losses) / len(losses)
print(f"{len(losses)} targets; the floor is {floor:.4f} nats per token")

from course_lib.training import corpus_floor

assert abs(corpus_floor(tokenizer, sentences) - floor) < 1e-12

# %%
first_words = Counter(s.split()[0] for s in sentences)
fig, ax = plt.subplots(figsize=(9, 3))
ax.bar(list(first_words), [c / 20 for c in first_words.values()])
ax.set_ylabel("p*(first word)")
ax.set_title("the uncertainty no model can remove: which sentence comes next")
plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
plt.show()

# %% [markdown]
# ## 4. Train
#
# The course's default configuration: `GPTConfig` as it stands (2 layers, `d_model` 64, 4 heads,
# `d_ff` 256, sinusoidal positions, about 0.1 M parameters), AdamW at learning rate 1e-2, the whole
# corpus as one batch each step, gradients clipped to norm 1, and a loss that **ignores padding**.
# `train` measures the loss over the whole corpus every 10 steps.
#
# The heart of the loop is one step of gradient descent, five lines. This is the library's own
# `train_step`, the code that runs below, printed from its source:

# %%
import inspect

from course_lib.training import train_step

print(inspect.getsource(train_step))

# %% [markdown]
# `train` wraps it with what every real loop needs: batches drawn with a seeded generator, the loss
# over the whole corpus every few steps, a progress bar, a stop on NaN, and Ctrl-C (or the stop
# button) ending training early without losing what was learned. The optimizer comes from
# `make_optimizer`: AdamW in PyTorch's *fused* form, one kernel for all parameters instead of a Python
# loop over them (on a model this small, the loop was a third of the step's time).

# %% tags=["nbval-ignore-output"]
from course_lib.training import evaluate, train

config = GPTConfig(vocab_size=len(tokenizer))
course_lib.seed_everything(0)
model = GPT(config).to(device)
data = (inputs, targets)
history = train(model, data, steps=300, pad_id=tokenizer.pad_id, eval_every=10)
final_loss = evaluate(model, data, pad_id=tokenizer.pad_id)
reached = next(s for s, l in zip(history["eval_step"], history["eval_loss"]) if l <= 1.02 * floor)
print(f"{model.num_parameters():,} parameters; training took {history['seconds']:.2f} s on {device}")
print(f"corpus loss after 300 steps: {final_loss:.4f} = {final_loss / floor:.3f} x the floor")
print(f"first reached 1.02 x the floor at step {reached}")

# %%
assert final_loss < 1.02 * floor, final_loss
assert final_loss > floor - 1e-3, "below the floor is impossible: a bug in the loss or the floor"

# %%
fig, ax = plt.subplots(figsize=(8, 4))
ax.plot(history["step"], history["loss"], label="training loss (each step)", alpha=0.6)
ax.plot(history["eval_step"], history["eval_loss"], "o-", markersize=3, label="corpus loss (every 10 steps)")
ax.axhline(floor, color="black", linestyle="--", label=f"floor {floor:.4f}")
ax.set_yscale("log")
ax.set_xlabel("step")
ax.set_ylabel("loss (nats per token)")
ax.set_title("the course's GPT on lang.txt")
ax.legend()
plt.show()


# %% [markdown]
# From $\ln 134 \approx 4.9$ the loss falls by a factor of about 20 and flattens onto the floor.
#
# **How fast?** Measured with `python benchmarks/time_to_floor.py` on this course's CI machine
# (AMD EPYC, 2 CPU threads, PyTorch 2.13.0 CPU build), training time only:
#
# | configuration | parameters | steps to 1.02 × floor | seconds |
# |---|---|---|---|
# | course default (2 × 64, full batch, lr 1e-2) | 108,672 | 60 | 0.36 |
# | an independent nanoGPT-style model, same size and loop | 110,720 | 55 | 0.26 |
# | the seed's (6 × 512, batch 3, lr 1e-4) | 19,000,320 | not within 500 (1.081 × at step 500) | 42.6 for 500 steps |
#
# A model 175 times smaller, trained on the whole (tiny) corpus at once with a larger learning rate,
# gets there far faster. Bigger is not better when the data is twenty sentences.
#
# ### What the initialisation costs: measured
#
# Notebook 06 scaled the token vectors by $\sqrt{d_\text{model}}$ so that the words are not drowned
# by the positions. Here is what that buys, and what weight tying costs, on this corpus: the same
# model trained four ways, same seed, counting the steps to 1.02 × the floor. The step counts can
# move by a few steps on another CPU (rounding), so the cell asserts the comparison, not the numbers.

# %% tags=["nbval-ignore-output"]
def steps_to_floor(**config_changes):
    course_lib.seed_everything(0)
    trial = GPT(GPTConfig(vocab_size=len(tokenizer), **config_changes)).to(device)
    run = train(trial, (inputs, targets), steps=400, pad_id=tokenizer.pad_id, eval_every=5,
                stop_at=1.02 * floor, progress=False)
    return run["eval_step"][-1]


ablation = {}
for scale in (True, False):
    for tie in (True, False):
        ablation[scale, tie] = steps_to_floor(scale_embeddings=scale, tie_weights=tie)
        print(f"scale_embeddings={scale!s:5}  tie_weights={tie!s:5}  -> {ablation[scale, tie]:3d} steps")

# %%
assert ablation[True, True] <= 0.75 * ablation[False, True], "scaling should save a quarter of the steps or more"
assert ablation[False, False] < ablation[False, True], "untying helps when the words are drowned"

# %% [markdown]
# Unscaled and tied is the slowest: the small word vectors must serve as inputs drowned by the
# positions *and* as the output layer. Untying gives the output its own matrix; scaling lets the
# inputs be heard. The default (scaled and tied) keeps tying's saving of parameters (a third of
# GPT-2's, section 3 of notebook 06) at about the speed of an untied model. On a corpus of twenty
# sentences, the untied model is faster still, but its extra matrix does not pay at a 50k vocabulary.

# %% [markdown]
# ## 5. Why the loss must ignore padding
#
# The seed computes `CrossEntropyLoss()(outputs, targets)` over every position, padding included.
# 83 of the 320 targets here are `<pad>`, and after `<eos>` they are trivially predictable. Train a
# second model the seed's way (same seed, same 60 steps; `pad_id=None` counts every target) and
# compare what each loss *reports* with what each model *achieves* on the real targets:

# %% tags=["nbval-ignore-output"]
n_pad = int((targets == tokenizer.pad_id).sum())
print(f"{n_pad} of {targets.numel()} targets ({n_pad / targets.numel():.0%}) are padding; floor {floor:.4f}\n")
print(f"{'60 steps, loss that...':26s} {'reported loss':>14s} {'real-token loss':>16s}")
for label, pad_id in [("ignores padding (course)", tokenizer.pad_id), ("counts padding (seed)", None)]:
    course_lib.seed_everything(0)
    trial = GPT(config).to(device)
    trial_history = train(trial, data, steps=60, pad_id=pad_id, progress=False)
    reported = evaluate(trial, data, pad_id=pad_id)
    real = evaluate(trial, data, pad_id=tokenizer.pad_id)
    print(f"{label:26s} {reported:14.4f} {real:16.4f}  ({real / floor:.3f} x floor)")
    if pad_id is None:
        seed_reported, seed_real = reported, real

# %%
assert seed_reported < floor, "counting padding reports a loss below what any model can reach"
assert seed_real > floor

# %% [markdown]
# The seed-style number falls *below the floor*, which no model can do on real text: it is partly
# measuring how well the model predicts padding after padding. The model trained that way is also no
# better, and slightly worse, on the sentences themselves, because part of its gradient went to
# predicting `<pad>`. A loss you cannot compare with the floor cannot tell you when to stop.

# %% [markdown]
# `course_lib`'s `GPT.forward(..., pad_id=...)` passes `ignore_index=pad_id` to the cross-entropy, and
# its tests fail if padding is ever counted.
#
# **And one more correction to the seed.** Its summary says GPT is pre-trained by *masked language
# modelling* (hiding words and predicting them from both sides). That is BERT's objective. GPT is
# trained exactly as above: **causal language modelling**, predicting each next token from the ones
# before it, with the causal mask of notebook 04 making sure it cannot peek.

# %% [markdown]
# ## 6. What the trained model attends to
#
# Attention maps of both layers on one sentence, head by head.

# %%
sentence = sentences[3]
ids = torch.tensor([tokenizer.encode(sentence, add_sos=True)], device=device)
model.eval()
with torch.no_grad(), recording_attention(model):  # keep the weights to draw them (notebook 02)
    model(ids)
labels = ["<sos>"] + sentence.split()
for layer, weights in enumerate(model.attention_weights):
    fig = plot_attention_heads(weights.cpu(), labels, title=f"layer {layer}: '{sentence}'")
    plt.show()

# %% [markdown]
# In layer 0 most heads look at the current word or the one just before it: the model first works
# out *where* it is and *what* it just read. In layer 1 several heads reach further back, some to
# `<sos>` (a "nothing special here" default) and some to a distinctive earlier word such as
# "Machine" that identifies the sentence, which is what a memoriser needs to know what comes next.
# (These patterns come from one training run; with another seed the same roles can land in
# different heads.) Compare with the untrained maps of notebooks 02 and 05.

# %% [markdown]
# ## 7. Save, reload, write
#
# A checkpoint holds the configuration, the weights and the tokenizer. `load_checkpoint` reads it with
# `torch.load(..., weights_only=True)`, which cannot execute code hidden in a file, and refuses files
# that are not course checkpoints.

# %%
from course_lib.sampling import generate_text
from course_lib.training import load_checkpoint, save_checkpoint

path = save_checkpoint(Path("runs") / "lang.pt", model, tokenizer)
reloaded, reloaded_tokenizer = load_checkpoint(path, device=device)
with torch.no_grad():
    assert torch.equal(reloaded(ids), model(ids))
print(f"saved and reloaded {path.as_posix()}: identical logits")
print("greedy continuation of 'Python':", generate_text(reloaded, reloaded_tokenizer, "Python", temperature=0))

# %%
not_a_checkpoint = Path("runs") / "not_a_checkpoint.pt"
not_a_checkpoint.write_text("hello")
try:
    load_checkpoint(not_a_checkpoint)
except ValueError as error:
    print("ValueError:", str(error).split(" (")[0].replace(str(Path.cwd()), "."))


# %% [markdown]
# ## Exercises
#
# Each test cell checks the exercise just above it, and nothing else in the notebook uses the
# exercises: skip one and the rest still runs. Silence means pass; otherwise the message says what
# is wrong.
#
# **Exercise 1 (implement, 2 points).** Write `masked_mean_loss(logits, targets, pad_id)`: the mean
# cross-entropy over the targets that are not `pad_id`, for `logits` `(batch, T, vocab)` and
# `targets` `(batch, T)`, **without** using `ignore_index` (select or weight the positions yourself).

# %% solution="ex07_masked_loss"
def masked_mean_loss(logits, targets, pad_id):
    ### BEGIN SOLUTION
    per_token = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")
    real = (targets.reshape(-1) != pad_id).to(per_token.dtype)
    return (per_token * real).sum() / real.sum()
    ### END SOLUTION


# %% tests="ex07_masked_loss_tests" points=2
_logits = torch.randn(2, 4, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
_targets = torch.tensor([[1, 2, 0, 0], [3, 4, 5, 0]])  # 5 real targets, 3 padding (pad_id 0)
_loss = masked_mean_loss(_logits, _targets, 0)
checks.expect_shape(_loss, (), "masked_mean_loss(...): a single number (a 0-d tensor)")
_per_token = F.cross_entropy(_logits.reshape(-1, 6), _targets.reshape(-1), reduction="none")
_real = (_targets.reshape(-1) != 0).double()
checks.expect_close(_loss, (_per_token * _real).sum() / _real.sum(), "masked_mean_loss", atol=1e-8, mistakes={
    "that is the mean over every target, padding included: average over the real targets only": _per_token.mean(),
    "divide by the number of real targets (5 here), not by the number of all targets (8)": (_per_token * _real).sum() / 8,
    "keep the targets that are NOT padding: targets != pad_id": (_per_token * (1 - _real)).sum() / (1 - _real).sum(),
    "average over all real targets at once, not sentence by sentence (sentences have different lengths)":
        ((_per_token * _real).view(2, 4).sum(1) / _real.view(2, 4).sum(1)).mean(),
})
### BEGIN HIDDEN TESTS
checks.expect_close(masked_mean_loss(_logits, _targets, 0), F.cross_entropy(_logits.reshape(-1, 6), _targets.reshape(-1), ignore_index=0),
                    "masked_mean_loss", atol=1e-8)
_pad = int(torch.randint(1, 6, (1,), generator=checks.grading_generator("ex07_masked_loss")))
checks.expect_close(masked_mean_loss(_logits, _targets, _pad),
                    F.cross_entropy(_logits.reshape(-1, 6), _targets.reshape(-1), ignore_index=_pad),
                    f"masked_mean_loss with pad_id={_pad}", atol=1e-8)
_more = torch.cat([_targets, torch.zeros(2, 3, dtype=torch.long)], 1)
_more_logits = torch.cat([_logits, torch.randn(2, 3, 6, dtype=torch.float64)], 1)
assert torch.allclose(masked_mean_loss(_more_logits, _more, 0), masked_mean_loss(_logits, _targets, 0))
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (predict, then run; 1 point).** A corpus of two sentences: "I like cats" and "I like
# dogs". What is its floor, in nats per token (targets: every word and `<eos>`)? Work it out on paper,
# set `predicted_floor`, then check with `corpus_floor`.

# %% solution="ex07_predict_floor"
predicted_floor = None  # your answer
### BEGIN SOLUTION
predicted_floor = math.log(2) / 4  # 4 targets per sentence; only "cats"/"dogs" is uncertain (p = 1/2)
### END SOLUTION

# %% tests="ex07_predict_floor_tests" points=1
checks.answered(predicted_floor=predicted_floor)
assert isinstance(predicted_floor, float), "predicted_floor must be a float"
### BEGIN HIDDEN TESTS
_pair = ["I like cats", "I like dogs"]
assert abs(predicted_floor - corpus_floor(WordTokenizer.from_sentences(_pair), _pair)) < 1e-6
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (spot the bug, 2 points).** This loop trains badly: the loss falls at first, then
# wanders. Find the bug, then write `fixed_train_steps` (same arguments, returns the list of losses).

# %%
def buggy_train_steps(model, data, steps, lr=1e-2):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        _, loss = model(data[0], data[1], pad_id=0)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


# %% solution="ex07_spot_the_bug"
def fixed_train_steps(model, data, steps, lr=1e-2):
    ### BEGIN SOLUTION
    # Without zero_grad, each backward() ADDS to the gradients of every earlier step.
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        _, loss = model(data[0], data[1], pad_id=0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
    ### END SOLUTION


# %% tests="ex07_spot_the_bug_tests" points=2
# With lr=0 the weights never move, so every step computes the same gradient g: after 3 steps a
# correct loop holds g in .grad (for optimizer.step()), a loop that never clears it holds 3 g.
course_lib.seed_everything(1)
_model = GPT(GPTConfig(vocab_size=len(tokenizer)))
_losses = fixed_train_steps(_model, (inputs, targets), 3, lr=0.0)
assert len(_losses) == 3 and all(isinstance(_l, float) for _l in _losses), "return the list of the 3 losses, as floats (loss.item())"
_after = [torch.zeros_like(_p) if _p.grad is None else _p.grad.clone() for _p in _model.parameters()]
_model.zero_grad()
_model(inputs, targets, pad_id=0)[1].backward()
_one = [_p.grad for _p in _model.parameters()]
_cleared = all(not _a.any() for _a in _after)  # also right: clearing them after step()
if not _cleared and all(torch.allclose(_a, 3 * _g) for _a, _g in zip(_after, _one)):
    raise AssertionError("after 3 steps the gradient is 3 times one step's: backward() ADDS to .grad, so every step also "
                         "followed the gradients of all the steps before it. Clear them each step.")
assert _cleared or all(torch.allclose(_a, _g) for _a, _g in zip(_after, _one)), "each step must use exactly its own gradient"
course_lib.seed_everything(1)
_losses = fixed_train_steps(GPT(GPTConfig(vocab_size=len(tokenizer))), (inputs, targets), 5)
assert len(set(_losses)) > 1, ("the loss never changes: step() found no gradients. Clear them before backward(), "
                               "not between backward() and step()")
assert _losses[-1] < _losses[0], "with lr=1e-2 the loss should fall over 5 steps"
### BEGIN HIDDEN TESTS
def _reference_steps(model, data, steps, lr=1e-2):
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        _, loss = model(data[0], data[1], pad_id=0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


course_lib.seed_everything(2)
_mine = fixed_train_steps(GPT(GPTConfig(vocab_size=len(tokenizer))), (inputs, targets), 30)
course_lib.seed_everything(2)
_theirs = _reference_steps(GPT(GPTConfig(vocab_size=len(tokenizer))), (inputs, targets), 30)
checks.expect_close(torch.tensor(_mine), torch.tensor(_theirs), "the losses of 30 steps", atol=1e-4)
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# - Tokenize, add `<sos>`/`<eos>`, pad, shift by one: inputs and next-token targets.
# - The corpus floor (0.2528 nats per token on lang.txt) is the loss of a perfect memoriser; the
#   course's small GPT reaches 1.02 × the floor in about 60 steps, under half a second on a 2-core CPU.
# - The loss must ignore padding; GPT is trained by next-token prediction, not masked LM.
#
# **Next: [08 · Sampling](08_sampling.ipynb)**: greedy decoding, temperature, top-k and top-p, with
# a slider to play with.
