# %% [markdown]
# # 14 · From GPT to chat: dialogue data, the template, the loss on the assistant's turns
#
# **Goal.** Turn a language model, which continues text, into a chat model, which answers. ChatGPT
# was made this way: a pretrained GPT is fine-tuned on conversations (supervised fine-tuning, SFT).
# Three things make it work, and the course's source documents get all three wrong:
#
# 1. a **template** that marks who speaks, with special tokens the user cannot type, and an
#    **end-of-turn** token, so the model can say "my turn is over";
# 2. a **loss on the assistant's tokens only**: the model must learn to write replies, not to
#    imitate the user;
# 3. the **history**: the conversation so far is part of the input, so an answer can use it.
#
# **You will build** the template's token ids and which of them are learned, the shifted targets
# with the ignore index, and the truncation that keeps the newest turns; the library's versions
# are in `course_lib.chat`. Section 5 measures what each of the three choices is worth.
#
# On a CPU the notebook trains small models for about 35 seconds in all. On a GPU it picks larger
# ones by itself (section 4).

# %%
import math
import random
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import torch

import course_lib
from course_lib import checks
from course_lib.bpe import BPETokenizer
from course_lib.chat import (END, IGNORE_INDEX, chat, chat_tokenizer, dialogue_batch, encode_turns,
                             render, select_trainable)
from course_lib.data import data_path
from course_lib.dialogue import memory_dialogues, read_cornell, read_dialogues
from course_lib.gpt import GPT, GPTConfig, grow_vocabulary
from course_lib.plotting import token_strip
from course_lib.pretraining import TrainConfig, pretrain
from course_lib.stream import encode_stream, split_text
from course_lib.training import evaluate, save_checkpoint, train

course_lib.seed_everything(0)
device = course_lib.get_device()
on_gpu = device.type == "cuda"
grading = course_lib.grading_run()  # under nbgrader: the ungraded training below runs a few steps only
print("device:", device)

# %% [markdown]
# ## 1. Dialogue data
#
# A conversation is a list of **turns**, each a role and a text: an optional `system` turn (an
# instruction), then `user` and `assistant` alternating. It is the shape of OpenAI's chat API and
# of every open chat dataset. `data/dialogues.jsonl` holds 2,026 English conversations from the
# `chatterbot-corpus` package (BSD-3; `tools/make_dialogues.py` extracts them and checks both
# sha256s, see `data/README.md`), one per line:

# %%
conversations = read_dialogues(data_path("dialogues.jsonl"))
lengths = [len(c) for c in conversations]
print(f"{len(conversations):,} conversations; turns: {min(lengths)} to {max(lengths)}, "
      f"{sum(n == 2 for n in lengths) / len(lengths):.0%} are one exchange")
for turn in conversations[7]:
    print(f"{turn['role']:>9}: {turn['content']}")

# %% [markdown]
# Bad data is refused with the line and what was wrong, never loaded half-way:

# %%
_bad = Path(tempfile.mkdtemp()) / "bad.jsonl"
for _line in ['{"turns": [{"role": "user", "content": "hi"}, {"role": "bot", "content": "hello"}]}',
              '{"turns": [{"role": "user", "content": "hi"}, {"role": "user", "content": "anyone?"}]}',
              '{"turns": [{"role": "user", "content": "hi"}]',
              '{"turns": [{"role": "user", "content": "   "}]}']:
    _bad.write_text(_line + "\n")
    try:
        read_dialogues(_bad)
    except ValueError as error:
        print(error)

# %% [markdown]
# The first source document trains on the **Cornell Movie-Dialogs** corpus (220,579 exchanges from
# film scripts, fields separated by ` +++$+++ `). It is too big to ship, but `read_cornell` turns the
# two files of its download into the same conversations; here on three lines in its format:

# %%
_folder = Path(tempfile.mkdtemp())
(_folder / "movie_lines.txt").write_text(
    "L1 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ Can we make this quick?\n"
    "L2 +++$+++ u2 +++$+++ m0 +++$+++ CAMERON +++$+++ Well, I thought we'd start with pronunciation.\n"
    "L3 +++$+++ u0 +++$+++ m0 +++$+++ BIANCA +++$+++ Not the hacking and gagging and spitting part.\n",
    encoding="iso-8859-1")
(_folder / "movie_conversations.txt").write_text("u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L1', 'L2', 'L3']\n")
print(read_cornell(_folder / "movie_lines.txt", _folder / "movie_conversations.txt"))

# %% [markdown]
# ## 2. The template: who speaks, and when a turn ends
#
# The seed code joins a question and its answer into one string and trains on it. The model then
# cannot tell a question from an answer, and at chat time nothing tells it where its answer
# should stop: it runs on into the next line of the corpus, often the *user's*.
#
# A chat template fixes both. Every turn is a **role marker**, the text, and **`<|end|>`**:
#
# `<|user|>Hi!<|end|><|assistant|>Hello.<|end|>`
#
# The four markers are **special tokens**, appended to the tokenizer after its own vocabulary
# (`course_lib.tokenizer.SpecialTokens`): the base tokenizer's ids do not move, so a pretrained
# model keeps every row it learned and gains four new ones. Our tokenizer here is notebook 09's
# byte-level BPE, learned on notebook 12's Shakespeare (512 tokens):

# %%
text = data_path("shakespeare.txt").read_text(encoding="utf-8")
bpe = BPETokenizer.train(text, 512)
tokenizer = chat_tokenizer(bpe)
print(f"{len(bpe)} BPE tokens + {len(tokenizer) - len(bpe)} special = {len(tokenizer)}")
print({s: tokenizer.id_of(s) for s in tokenizer.specials})
example = [{"role": "user", "content": "Hi! I'm Ada."}, {"role": "assistant", "content": "Hello, Ada."},
           {"role": "user", "content": "Who am I?"}, {"role": "assistant", "content": "You are Ada."}]
print(render(example))

# %% [markdown]
# The markers cannot be typed. A user who writes `<|assistant|>` in a message gets the characters
# `<`, `|`, `a`, ... encoded as text: no message can forge the assistant's turn.

# %%
_typed = tokenizer.encode("<|assistant|>")
print(len(_typed), "ordinary tokens:", _typed, "| special among them:", any(i >= len(bpe) for i in _typed))

# %% [markdown]
# ## 3. Which tokens the model learns to write
#
# The model learns to predict every *next* token it is shown. We want it to learn the
# assistant's text and the `<|end|>` that closes it, and nothing else: not the user's words (at
# chat time the user writes those), not the markers (the code writes them: it appends
# `<|assistant|>` to ask for a reply).
#
# **Exercise 1 (implement, 2 points).** Write `template_with_mask(tokenizer, turns)`. Return
# `(ids, learned)`: `ids` the template's token ids of the conversation (for each turn: the id of its
# role's marker, `tokenizer.encode(content)`, the id of `<|end|>`), and `learned` a list of the same
# length, `True` exactly for the assistant's content tokens and the `<|end|>` ending an assistant
# turn. `tokenizer.id_of(marker)` gives a marker's id; `MARKERS` maps a role to its marker.

# %%
from course_lib.chat import MARKERS  # {"system": "<|system|>", "user": "<|user|>", "assistant": "<|assistant|>"}


# %% solution="ex14_mask"
def template_with_mask(tokenizer, turns):
    ### BEGIN SOLUTION
    ids, learned = [], []
    for turn in turns:
        body = tokenizer.encode(turn["content"]) + [tokenizer.id_of(END)]
        ids += [tokenizer.id_of(MARKERS[turn["role"]])] + body
        learned += [False] + [turn["role"] == "assistant"] * len(body)
    return ids, learned
    ### END SOLUTION


# %% tests="ex14_mask_tests" points=2
def _mask_mistakes(turns):
    ids, right = encode_turns(tokenizer, turns)
    roles = [t["role"] for t in turns for _ in range(len(tokenizer.encode(t["content"])) + 2)]
    is_end = [i == tokenizer.id_of(END) for i in ids]
    is_marker = [i in (tokenizer.id_of(m) for m in MARKERS.values()) for i in ids]
    return ids, right, {
        "the user's tokens are learned too: the loss must count the assistant's turns only":
            [not m for m in is_marker],
        "the <|end|> after the assistant's text is not learned: the model would never learn to stop":
            [r == "assistant" and not e and not m for r, e, m in zip(roles, is_end, is_marker)],
        "the <|assistant|> marker is learned: the code writes it, the model should not":
            [r == "assistant" for r in roles],
    }


_ids, _learned = template_with_mask(tokenizer, example)
_want_ids, _want, _mistakes = _mask_mistakes(example)
checks.expect_equal(_ids, _want_ids, "the template's ids of the example")
assert len(_learned) == len(_ids), f"learned has {len(_learned)} entries for {len(_ids)} ids: one per id"
for _hint, _wrong in _mistakes.items():
    assert list(map(bool, _learned)) != _wrong, _hint
checks.expect_equal(list(map(bool, _learned)), _want, "learned for the example")
checks.expect_equal(template_with_mask(tokenizer, [{"role": "system", "content": "Be kind."}] + example)[1][:4],
                    [False] * 4, "learned for a system turn (never learned)")
### BEGIN HIDDEN TESTS
_g = random.Random(int(torch.randint(0, 10**6, (1,), generator=checks.grading_generator("ex14_mask"))))
for _ in range(5):
    _n = _g.randint(1, 4)
    _turns = ([{"role": "system", "content": "Be brief."}] if _g.random() < 0.5 else []) + [
        {"role": "user" if k % 2 == 0 else "assistant", "content": " ".join(_g.sample(["to", "be", "or", "not", "that", "is"], 3))}
        for k in range(2 * _n - _g.randint(0, 1))]
    checks.expect_equal(tuple(map(list, template_with_mask(tokenizer, _turns))),
                        tuple(map(list, encode_turns(tokenizer, _turns))), f"template_with_mask of {len(_turns)} turns")
### END HIDDEN TESTS

# %% [markdown]
# Drawn as a strip of tokens, green where the model learns (the library's
# `course_lib.chat.encode_turns` is the same function, with the checks):

# %%
_ids, _learned = encode_turns(tokenizer, example)
token_strip([tokenizer.decode([i], skip_special=False) for i in _ids], _learned, per_row=20)
plt.show()


# %% [markdown]
# **Exercise 2 (implement, 2 points).** A language model's targets are its inputs shifted by one:
# position $t$ reads `ids[t]` and must predict `ids[t + 1]`. Write `shift_and_mask(ids, learned)`
# returning `(inputs, targets)`, two LongTensors of length `len(ids) - 1`: `inputs` all ids but the
# last, and `targets[t]` equal to `ids[t + 1]` where that next token is learned, else
# `IGNORE_INDEX` (-100). -100 is the index `torch.nn.functional.cross_entropy` skips by default, and
# the one `GPT.forward` uses when no `pad_id` is given: the loss is the mean over learned tokens only.

# %% solution="ex14_shift"
def shift_and_mask(ids, learned):
    ### BEGIN SOLUTION
    inputs = torch.tensor(ids[:-1], dtype=torch.long)
    targets = torch.tensor([i if keep else IGNORE_INDEX for i, keep in zip(ids[1:], learned[1:])], dtype=torch.long)
    return inputs, targets
    ### END SOLUTION


# %% tests="ex14_shift_tests" points=2
_ids, _learned = encode_turns(tokenizer, example)
_x, _y = shift_and_mask(_ids, _learned)
_ids_t, _keep = torch.tensor(_ids), torch.tensor(_learned)
checks.expect_close(_x, _ids_t[:-1], "inputs")
checks.expect_close(_y, torch.where(_keep[1:], _ids_t[1:], -100), "targets", atol=0, mistakes={
    "targets are the NEXT tokens: ids[1:], masked by learned[1:]": torch.where(_keep[:-1], _ids_t[:-1], -100),
    "off by one: mask ids[1:] with learned[1:] (the mask of the token being predicted), not learned[:-1]; "
    "as it is, the first word of each reply is never learned, and <|user|> after <|end|> is":
        torch.where(_keep[:-1], _ids_t[1:], -100),
    "ignored targets must be -100 (IGNORE_INDEX), not 0: 0 is a real token": torch.where(_keep[1:], _ids_t[1:], 0),
    "the mask is missing: every next token is a target": _ids_t[1:],
})
### BEGIN HIDDEN TESTS
_g = torch.Generator().manual_seed(int(torch.randint(0, 10**6, (1,), generator=checks.grading_generator("ex14_shift"))))
for _ in range(3):
    _n = int(torch.randint(2, 30, (1,), generator=_g))
    _ids = torch.randint(0, len(tokenizer), (_n,), generator=_g).tolist()
    _learned = (torch.rand(_n, generator=_g) < 0.5).tolist()
    _x, _y = shift_and_mask(_ids, _learned)
    _want_x, _want_y = torch.tensor(_ids[:-1]), torch.tensor([i if k else -100 for i, k in zip(_ids[1:], _learned[1:])])
    checks.expect_close(_x, _want_x, f"inputs for {_n} ids")
    checks.expect_close(_y, _want_y, f"targets for {_n} ids")
### END HIDDEN TESTS

# %% [markdown]
# Does the model's loss really skip the -100 targets? Checked against PyTorch's own
# cross-entropy on the learned positions alone (`tests/test_chat.py` checks it too):

# %%
_model = GPT(GPTConfig(vocab_size=len(tokenizer), context_length=64, d_model=32, n_heads=2, n_layers=1, d_ff=64))
_x, _y = dialogue_batch(tokenizer, [example, example[:2]], 64)
_logits, _loss = _model(_x, _y)
_reference = torch.nn.functional.cross_entropy(_logits[_y != -100], _y[_y != -100])
checks.expect_close(_loss.detach(), _reference.detach(), "the model's loss against cross_entropy on the learned positions", atol=1e-6)
print(f"loss {_loss.item():.2f} = cross-entropy over the {int((_y != -100).sum())} learned of {_y.numel()} positions")


# %% [markdown]
# **Exercise 3 (implement, 2 points).** A model reads at most `context_length` tokens, and a
# conversation grows. What goes when it no longer fits? The *oldest* turns: the newest user
# message is the one to answer. Write `keep_newest(turns, budget, size)`: `turns` is a conversation
# without a system turn, starting with the user; `size(turn)` is a turn's length in tokens. Drop
# whole exchanges (a user turn and the assistant turn after it) from the **start** until the total
# size is at most `budget`, and return what is left. Never drop the last user turn: if it and the
# turns after it do not fit, raise `ValueError`.

# %% solution="ex14_truncate"
def keep_newest(turns, budget, size):
    ### BEGIN SOLUTION
    last_user = max(i for i, t in enumerate(turns) if t["role"] == "user")
    start = 0
    while sum(size(t) for t in turns[start:]) > budget and start + 2 <= last_user:
        start += 2
    if sum(size(t) for t in turns[start:]) > budget:
        raise ValueError("the last exchange alone does not fit")
    return turns[start:]
    ### END SOLUTION


# %% tests="ex14_truncate_tests" points=2
def _talk(*texts):
    return [{"role": "user" if k % 2 == 0 else "assistant", "content": t} for k, t in enumerate(texts)]


_size = lambda turn: len(turn["content"])  # noqa: E731  (one "token" per character, to keep the check readable)
_conversation = _talk("aaaa", "bb", "cccc", "dd", "eeee")
checks.expect_equal(keep_newest(_conversation, 100, _size), _conversation, "keep_newest when everything fits")
_kept = keep_newest(_conversation, 10, _size)
assert _kept != _conversation[:3], "this keeps the OLDEST turns and cuts the newest: the message to answer is the last one"
assert _kept[0]["role"] == "user", ("the conversation now starts with the assistant: drop whole exchanges (two turns), "
                                    "so it still starts with the user")
checks.expect_equal(_kept, _conversation[2:], "keep_newest(5 turns of sizes 4, 2, 4, 2, 4, budget=10)")
checks.expect_equal(keep_newest(_conversation, 4, _size), _conversation[4:], "keep_newest with room for the last turn only")
try:
    keep_newest(_conversation, 3, _size)
except ValueError:
    pass
else:
    raise AssertionError("keep_newest must raise ValueError when even the last user turn does not fit (never cut it)")
### BEGIN HIDDEN TESTS
_g = random.Random(int(torch.randint(0, 10**6, (1,), generator=checks.grading_generator("ex14_truncate"))))
for _ in range(20):
    _texts = ["x" * _g.randint(1, 6) for _ in range(_g.randint(1, 7))]
    _turns, _budget = _talk(*_texts), _g.randint(1, 25)
    _last_user = max(i for i, t in enumerate(_turns) if t["role"] == "user")
    _fits = [s for s in range(0, _last_user + 1, 2) if sum(map(_size, _turns[s:])) <= _budget]
    if _fits:
        checks.expect_equal(keep_newest(_turns, _budget, _size), _turns[_fits[0]:], f"keep_newest of sizes {list(map(_size, _turns))}, budget {_budget}")
    else:
        try:
            keep_newest(_turns, _budget, _size)
        except ValueError:
            pass
        else:
            raise AssertionError(f"sizes {list(map(_size, _turns))}, budget {_budget}: the last exchange does not fit, expected ValueError")
### END HIDDEN TESTS

# %% [markdown]
# The library's `course_lib.chat.fit_turns` does this and also keeps a system turn (an instruction,
# not history). `encode_dialogue(tokenizer, turns, context_length)` chains the three pieces:
# truncate, template and mask, shift. `dialogue_batch` pads a batch of them (padding targets -100).
#
# ## 4. Fine-tuning a pretrained model
#
# The base model is notebook 12's recipe with the BPE tokenizer: `pretrain` on Shakespeare. It
# knows Elizabethan English and nothing about conversations. Fine-tuning then has three steps:
# add the markers to the tokenizer (done above), give the model a row for each new token
# (`grow_vocabulary`: the old rows are copied, the new ones start near the average row), and
# train on the dialogues with the assistant-only loss.

# %% tags=["nbval-ignore-output"]
if on_gpu:  # larger: a context of 256 tokens, 6 blocks of 384 (about 11 M parameters), bf16
    base_config = GPTConfig(vocab_size=len(bpe), context_length=256, d_model=384, n_heads=6, n_layers=6, d_ff=1536,
                            dropout=0.1, positions="learned", scale_embeddings=False)
    pretrain_config = TrainConfig(steps=3000, batch_size=64, lr=1e-3, min_lr=1e-4, warmup_steps=100, eval_every=1000,
                                  eval_windows=100, precision="auto")
    finetune_steps, finetune_batch = 600, 64
else:
    base_config = GPTConfig(vocab_size=len(bpe), context_length=96, d_model=64, n_heads=4, n_layers=2, d_ff=256,
                            positions="learned", scale_embeddings=False)
    pretrain_config = TrainConfig(steps=300, batch_size=16, lr=3e-3, min_lr=1e-3, warmup_steps=30, eval_every=300,
                                  eval_windows=50, weight_decay=0.0)
    finetune_steps, finetune_batch = 150, 32
if grading:
    pretrain_config = TrainConfig(**{**pretrain_config.to_dict(), "steps": 20, "warmup_steps": 5, "eval_every": 20})
    finetune_steps = 10
train_text, val_text = split_text(text, 0.1)
course_lib.seed_everything(0)
base = GPT(base_config).to(device)
_history = pretrain(base, encode_stream(bpe, train_text), encode_stream(bpe, val_text), pretrain_config,
                    out=Path("runs") / "chat_base.pt", tokenizer=bpe, progress=False)
print(f"base: {base.num_parameters():,} parameters, pretrained {pretrain_config.steps} steps in "
      f"{_history['seconds']:.0f} s; Shakespeare validation loss {_history['val_loss'][-1]:.2f} nats per token")

# %% [markdown]
# The chatterbot conversations, split into training and held-out ones. Conversations whose last
# exchange does not fit the context are skipped (`select_trainable`); longer ones lose their
# oldest exchanges.

# %%
usable, skipped = select_trainable(tokenizer, conversations, base_config.context_length)
random.Random(0).shuffle(usable)
held_out, training = usable[:200], usable[200:]
train_data = dialogue_batch(tokenizer, training, base_config.context_length)
val_data = dialogue_batch(tokenizer, held_out, base_config.context_length)
print(f"{len(training)} conversations to learn from, {len(held_out)} held out, {skipped} skipped; "
      f"{int((train_data[1] != -100).sum()):,} learned tokens of {train_data[1].numel():,} positions")

# %% [markdown]
# Before and after: the **perplexity of the assistant's replies** on held-out conversations
# (notebook 10's measure, on the learned tokens only).

# %% tags=["nbval-ignore-output"]
torch.manual_seed(0)
chat_model = grow_vocabulary(base, len(tokenizer))
before = math.exp(evaluate(chat_model, val_data))
_started = time.perf_counter()
_history = train(chat_model, train_data, finetune_steps, lr=3e-3, batch_size=finetune_batch, progress=False)
after = math.exp(evaluate(chat_model, val_data))
print(f"reply perplexity on held-out conversations: {before:.1f} before, {after:.1f} after "
      f"{finetune_steps} steps ({time.perf_counter() - _started:.0f} s)")
save_checkpoint(Path("runs") / "chat.pt", chat_model, tokenizer)

# %% [markdown]
# Measured on the 2-core AMD EPYC this notebook was stored on: 148 before, 4.3 after. The
# threshold below is what CI checks.

# %%
assert grading or after < before / 10, (before, after)
print("reply perplexity at least 10x lower after fine-tuning: yes")

# %% [markdown]
# What it says now (sampled at temperature 0.7; `chat()` is notebook 15's subject). A model this
# small, trained for seconds, has learned the *format*: it answers in the assistant's voice and
# stops with `<|end|>`. It has not learned much English; the GPU configuration does better.

# %% tags=["nbval-ignore-output"]
_generator = torch.Generator().manual_seed(0)
for _question in ["Hello", "What is your name?", "Do you like music?", "Tell me a joke."]:
    print(f"{_question!r:>24} -> {chat(chat_model, tokenizer, [], _question, max_new_tokens=40, generator=_generator)!r}")

# %% [markdown]
# The same from a terminal, on any checkpoint `train` or `pretrain` wrote:
#
# ```
# python -m course_lib finetune --base runs/chat_base.pt --data data/dialogues.jsonl --out runs/chat.pt
# python -m course_lib chat --checkpoint runs/chat.pt
# ```
#
# ## 5. Does the history matter? A measured answer
#
# `course_lib.dialogue.memory_dialogues()` generates conversations whose last answer is only in
# the history: the user says their name and what they like, talks about something else, then asks.
# Every (name, like) pair is one conversation; the held-out pairs never occur in training, so
# answering them means *reading* the conversation.

# %%
memory_train, memory_held_out = memory_dialogues()
print(f"{len(memory_train)} training conversations, {len(memory_held_out)} held out; one of them:")
print(render(memory_held_out[0]))

# %% [markdown]
# Three ways to train and use a chat model, side by side:
#
# | | loss on | chat() sees |
# |---|---|---|
# | **the course** | the assistant's turns | the history |
# | the seed's loss | every token | the history |
# | **the seed's chat** (it never passes the history) | the assistant's turns | the last message only |
#
# To measure these choices and nothing else, both models start from the same random weights and
# take the same 300 steps on the memory conversations; "exact" means the reply is the expected one,
# character for character, with greedy decoding.
#
# Two things measured on the way here (same machine, same steps). Fine-tuning the chatterbot model
# of section 4 instead works too, but needs more steps: 90 % exact after these 300. And the names
# and likes have no doubled letters: with "Anna" and "apples" among them, every model above stopped
# near 87 %, its misses mostly "aples" for "apples": copying a repeated token is a skill of its
# own (the next token after "p" is "p" once and "l" once), and it would be measured instead of the
# memory.

# %%
memory_config = GPTConfig(**{**base_config.to_dict(), "vocab_size": len(tokenizer)})
memory_steps = 10 if grading else 1000 if on_gpu else 300


def exact(model, conversations, with_history=True):
    right = sum(chat(model, tokenizer, c[:-2] if with_history else [], c[-2]["content"], max_new_tokens=20,
                     temperature=0) == c[-1]["content"] for c in conversations)
    return right / len(conversations)


def fine_tune(loss_on):
    course_lib.seed_everything(0)  # the same start for both
    model = GPT(memory_config).to(device)
    started = time.perf_counter()
    train(model, dialogue_batch(tokenizer, memory_train, memory_config.context_length, loss_on=loss_on), memory_steps,
          lr=3e-3, batch_size=32, progress=False)
    return model, time.perf_counter() - started


course_model, course_seconds = fine_tune("assistant")

# %%
every_token_model, every_token_seconds = fine_tune("all")

# %%
evaluated = memory_held_out[:10 if grading else 150]
rows = [("the course: assistant-only loss, with history", exact(course_model, evaluated)),
        ("the seed's loss: every token, with history", exact(every_token_model, evaluated)),
        ("the seed's chat: assistant-only loss, no history", exact(course_model, evaluated, with_history=False))]

# %% tags=["nbval-ignore-output"]
for name, score in rows:
    print(f"{name:<52} {score:6.1%} exact")
print(f"({memory_steps} steps each: {course_seconds:.0f} s and {every_token_seconds:.0f} s)")

# %% [markdown]
# Measured on the 2-core AMD EPYC this notebook was stored on: 98.7 % with the history and the
# assistant-only loss, 0 % without the history (the model guesses a name or a like it has seen).
# The every-token loss does nearly as well on this task (94.7 %): the user's turns here are short and
# formulaic, so learning them costs the model little. What it costs shows in section 6 of notebook
# 13: on real dialogue, 45 % of the seed's loss is spent teaching the model to write the *user's*
# lines. The asserted threshold (what CI checks):

# %%
assert grading or (rows[0][1] >= 0.9 and rows[2][1] <= 0.1), rows
print("at least 90% exact with the history, at most 10% without it: yes")
save_checkpoint(Path("runs") / "memory_chat.pt", course_model, tokenizer)

# %% [markdown]
# ## Summary
#
# | piece | yours | the library's |
# |---|---|---|
# | template and learned tokens | `template_with_mask` | `course_lib.chat.encode_turns` |
# | shifted targets with -100 | `shift_and_mask` | `course_lib.chat.encode_dialogue` |
# | truncation, newest kept | `keep_newest` | `course_lib.chat.fit_turns` |
#
# - A chat model is a language model reading conversations in a template: role markers and an
#   end-of-turn token, special tokens added after the base vocabulary, which no typed text can forge.
# - Fine-tuning counts the assistant's tokens only (targets -100 elsewhere), and the `<|end|>`
#   that closes each reply, so the model learns when to stop.
# - A conversation too long for the context loses its oldest exchanges, never the newest message.
# - Measured: with the history, 98.7 % exact answers on conversations never seen; without it, 0 %.
#
# Also in the library: `SpecialTokens`, `grow_vocabulary`, `dialogue_batch`, `select_trainable`,
# `memory_dialogues`, `read_dialogues`, `read_cornell`, and `python -m course_lib finetune`.
#
# **Next:** notebook 15 talks to the models saved in `runs/`.
