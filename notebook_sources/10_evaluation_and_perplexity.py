# %% [markdown]
# # 10 · Evaluation and perplexity: memorising vs generalising
#
# **Goal.** Measure a language model on text it has *not* trained on. Define perplexity, split data
# into training and validation sets, and see the difference between a model that memorises
# (lang.txt) and one that generalises (stories.txt). Keep the checkpoint with the best validation
# loss: early stopping.
#
# **You will use** `train(..., val_data=..., restore_best=True)` and `perplexity` from
# `course_lib.training`.

# %%
import math
import random
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import course_lib
from course_lib import checks
from course_lib.data import load_sentences
from course_lib.gpt import GPT, GPTConfig
from course_lib.tokenizer import WordTokenizer, make_batch
from course_lib.training import corpus_floor, evaluate, perplexity, save_checkpoint, train

course_lib.seed_everything(0)
device = course_lib.get_device()

# %% [markdown]
# ## 1. Perplexity
#
# The loss is the mean of $-\ln p(\text{correct next token})$. Its exponential,
#
# $$\mathrm{PPL} = \exp\Big(\frac{1}{N}\sum_{t=1}^{N} -\ln p(x_t \mid x_{<t})\Big),$$
#
# is the **perplexity**: the model is as unsure as if it chose uniformly among PPL tokens. A model
# that gives every token of a vocabulary of $V$ the same probability has perplexity exactly $V$; a
# perfect predictor, 1. By hand: if the correct tokens get probabilities 0.5 and 0.25, the loss is
# $(\ln 2 + \ln 4)/2 = 1.5 \ln 2$ and the perplexity $2^{1.5} \approx 2.83$.

# %%
token_probabilities = torch.tensor([0.5, 0.25])
loss = -token_probabilities.log().mean()
print(f"loss {loss.item():.4f} = 1.5 ln 2 = {1.5 * math.log(2):.4f};  perplexity {loss.exp().item():.4f} = 2^1.5 = {2 ** 1.5:.4f}")

sentences = load_sentences("lang.txt")
full_tokenizer = WordTokenizer.from_sentences(sentences)
floor = corpus_floor(full_tokenizer, sentences)
print(f"lang.txt's floor (notebook 07): loss {floor:.4f}, perplexity {math.exp(floor):.3f}")
print(f"a uniform guess over its {len(full_tokenizer)} tokens: perplexity {len(full_tokenizer)}")

# %% [markdown]
# Even a perfect memoriser of lang.txt has perplexity 1.29: on average it hesitates between about
# 1.3 words, all of that at the start of a sentence.
#
# ## 2. Memorisation: lang.txt with a held-out set
#
# Keep 4 of the 20 sentences aside. The tokenizer is built from the 16 training sentences only
# (building it from all 20 would leak the held-out words into training), so held-out words it has
# not seen become `<unk>`.

# %%
train_sentences, val_sentences = sentences[:16], sentences[16:]
tokenizer = WordTokenizer.from_sentences(train_sentences)
train_data = make_batch(tokenizer, train_sentences)
val_data = make_batch(tokenizer, val_sentences)
val_words = " ".join(val_sentences).split()
print(f"held-out words unknown to the tokenizer: {len(tokenizer.unknown_words(' '.join(val_sentences)))} distinct, "
      f"{sum(w not in tokenizer.stoi for w in val_words)} of {len(val_words)}")

# %% tags=["nbval-ignore-output"]
course_lib.seed_everything(0)
model = GPT(GPTConfig(vocab_size=len(tokenizer))).to(device)
lang_history = train(model, train_data, steps=200, pad_id=tokenizer.pad_id, eval_every=5, progress=False,
                     val_data=val_data, restore_best=True)
best = lang_history["best_step"]
print(f"training loss at the end: {lang_history['eval_loss'][-1]:.3f} (perplexity {math.exp(lang_history['eval_loss'][-1]):.2f})")
print(f"validation loss: best {min(lang_history['val_loss']):.3f} at step {best}, "
      f"at the end {lang_history['val_loss'][-1]:.3f} (perplexity {math.exp(lang_history['val_loss'][-1]):.0f})")

# %%
assert lang_history["val_loss"][-1] > 2 * min(lang_history["val_loss"]), "held-out loss rises: memorisation"
assert lang_history["eval_loss"][-1] < 0.5


# %%
def plot_curves(history, title, ax):
    ax.plot(history["eval_step"], history["eval_loss"], label="training set")
    ax.plot(history["eval_step"], history["val_loss"], label="validation set")
    ax.axvline(history["best_step"], color="grey", linestyle=":", label=f"best validation (step {history['best_step']})")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.set_title(title)
    ax.legend()


fig, ax = plt.subplots(figsize=(7, 4))
plot_curves(lang_history, "lang.txt: memorisation", ax)
plt.show()

# %% [markdown]
# The training loss falls towards its floor while the validation loss climbs from the very first
# evaluation to far above an untrained model's (about $\ln V \approx 4.7$): every step spent
# memorising the 16 training sentences makes the model *more* confidently wrong about the other 4. There is nothing general to learn in twenty unrelated
# sentences. The best the model ever did on held-out text was early, and that is the checkpoint to
# keep: `restore_best=True` put those weights back.

# %%
assert abs(evaluate(model, val_data, pad_id=tokenizer.pad_id) - min(lang_history["val_loss"])) < 1e-5
path = save_checkpoint(Path("runs") / "lang_best_validation.pt", model, tokenizer, best_step=best)
print("kept the best-validation weights in", path.as_posix())

# %% [markdown]
# ## 3. Generalisation: stories.txt
#
# `data/stories.txt` (written for this course by `tools/make_stories.py`, MIT-licensed like the rest
# of the repository) holds 4,000 simple sentences made from a small grammar: "The baker finds an old
# map at the market ." A held-out sentence is a *new combination* of words and patterns the model
# has seen, so there is something to generalise. We remove duplicate sentences before splitting, or
# the "held-out" set would contain copies of training sentences.

# %%
stories = sorted(set(load_sentences("stories.txt")))
random.Random(0).shuffle(stories)
n_val = len(stories) // 10
story_train, story_val = stories[n_val:], stories[:n_val]
story_tokenizer = WordTokenizer.from_sentences(story_train)
story_train_data = make_batch(story_tokenizer, story_train)
story_val_data = make_batch(story_tokenizer, story_val)
print(f"{len(story_train)} training and {len(story_val)} validation sentences, vocabulary {len(story_tokenizer)}, "
      f"unknown validation words: {len(story_tokenizer.unknown_words(' '.join(story_val)))}")

# %% tags=["nbval-ignore-output"]
course_lib.seed_everything(0)
story_model = GPT(GPTConfig(vocab_size=len(story_tokenizer))).to(device)
story_history = train(story_model, story_train_data, steps=300, lr=3e-3, batch_size=64, pad_id=story_tokenizer.pad_id,
                      eval_every=25, progress=False, val_data=story_val_data, restore_best=True)
print(f"{story_history['seconds']:.1f} s of training on {device}")
print(f"training loss {story_history['eval_loss'][-1]:.3f}, validation loss {story_history['val_loss'][-1]:.3f}; "
      f"validation perplexity {perplexity(story_model, story_val_data, story_tokenizer.pad_id):.2f} "
      f"(uniform over the vocabulary: {len(story_tokenizer)})")

# %%
gap = story_history["val_loss"][-1] - story_history["eval_loss"][-1]
assert abs(gap) < 0.1, "validation follows training: generalisation"
assert perplexity(story_model, story_val_data, story_tokenizer.pad_id) < 5

# %%
fig, axes = plt.subplots(1, 2, figsize=(13, 4))
plot_curves(lang_history, "lang.txt: memorisation", axes[0])
plot_curves(story_history, "stories.txt: generalisation", axes[1])
fig.tight_layout()
plt.show()


# %% [markdown]
# On stories.txt the two curves fall together: what the model learns from the training sentences
# (which words follow which, the sentence patterns) holds for sentences it has never seen. Its
# validation perplexity of about 3 means it hesitates between about three words on average, out
# of 150: the grammar's genuine choices (which subject? which object?) that no model can guess.
#
# | | lang.txt | stories.txt |
# |---|---|---|
# | training sentences | 16 | about 3,400 |
# | what can be learned | these 16 sentences | patterns shared by all sentences |
# | validation loss while training | rises after a few dozen steps | falls with the training loss |
#
# This is the lesson of the seed corpus: a model's training loss says how well it fits its data; only
# held-out data says whether it learned anything that carries over.

# %% [markdown]
# ## Exercises
#
# Each test cell checks the exercise just above it, and nothing else in the notebook uses the
# exercises: skip one and the rest still runs. Silence means pass; otherwise the message says what
# is wrong.
#
# **Exercise 1 (implement, 2 points).** Write `perplexity_from_probabilities(p)`: the perplexity of
# a model that gave the correct tokens the probabilities in the 1-D tensor `p`. Return a float.

# %% solution="ex10_perplexity"
def perplexity_from_probabilities(p):
    ### BEGIN SOLUTION
    return math.exp(-p.log().mean().item())
    ### END SOLUTION


# %% tests="ex10_perplexity_tests" points=2
_ppl = perplexity_from_probabilities(torch.tensor([0.5, 0.25]))
assert isinstance(_ppl, float), f"return a float (e.g. with .item()), got {type(_ppl).__name__}"
_log_mean = (math.log(0.5) + math.log(0.25)) / 2
_hints = {math.exp(-2 * _log_mean): "average the log-probabilities (their mean), do not add them up",
          1 / 0.375: "perplexity is exp(-mean(log p)), the inverse GEOMETRIC mean: not 1 / mean(p)",
          -_log_mean: "that is the loss (the mean negative log-probability): perplexity is its exponential",
          math.exp(_log_mean): "mind the sign: exp(-mean(log p)) is at least 1"}
if abs(_ppl - 2 ** 1.5) > 1e-5:
    _hint = next((h for value, h in _hints.items() if abs(_ppl - value) < 1e-5), "for p = [0.5, 0.25] it is 2 ** 1.5 = 2.828")
    raise AssertionError(f"perplexity_from_probabilities([0.5, 0.25]) = {_ppl:.4f}: {_hint}")
### BEGIN HIDDEN TESTS
checks.expect_close(torch.tensor(_ppl), torch.tensor(2 ** 1.5), "perplexity of [0.5, 0.25]", atol=1e-5)
checks.expect_close(torch.tensor(perplexity_from_probabilities(torch.full((7,), 1 / 9))), torch.tensor(9.0), "uniform over 9", atol=1e-4)
_pp = torch.rand(50, generator=torch.Generator().manual_seed(3)) * 0.9 + 0.05
checks.expect_close(torch.tensor(perplexity_from_probabilities(_pp)), torch.tensor(math.exp(-_pp.double().log().mean().item())),
                    "perplexity of 50 probabilities", atol=1e-3)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (predict, then run; 1 point).** A model gives the correct next token probability 0.1
# at every position. What is its perplexity? Set `predicted_perplexity`.

# %% solution="ex10_predict_perplexity"
predicted_perplexity = None  # your answer
### BEGIN SOLUTION
predicted_perplexity = 10.0
### END SOLUTION

# %% tests="ex10_predict_perplexity_tests" points=1
checks.answered(predicted_perplexity=predicted_perplexity)
assert isinstance(predicted_perplexity, (int, float)), "predicted_perplexity must be a number"
### BEGIN HIDDEN TESTS
assert abs(predicted_perplexity - 10.0) < 1e-6, "exp(-ln 0.1) = 10"
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (spot the bug, 2 points).** This split gives an optimistic validation score. Why?
# Write `fixed_split(sentences, n_val)` returning `(tokenizer, train_sentences, val_sentences)` with
# the last `n_val` sentences held out.

# %%
def buggy_split(sentences, n_val):
    tokenizer = WordTokenizer.from_sentences(sentences)
    return tokenizer, sentences[:-n_val], sentences[-n_val:]


# %% solution="ex10_spot_the_bug"
def fixed_split(sentences, n_val):
    ### BEGIN SOLUTION
    # The tokenizer saw the validation sentences: their words get real ids instead of <unk>, and
    # the vocabulary (hence the model) depends on held-out data. Split first, then build.
    train_part, val_part = sentences[:-n_val], sentences[-n_val:]
    return WordTokenizer.from_sentences(train_part), train_part, val_part
    ### END SOLUTION


# %% tests="ex10_spot_the_bug_tests" points=2
_tok, _train, _val = fixed_split(sentences, 4)
checks.expect_equal((len(_train), len(_val)), (16, 4), "(len(train), len(val))")
checks.expect_equal(_val, sentences[-4:], "the validation sentences (the last n_val)")
_leaked = [w for w in _tok.itos[4:] if not any(w in s.split() for s in _train)]
assert not _leaked, (f"the tokenizer knows words that only the validation sentences use, e.g. {_leaked[:3]}: "
                     "build it from the training sentences alone")
### BEGIN HIDDEN TESTS
checks.expect_equal(_tok.itos, WordTokenizer.from_sentences(sentences[:16]).itos, "the tokenizer's vocabulary")
for _n in (7, int(torch.randint(1, 19, (1,), generator=checks.grading_generator("ex10_spot_the_bug")))):
    _tok2, _train2, _val2 = fixed_split(sentences, _n)
    checks.expect_equal((_train2, _val2), (sentences[:-_n], sentences[-_n:]), f"fixed_split(sentences, {_n})")
    checks.expect_equal(_tok2.itos, WordTokenizer.from_sentences(sentences[:-_n]).itos, f"the vocabulary of fixed_split(sentences, {_n})")
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# - Perplexity = exp(mean loss): the number of equally likely choices the model is as unsure as.
# - Split before building anything from the data (tokenizer included); judge a model on held-out
#   text, and keep the weights of the best validation step (early stopping).
# - lang.txt can only be memorised (validation loss rises); stories.txt can be generalised
#   (validation follows training).
#
# **Next: [11 · Fast generation with a KV cache](11_fast_generation_kv_cache.ipynb)**: stop
# recomputing the past at every generated token.
