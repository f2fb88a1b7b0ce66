# %% [markdown]
# # 22 · The whole pipeline: from raw text to a chat model, with a report card
#
# **Goal.** Every notebook so far built one stage on a model sized for seconds. A real model is
# made by running them **in order, on one model**: learn a tokenizer, pretrain on a token stream,
# fine-tune into a chat model, improve it with rewards, then measure what came out. nanochat's
# `speedrun.sh` does exactly that and ends with a `report.md`; this notebook is the course's
# version, and every stage is code you have already written:
#
# | stage | notebook | writes into the run folder |
# |---|---|---|
# | `tokenizer` | 09 | `tokenizer.json`: byte-level BPE learned on the Shakespeare training text |
# | `pretrain` | 12 | `base.pt`: a GPT pretrained on that text (resumable) |
# | `sft` | 14, 19 | `sft.pt`: fine-tuned on dialogues, memory conversations and sums, assistant-only loss |
# | `rl` | 19 | `rl.pt`: GRPO on the sums, the reward a program's check |
# | `eval` | 22 | `report.md` (+ plots) and `report.json`: the three models side by side |
#
# An honest report card needs metrics that compare *different* models fairly. **You will build**
# the two that evaluation harnesses are made of: **bits per byte** (a loss that does not depend on
# the tokenizer) and **multiple choice by log-likelihood** (the model "answers" by finding one
# continuation likelier than the others), with and without length normalisation. The library's
# versions are `course_lib.evaluation`; each is checked against a brute-force loop.
#
# On a CPU this notebook runs in about half a minute: the pipeline runs at its `tiny` preset
# (seconds, figures that mean nothing), and the figures of the real `cpu` preset are read from the
# card stored in `docs/` (8 min 31 s on a 2-core CPU; the command is below). On a GPU it runs the
# `cpu` preset itself (a few minutes; GPU figures: not measured).

# %%
import json
import math
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F
from IPython.display import Markdown, display

import course_lib
from course_lib import checks
from course_lib.bpe import BPETokenizer
from course_lib.data import data_path
from course_lib.evaluation import (
    bits_per_byte,
    choice_logprobs,
    multiple_choice_accuracy,
    shakespeare_choices,
    token_byte_lengths,
)
from course_lib.gpt import GPT, GPTConfig
from course_lib.pipeline import PRESETS, run_pipeline
from course_lib.stream import sequential_windows, split_text
from course_lib.tokenizer import CharTokenizer

course_lib.seed_everything(0)
device = course_lib.get_device()
on_gpu = device.type == "cuda"
grading = course_lib.grading_run()
print("device:", device)

# %% [markdown]
# ## 1. Bits per byte: a loss every tokenizer can be compared on
#
# Notebook 10 measured a model by its loss per **token**. That is fine for one model, and unfair
# between two: a BPE token carries about two characters of Shakespeare, a character token one, so
# the BPE model's tokens are harder to predict *because they say more*. Divide the total surprise
# by what was predicted, in a unit that does not depend on the tokenizer — bytes of UTF-8 text:
#
# $$\text{bits per byte} = \frac{\sum_t -\log_2 p(x_t \mid x_{<t})}{\text{bytes of the predicted text}}$$
#
# Each token stands for a known number of bytes (`token_byte_lengths`: a BPE token's byte string,
# a character's UTF-8 length, 0 for a special token such as `<|end|>`):

# %%
text = data_path("shakespeare.txt").read_text(encoding="utf-8")
train_text, held_out_text = split_text(text, 0.1)
bpe = BPETokenizer.train(train_text[:50_000], 300)
chars = CharTokenizer.from_text(text)
sample = held_out_text[:60]
for name, tokenizer in (("char", chars), ("BPE 300", bpe)):
    ids = tokenizer.encode(sample)
    lengths = token_byte_lengths(tokenizer)[ids]
    print(f"{name:8} {len(ids)} tokens, {int(lengths.sum())} bytes; bytes of the first tokens: {lengths[:12].tolist()}")
print("bytes of the text:", len(sample.encode("utf-8")))


# %% [markdown]
# The texts are cut into non-overlapping windows of the model's context, as notebook 12's
# validation was (`stream.sequential_windows`): every token but the first of each window is
# predicted once, from the tokens before it in its window.
#
# **Exercise 1 (implement, 2 points).** Write `windows_bits_per_byte(model, inputs, targets,
# byte_lengths)`. `inputs` and `targets` are `(windows, T)` LongTensors (`targets[i, t]` is the
# token after `inputs[i, :t + 1]`), `model(inputs)` gives logits `(windows, T, vocab)`, and
# `byte_lengths[i]` is token `i`'s length in bytes. Return the total loss over every target
# **in bits**, divided by the total bytes of the **target** tokens, as a Python float.

# %% solution="ex22_bits_per_byte"
def windows_bits_per_byte(model, inputs, targets, byte_lengths):
    ### BEGIN SOLUTION
    with torch.no_grad():
        logits = model(inputs)  # (windows, T, vocab)
        nats = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="sum")
    return (nats / math.log(2) / byte_lengths[targets].sum()).item()
    ### END SOLUTION


# %% tests="ex22_bits_per_byte_tests" points=2
torch.manual_seed(0)
_model = GPT(GPTConfig(vocab_size=len(bpe), context_length=64, d_model=32, n_heads=2, n_layers=1, d_ff=64)).eval()
_x, _y = sequential_windows(torch.tensor(bpe.encode(held_out_text[:2000])), 16, 8)
_lengths = token_byte_lengths(bpe)
with torch.no_grad():
    _nats_each = F.cross_entropy(_model(_x).flatten(0, 1), _y.flatten(), reduction="none")  # (windows * T,)
_bytes = _lengths[_y].sum()
checks.expect_equal(type(windows_bits_per_byte(_model, _x, _y, _lengths)), float, "the type of what it returns")
checks.expect_close(torch.tensor(windows_bits_per_byte(_model, _x, _y, _lengths)),
                    (_nats_each.sum() / math.log(2) / _bytes).item(),
                    "windows_bits_per_byte on 8 windows of held-out Shakespeare", atol=1e-4, mistakes={
    "that is nats per byte: divide by ln 2 to turn nats into bits": (_nats_each.sum() / _bytes).item(),
    "that is bits per TOKEN: divide by the bytes the targets spell, not by how many there are":
        (_nats_each.sum() / math.log(2) / _y.numel()).item(),
    "that is the MEAN loss per token divided by the bytes: add the losses up (reduction='sum')":
        (_nats_each.mean() / math.log(2) / _bytes).item(),
    "those are the bytes of the INPUTS: count the bytes of the tokens that were predicted, the targets":
        (_nats_each.sum() / math.log(2) / _lengths[_x].sum()).item(),
})
### BEGIN HIDDEN TESTS
_g = checks.grading_generator("ex22_bits_per_byte")
for _ in range(2):
    _start = int(torch.randint(0, len(held_out_text) - 3000, (1,), generator=_g))
    _hx, _hy = sequential_windows(torch.tensor(bpe.encode(held_out_text[_start:_start + 3000])), 16, 5)
    with torch.no_grad():
        _want = F.cross_entropy(_model(_hx).flatten(0, 1), _hy.flatten(), reduction="sum") / math.log(2) / _lengths[_hy].sum()
    checks.expect_close(torch.tensor(windows_bits_per_byte(_model, _hx, _hy, _lengths)), _want.item(), "on other windows",
                        atol=1e-4)
_cx, _cy = sequential_windows(torch.tensor(chars.encode(held_out_text[:500])), 16, 4)
_cmodel = GPT(GPTConfig(vocab_size=len(chars), context_length=16, d_model=32, n_heads=2, n_layers=1, d_ff=64)).eval()
with torch.no_grad():
    _cwant = F.cross_entropy(_cmodel(_cx).flatten(0, 1), _cy.flatten(), reduction="sum") / math.log(2) / _cy.numel()
checks.expect_close(torch.tensor(windows_bits_per_byte(_cmodel, _cx, _cy, token_byte_lengths(chars))), _cwant.item(),
                    "a character model on ASCII text: one byte a token", atol=1e-4)
### END HIDDEN TESTS

# %% [markdown]
# The library's `bits_per_byte(model, tokenizer, text)` does the same, one batch at a time, and
# `tests/test_evaluation.py` checks it against a loop that predicts one position at a time. Here
# it agrees with your function, and a model that knows nothing (every logit 0, so every token has
# probability 1/vocab) scores exactly $\log_2(\text{vocab})$ bits per token, as it must:

# %%
_window_text = held_out_text[:2000]
_x, _y = sequential_windows(torch.tensor(bpe.encode(_window_text)), _model.config.context_length)  # the library's windows
print(f"yours {windows_bits_per_byte(_model, _x, _y, _lengths):.5f}, the library's "
      f"{bits_per_byte(_model, bpe, _window_text):.5f} bits per byte")
_know_nothing = GPT(GPTConfig(vocab_size=len(chars), context_length=32, d_model=16, n_heads=2, n_layers=1, d_ff=32)).eval()
with torch.no_grad():
    _know_nothing.ln_f.weight.zero_()
    _know_nothing.ln_f.bias.zero_()  # the last LayerNorm outputs 0: every logit is 0
_ascii = "".join(c for c in held_out_text[:3000] if ord(c) < 128)
print(f"uniform over {len(chars)} characters: {bits_per_byte(_know_nothing, chars, _ascii):.4f} bits per byte; "
      f"log2({len(chars)}) = {math.log2(len(chars)):.4f}")

# %% [markdown]
# ## 2. Multiple choice by log-likelihood
#
# How do evaluation harnesses (EleutherAI's lm-evaluation-harness, nanochat's CORE) ask a base
# model a multiple-choice question? They do not make it *write* "B". They score each choice as a
# continuation of the question, $\log p(\text{choice} \mid \text{context}) = \sum_t \log p(c_t \mid
# \text{context}, c_{<t})$, and the model's answer is the likeliest. Two versions are reported:
#
# - **acc**: the highest summed log-probability. Every token costs probability, so long choices
#   are at a disadvantage.
# - **acc_norm**: the highest log-probability **per byte** of the choice: length no longer decides.
#
# The course builds its own set from text no model trained on: two lines of held-out Shakespeare,
# and four candidates for the next line, one of them the real one. Chance is 25 %.

# %%
questions = shakespeare_choices(text)
print(f"{len(questions)} questions; the first:")
print(questions[0]["context"])
for i, choice in enumerate(questions[0]["choices"]):
    print(f"  {'*' if i == questions[0]['answer'] else ' '} {i}: {choice.strip()!r}")


# %% [markdown]
# **Exercise 2 (implement, 2 points).** Write `choice_logprob(model, context_ids, choice_ids)`:
# the log-probability the model gives the tokens `choice_ids` (a list) right after `context_ids`
# (a list), summed over the choice's tokens, as a Python float. Run the model once on the joined
# ids (drop the last one: nothing comes after it) and remember that the logits at position `t`
# predict token `t + 1`. The ids fit the model's context.

# %% solution="ex22_choice_logprob"
def choice_logprob(model, context_ids, choice_ids):
    ### BEGIN SOLUTION
    ids = torch.tensor([context_ids + choice_ids])  # (1, seq)
    with torch.no_grad():
        logprobs = torch.log_softmax(model(ids[:, :-1]), dim=-1)  # (1, seq - 1, vocab)
    picked = logprobs[0, -len(choice_ids):].gather(-1, ids[0, -len(choice_ids):, None])  # (choice, 1)
    return picked.sum().item()
    ### END SOLUTION


# %% tests="ex22_choice_logprob_tests" points=2
def _reference_logprob(model, context_ids, choice_ids):
    """Position by position, as a loop: the log-probability of each choice token given everything before it."""
    total, ids = 0.0, list(context_ids)
    for token in choice_ids:
        with torch.no_grad():
            total += torch.log_softmax(model(torch.tensor([ids]))[0, -1], -1)[token].item()
        ids.append(token)
    return total


_context, _choice = bpe.encode("To be, or not to be:"), bpe.encode(" that is the question")
_joined = torch.tensor([_context + _choice])
with torch.no_grad():
    _lp = torch.log_softmax(_model(_joined[:, :-1]), -1)[0]  # (seq - 1, vocab)
    _all_lp = torch.log_softmax(_model(_joined), -1)[0]  # (seq, vocab)
_n = len(_choice)
_right_rows = _lp[-_n:].gather(-1, _joined[0, -_n:, None])
checks.expect_equal(type(choice_logprob(_model, _context, _choice)), float, "the type of what it returns")
checks.expect_close(torch.tensor(choice_logprob(_model, _context, _choice)),
                    _reference_logprob(_model, _context, _choice),
                    "choice_logprob('To be, or not to be:', ' that is the question')", atol=1e-4, mistakes={
    "off by one: the logits at position t predict token t + 1, not token t":
        _all_lp[-_n:].gather(-1, _joined[0, -_n:, None]).sum().item(),
    "that also counts the context's tokens: sum over the choice's tokens only":
        _lp.gather(-1, _joined[0, 1:, None]).sum().item(),
    "that is the mean over the choice's tokens: sum them (normalising is exercise 3's job)": _right_rows.mean().item(),
    "those are probabilities: take log_softmax, then sum the log-probabilities": _right_rows.exp().sum().item(),
})
### BEGIN HIDDEN TESTS
_g = checks.grading_generator("ex22_choice_logprob")
for _ in range(3):
    _k = int(torch.randint(1, 5, (1,), generator=_g))
    _c = torch.randint(0, len(bpe), (int(torch.randint(1, 6, (1,), generator=_g)),), generator=_g).tolist()
    _ch = torch.randint(0, len(bpe), (_k,), generator=_g).tolist()
    checks.expect_close(torch.tensor(choice_logprob(_model, _c, _ch)), _reference_logprob(_model, _c, _ch),
                        f"a choice of {_k} token(s) after {len(_c)}", atol=1e-4)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (implement, 2 points).** Write `pick(scores, normalise)`. `scores` is a list of
# `(log_probability, n_bytes)` pairs, one per choice, as `course_lib.evaluation.choice_logprobs`
# returns them. Return the index of the model's answer: the highest `log_probability`, or with
# `normalise=True` the highest `log_probability / n_bytes`.

# %% solution="ex22_pick"
def pick(scores, normalise):
    ### BEGIN SOLUTION
    values = [logprob / n_bytes if normalise else logprob for logprob, n_bytes in scores]
    return max(range(len(values)), key=values.__getitem__)
    ### END SOLUTION


# %% tests="ex22_pick_tests" points=2
_scores = [(-12.0, 10), (-14.0, 20), (-9.0, 4), (-20.0, 16)]  # per byte: -1.2, -0.7, -2.25, -1.25
_got = pick(_scores, normalise=False)
assert _got == 2, {3: "log-probabilities are negative: the likeliest choice is the one closest to 0, the highest",
                   1: "normalise=False compares the summed log-probabilities themselves, not per byte",
                   }.get(_got, f"pick({_scores}, normalise=False) is {_got!r}, expected 2")
_got = pick(_scores, normalise=True)
assert _got == 1, {2: "normalise=True divides each log-probability by its choice's bytes first, then takes the highest",
                   3: "divide each log-probability by its bytes (-14 / 20 = -0.7 is the highest), do not multiply",
                   }.get(_got, f"pick({_scores}, normalise=True) is {_got!r}, expected 1")
### BEGIN HIDDEN TESTS
_g = checks.grading_generator("ex22_pick")
for _ in range(5):
    _k = int(torch.randint(2, 6, (1,), generator=_g))
    _lp = (-torch.rand(_k, generator=_g) * 30).tolist()
    _nb = torch.randint(1, 40, (_k,), generator=_g).tolist()
    _s = list(zip(_lp, _nb))
    checks.expect_equal(pick(_s, False), max(range(_k), key=lambda i: _lp[i]), f"pick({_s}, False)")
    checks.expect_equal(pick(_s, True), max(range(_k), key=lambda i: _lp[i] / _nb[i]), f"pick({_s}, True)")
### END HIDDEN TESTS

# %% [markdown]
# With the two pieces, the accuracy is a count. A model trained on nothing is at chance; the
# library's `multiple_choice_accuracy` does the counting (and both normalisations at once):

# %%
_few = questions[:40]
_right = _right_norm = 0
for _q in _few:
    _scores = choice_logprobs(_model, bpe, _q["context"], _q["choices"])  # the untrained model of exercise 1
    _right += pick(_scores, False) == _q["answer"]
    _right_norm += pick(_scores, True) == _q["answer"]
print(f"untrained model, 40 questions: yours acc {_right / 40:.3f}, acc_norm {_right_norm / 40:.3f}; "
      f"the library's {multiple_choice_accuracy(_model, bpe, _few)}")

# %% [markdown]
# ## 3. The pipeline, end to end
#
# `course_lib.pipeline.run_pipeline(out, preset)` runs the five stages into the folder `out`. Each
# stage is skipped when its output exists and was made with the same settings (a hash of them,
# chained to the stages before it, is kept in `out/pipeline.json`), so after a crash or Ctrl-C the
# same call continues: pretraining resumes from its last checkpoint, exactly. Here, the `tiny`
# preset: every stage in seconds. Its figures mean nothing; the point is the shape of the run.

# %%
for name, preset in PRESETS.items():
    print(f"{name:5} {preset.about}")

# %% tags=["nbval-ignore-output"]
run = Path("runs") / "pipeline_tiny"
shutil.rmtree(run, ignore_errors=True)  # this notebook's own folder: start afresh each time
preset = "cpu" if on_gpu and not grading else "tiny"  # a GPU does the CPU preset in minutes
report = run_pipeline(run, preset, progress=False)
print(sorted(p.name for p in run.iterdir()))

# %% [markdown]
# Run it again: every stage is found done and skipped, in a fraction of a second.

# %%
_lines = []
again = run_pipeline(run, preset, progress=False, log=_lines.append)
print("\n".join(_lines))
assert again == report and all("skipped" in line for line in _lines)

# %% [markdown]
# `report.json` holds every figure of the card, and the final chat model's path under
# `checkpoint`; `report.md` is the card itself. The tiny models learned almost nothing, and the
# card says so: bits per byte near that of a model that knows nothing, accuracies near chance or 0.

# %% tags=["nbval-ignore-output"]
print("final chat model:", Path(report["checkpoint"]).relative_to(Path.cwd().resolve()))
print(json.dumps({name: column["metrics"] for name, column in report["models"].items()}, indent=1))

# %%
assert set(report["models"]) == {"base", "sft", "rl"} and Path(report["checkpoint"]).is_file()
assert all(k in report for k in ("shakespeare_bpb", "arithmetic_acc"))
print("the card's figures are there for all three models")

# %% [markdown]
# ## 4. The real run: the `cpu` preset's report card
#
# The same five stages at the `cpu` preset, on the 2-core CPU the course is measured on (8 min
# 31 s; the card lists each stage's time). The command, from the repository's root:
#
# ```
# python -m course_lib pipeline --preset cpu --out runs/pipeline
# ```
#
# Its card is stored in `docs/pipeline/` with its plots; here is its metrics table. Reading it: the
# base model has no chat template, so the chat metrics do not apply to it; fine-tuning teaches the
# format, the memory conversations and the sums; GRPO then moves the arithmetic only, which is
# what its reward asked for. The comparison with the notebooks' own models, measured with `eval`,
# is in `docs/pipeline.md`.

# %%
_card = Path(course_lib.__file__).resolve().parent.parent / "docs" / "pipeline" / "report.md"
_text = _card.read_text(encoding="utf-8")
display(Markdown(_text.split("## Metrics")[1].split("## Time")[0]))

# %% [markdown]
# From a terminal, the card's metrics for any checkpoint, or two side by side (`--json` prints one
# JSON object on the last line for programs; `--report DIR` writes a card):
#
# ```
# python -m course_lib eval --checkpoint runs/pipeline/rl.pt --json
# python -m course_lib eval --checkpoint notebooks/runs/chat.pt --checkpoint runs/pipeline/rl.pt --report runs/compare
# python -m course_lib eval --gguf smollm2 --limit 50
# python -m course_lib serve --checkpoint runs/pipeline/rl.pt
# ```
#
# ## Summary
#
# - **Bits per byte** divides the total surprise by the bytes predicted: models with different
#   tokenizers compare fairly. Perplexity per token does not.
# - **Multiple choice by log-likelihood** scores each continuation; `acc` sums the log-probabilities,
#   `acc_norm` divides by each choice's bytes first. State the chance level beside both.
# - The pipeline runs the course's stages in order on one model, skips what is done, resumes what
#   was interrupted, and ends with a card computed from the checkpoints — change a checkpoint and
#   the card changes (`tests/test_pipeline.py` checks that).
