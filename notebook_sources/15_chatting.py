# %% [markdown]
# # 15 · Chatting: decoding for chat, the history, a chat box
#
# **Goal.** Talk to the chat model of notebook 14. A reply is generated the way notebook 08
# generated text, with three changes that make it a *turn* in a conversation: the prompt is the
# whole conversation in the chat template, generation stops at `<|end|>`, and the reply, never the
# prompt, is what comes back. Then: sampling settings for chat (top-p, a repetition penalty),
# streaming, what happens when the conversation outgrows the context, and a chat box.
#
# **You will build** the prompt a reply is generated from, the rule that ends a turn, and the
# repetition penalty; the library's versions are in `course_lib.chat.stream_chat` and
# `course_lib.sampling.apply_repetition_penalty`.
#
# The model is the one notebook 14 saved in `runs/memory_chat.pt` (it remembers what you tell it);
# without that file this notebook trains the same model, about 15 seconds on a CPU.

# %%
import random
from pathlib import Path

import torch

import course_lib
from course_lib import checks
from course_lib.chat import ASSISTANT, END, USER, chat, encode_turns, render, stream_chat
from course_lib.sampling import generate

course_lib.seed_everything(0)
device = course_lib.get_device()
grading = course_lib.grading_run()  # under nbgrader the model may be barely trained: its replies are not checked
print("device:", device)

# %% tags=["nbval-ignore-output"]
from course_lib.recipes import memory_chat_model

model, tokenizer, how = memory_chat_model(Path("runs") / "memory_chat.pt", device=device)  # notebook 14's recipe
print(how)
print(f"{model.num_parameters():,} parameters, context {model.config.context_length} tokens")

# %% [markdown]
# ## 1. A conversation is a list of turns
#
# `chat(model, tokenizer, history, message)` formats the history and the new message in the
# template, appends `<|assistant|>`, generates, and returns the reply. Keeping the conversation is
# the caller's job: append the message and the reply to the history, and pass it next time.

# %%
history = []
for message in ["Hi! I'm Nora. I love opera.", "What can you do?", "What do I love?"]:
    reply = chat(model, tokenizer, history, message, temperature=0)
    print(f"you: {message}\nbot: {reply}")
    history += [{"role": "user", "content": message}, {"role": "assistant", "content": reply}]
if not grading:
    checks.expect_equal(reply, "You love opera.", "the last reply")

# %% [markdown]
# What the model read for the last reply, markers written out:

# %%
print(render(history[:-1]) + ASSISTANT)


# %% [markdown]
# **Exercise 4 (implement, 2 points).** Write `prompt_for(tokenizer, history, message)`: the token
# ids the model reads to write its reply to `message` after `history` (a list of turns, possibly
# empty): the template of the history followed by the user's `message` as a turn
# (`encode_turns(tokenizer, turns)[0]` gives a conversation's template ids), then the
# `<|assistant|>` marker, which asks for the assistant's turn. Leave the caller's `history` list as
# it was (the caller keeps the conversation; build a new list).

# %% solution="ex15_prompt"
def prompt_for(tokenizer, history, message):
    ### BEGIN SOLUTION
    turns = history + [{"role": "user", "content": message}]
    return encode_turns(tokenizer, turns)[0] + [tokenizer.id_of(ASSISTANT)]
    ### END SOLUTION


# %% tests="ex15_prompt_tests" points=2
_history = [{"role": "user", "content": "Hi! I'm Nora."}, {"role": "assistant", "content": "Hello, Nora!"}]
_message = "What is my name?"
_full = _history + [{"role": "user", "content": _message}]
_want = encode_turns(tokenizer, _full)[0] + [tokenizer.id_of(ASSISTANT)]
_got = prompt_for(tokenizer, _history, _message)
assert isinstance(_got, list), f"prompt_for should return a list of token ids, got {type(_got).__name__}"
for _hint, _wrong in {
    "the history is missing: the seed's chat never passes it, and the model cannot know the name":
        encode_turns(tokenizer, _full[-1:])[0] + [tokenizer.id_of(ASSISTANT)],
    "the prompt must end with the <|assistant|> marker, or the model goes on writing the user's turn":
        encode_turns(tokenizer, _full)[0],
    "the <|assistant|> marker opens the reply: no <|end|> after it (that would end the reply before it starts)":
        encode_turns(tokenizer, _full)[0] + [tokenizer.id_of(ASSISTANT), tokenizer.id_of(END)],
    "the message must be a turn of its own: marker, text, <|end|>":
        encode_turns(tokenizer, _history)[0] + tokenizer.encode(_message) + [tokenizer.id_of(ASSISTANT)],
}.items():
    assert _got != _wrong, _hint
checks.expect_equal(_got, _want, "prompt_for(tokenizer, history, 'What is my name?')")
checks.expect_equal(prompt_for(tokenizer, [], "Hi"), encode_turns(tokenizer, [{"role": "user", "content": "Hi"}])[0]
                    + [tokenizer.id_of(ASSISTANT)], "prompt_for with an empty history")
checks.expect_equal(_history, [{"role": "user", "content": "Hi! I'm Nora."}, {"role": "assistant", "content": "Hello, Nora!"}],
                    "the history after prompt_for (it must not change the caller's list)")
### BEGIN HIDDEN TESTS
_g = random.Random(int(torch.randint(0, 10**6, (1,), generator=checks.grading_generator("ex15_prompt"))))
for _ in range(5):
    _n = _g.randint(0, 3)
    _h = ([{"role": "system", "content": "Be kind."}] if _g.random() < 0.5 else []) + [
        {"role": "user" if k % 2 == 0 else "assistant", "content": _g.choice(["Hi.", "Yes!", "What now?", "I am Rex."])}
        for k in range(2 * _n)]
    _m = _g.choice(["Who am I?", "Tell me a joke.", "ok"])
    _before = [dict(t) for t in _h]
    checks.expect_equal(prompt_for(tokenizer, _h, _m), encode_turns(tokenizer, _h + [{"role": "user", "content": _m}])[0]
                        + [tokenizer.id_of(ASSISTANT)], f"prompt_for after {len(_h)} turns")
    checks.expect_equal(_h, _before, "the history after prompt_for")
### END HIDDEN TESTS

# %% [markdown]
# ## 2. Where a reply ends
#
# Notebook 08's `generate` does not know about turns: it writes on past `<|end|>`. What comes after
# an assistant's `<|end|>` was never a target in fine-tuning (the next turn is the user's, and the
# loss ignored it), so the model writes noise there. Stopping at `<|end|>`, and at any other
# marker, is what makes the model take one turn and no more.

# %% tags=["nbval-ignore-output"]
prompt = encode_turns(tokenizer, history[:-1])[0] + [tokenizer.id_of(ASSISTANT)]
raw = generate(model, torch.tensor(prompt), 30, temperature=0)[len(prompt):]
print("generate():", tokenizer.decode(raw.tolist(), skip_special=False))
print("chat():    ", chat(model, tokenizer, history[:-2], history[-2]["content"], temperature=0))


# %% [markdown]
# **Exercise 5 (implement, 2 points).** Write `take_turn(generated, first_special)`: `generated` is
# the list of token ids a model wrote after the prompt, and every id `>= first_special` is a special
# token (`<|end|>` or a role marker; `tokenizer.first_special` here). Return `(reply, reason)`:
# `reply` the ids *before* the first special token, and `reason` `"stop"`; or, when there is no
# special token, all of `generated` and `"length"` (the model was cut off by the token limit).

# %% solution="ex15_turn"
def take_turn(generated, first_special):
    ### BEGIN SOLUTION
    for position, token in enumerate(generated):
        if token >= first_special:
            return generated[:position], "stop"
    return list(generated), "length"
    ### END SOLUTION


# %% tests="ex15_turn_tests" points=2
_end, _user, _first = tokenizer.id_of(END), tokenizer.id_of(USER), tokenizer.first_special
_words = tokenizer.encode("You are Nora.")
_got = take_turn(_words + [_end] + tokenizer.encode("cks.") + [_end], _first)
assert isinstance(_got, tuple) and len(_got) == 2, f"take_turn should return a pair (reply, reason), got {_got!r:.80}"
assert _got[0] != _words + [_end], "the <|end|> token is not part of the reply: stop before it"
assert _got[0] != _words + [_end] + tokenizer.encode("cks.") + [_end], "the reply ends at the first <|end|>, not the last"
checks.expect_equal(_got, (_words, "stop"), "take_turn of 'You are Nora.<|end|>cks.<|end|>'")
assert take_turn(_words + [_user] + _words, _first)[0] != _words + [_user] + _words, (
    "<|user|> is a special token too: a model that starts the user's turn has ended its own")
checks.expect_equal(take_turn(_words + [_user] + _words, _first), (_words, "stop"), "take_turn with a <|user|> marker")
checks.expect_equal(take_turn(_words, _first), (_words, "length"), "take_turn with no special token")
checks.expect_equal(take_turn([_end], _first), ([], "stop"), "take_turn of an immediate <|end|>")
checks.expect_equal(take_turn(_words + [_first], _first), (_words, "stop"),
                    "take_turn with id first_special itself (<|system|>, the first special token)")
### BEGIN HIDDEN TESTS
_g = random.Random(int(torch.randint(0, 10**6, (1,), generator=checks.grading_generator("ex15_turn"))))
for _ in range(20):
    _ids = [_g.randrange(len(tokenizer)) if _g.random() < 0.15 else _g.randrange(_first) for _ in range(_g.randint(0, 12))]
    _cut = next((k for k, t in enumerate(_ids) if t >= _first), None)
    _want = (_ids, "length") if _cut is None else (_ids[:_cut], "stop")
    checks.expect_equal(tuple(take_turn(_ids, _first)), _want, f"take_turn({_ids}, {_first})")
### END HIDDEN TESTS

# %% [markdown]
# ## 3. Sampling a reply
#
# Greedy decoding always gives the same reply. Chat models usually *sample* with a temperature near
# 0.7 and **top-p** (nucleus) 0.9 (notebook 08): varied wording, and the long tail of unlikely
# tokens cut off. On a question with one right answer a well-trained model stays right:

# %% tags=["nbval-ignore-output"]
generator = torch.Generator().manual_seed(0)
samples = [chat(model, tokenizer, history[:-2], "What do I love?", temperature=0.7, top_p=0.9, generator=generator)
           for _ in range(3)]
print("\n".join(samples))
assert grading or samples.count("You love opera.") >= 2, samples


# %% [markdown]
# Small models fall into loops ("jazzzzzz", "the the the"). A **repetition penalty** (Keskar et
# al., 2019, the CTRL paper) makes every token already in the reply less likely: its logit is
# divided by the penalty $\theta > 1$ when positive, and multiplied by it when negative. Dividing a
# negative logit would move it *toward* zero, making the token *more* likely.
#
# **Exercise 6 (implement, 2 points).** Write `penalize(logits, seen, penalty)`: `logits` a 1-D
# float tensor over the vocabulary, `seen` a list of token ids (repeats possible), `penalty` a number
# $\geq 1$. Return a new tensor: for every token id in `seen`, its logit divided by `penalty` if it
# is positive, multiplied by `penalty` otherwise; every other logit unchanged. A token seen twice is
# penalised once.

# %% solution="ex15_penalty"
def penalize(logits, seen, penalty):
    ### BEGIN SOLUTION
    out = logits.clone()
    ids = torch.tensor(sorted(set(seen)), dtype=torch.long)
    if len(ids):
        chosen = out[ids]
        out[ids] = torch.where(chosen > 0, chosen / penalty, chosen * penalty)
    return out
    ### END SOLUTION


# %% tests="ex15_penalty_tests" points=2
_logits = torch.tensor([2.0, -1.0, 0.5, -3.0, 4.0])
_seen = [0, 1, 1, 3]
_want = torch.tensor([2.0 / 1.5, -1.5, 0.5, -4.5, 4.0])
_result = penalize(_logits, _seen, 1.5)
checks.expect_close(_result, _want, "penalize([2, -1, 0.5, -3, 4], seen=[0, 1, 1, 3], 1.5)", atol=1e-6, mistakes={
    "a negative logit must be MULTIPLIED by the penalty: dividing -1 by 1.5 gives -0.67, a higher logit, "
    "so the token becomes more likely": torch.tensor([2.0 / 1.5, -1.0 / 1.5, 0.5, -3.0 / 1.5, 4.0]),
    "a token seen twice is penalised once, not twice": torch.tensor([2.0 / 1.5, -2.25, 0.5, -4.5, 4.0]),
    "only the tokens in seen are penalised, not every token": torch.tensor([2.0 / 1.5, -1.5, 0.5 / 1.5, -4.5, 4.0 / 1.5]),
    "positive logits are divided by the penalty (multiplying makes a seen token more likely)":
        torch.tensor([3.0, -1.5, 0.5, -4.5, 4.0]),
})
checks.expect_close(_logits, torch.tensor([2.0, -1.0, 0.5, -3.0, 4.0]), "the logits passed in (return a new tensor, "
                    "leave the input as it was)")
checks.expect_close(penalize(_logits, [], 2.0), _logits, "penalize with nothing seen")
### BEGIN HIDDEN TESTS
from course_lib.sampling import apply_repetition_penalty

_g = torch.Generator().manual_seed(int(torch.randint(0, 10**6, (1,), generator=checks.grading_generator("ex15_penalty"))))
for _ in range(5):
    _logits = torch.randn(40, generator=_g) * 3
    _seen = torch.randint(0, 40, (int(torch.randint(1, 30, (1,), generator=_g)),), generator=_g).tolist()
    _p = 1 + float(torch.rand(1, generator=_g)) * 2
    checks.expect_close(penalize(_logits, _seen, _p), apply_repetition_penalty(_logits, _seen, _p),
                        f"penalize with penalty {_p:.2f}", atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# The library's `apply_repetition_penalty` is checked against `transformers`'
# `RepetitionPenaltyLogitsProcessor` in `tests/test_chat.py`. `chat(..., repetition_penalty=1.3)`
# applies it to the tokens of the reply so far, not to the prompt: a reply *should* be free to
# repeat the user's name. It is off (1.0) by default: on this model, trained on replies that repeat
# a word from the history, it does more harm than good.
#
# ## 4. Streaming
#
# ChatGPT shows a reply as it is written. `stream_chat` returns an iterator of text pieces, one per
# token (a piece waits when a token ends inside a UTF-8 character); afterwards it says why it
# stopped and how many tokens it used: what an HTTP API reports.

# %%
stream = stream_chat(model, tokenizer, history[:-2], "What do I love?", temperature=0)
for piece in stream:
    print(piece, end="|")
print(f"\nfinish_reason={stream.finish_reason!r}, prompt_tokens={stream.prompt_tokens}, "
      f"completion_tokens={stream.completion_tokens}, dropped_turns={stream.dropped_turns}")

# %% [markdown]
# ## 5. When the conversation outgrows the context
#
# The model reads at most 96 tokens. When the conversation is longer, `chat()` drops the oldest
# exchanges (notebook 14's `keep_newest`; the library's `fit_turns`), keeping room for the reply.
# The model then no longer knows what was said in them: after a few more exchanges it has
# forgotten the user's name.

# %% tags=["nbval-ignore-output"]
long_history = []
for message in ["I am Rex and I like kites.", "How are you?", "Do you sleep?", "Is it late?", "What is my name?"]:
    stream = stream_chat(model, tokenizer, long_history, message, max_new_tokens=20, temperature=0)
    reply = "".join(stream)
    print(f"you: {message:<28} bot: {reply:<22} (prompt {stream.prompt_tokens} tokens, "
          f"{stream.dropped_turns} old turns dropped)")
    long_history += [{"role": "user", "content": message}, {"role": "assistant", "content": reply}]
assert stream.dropped_turns >= 2 and (grading or "Rex" not in reply), "the introduction no longer fits, so the name is gone"

# %% [markdown]
# This is the context window at work, and why real chat models read 8,000 to 1,000,000 tokens.
# Dropping whole turns, oldest first, is the simplest policy: the newest message is always answered.
# Others summarise the dropped turns, or keep the system prompt and the first exchange.
#
# ## 6. A chat box
#
# `course_lib.widgets.chat_widget` puts this together: type a message and press Enter; the reply
# streams in; the conversation is kept as history; Reset starts over. (In ipywidgets 7 and 8, and
# in Colab; `tests/test_browser_widget.py` drives it in a real browser.) Try: "Hi! I'm Ada. I love
# tango.", "How are you?", then "What do I love?". Then ask the same question right after the
# introduction, or something else entirely: this model learned conversations of one shape (an
# introduction, small talk, a question) and little else. What it can do is what its data showed it.

# %% tags=["nbval-ignore-output"]
from course_lib.widgets import chat_widget

box = chat_widget(model, tokenizer)
box

# %% [markdown]
# The box is an ordinary object too; `say` sends a message as if typed:

# %% tags=["nbval-ignore-output"]
for _message in ["Hi! I'm Lars. I love tango.", "Do you sleep?", "What do I love?"]:
    box.say(_message)
for _turn in box.history:
    print(f"{_turn['role']:>9}: {_turn['content']}")
assert grading or box.history[-1]["content"] == "You love tango.", box.history

# %% [markdown]
# And from a terminal, with `/reset` and `/exit`:
#
# ```
# python -m course_lib chat --checkpoint notebooks/runs/memory_chat.pt --temperature 0
# ```
#
# ## Summary
#
# - A reply is generated from the conversation in the template plus `<|assistant|>` (your
#   `prompt_for`), and ends at the first special token (your `take_turn`): the reply, never the prompt.
# - Chat sampling: a temperature near 0.7 with top-p 0.9; a repetition penalty (your `penalize`,
#   the library's `apply_repetition_penalty`) divides positive logits and multiplies negative ones.
# - `stream_chat` yields the reply piece by piece and reports `finish_reason` and token counts.
# - When the conversation outgrows the context, the oldest exchanges go, and with them what the
#   model knew from them.
# - `chat_widget` and `python -m course_lib chat` keep the history for you.
#
# **Next:** serving this model over HTTP, to a browser and to the tools that speak OpenAI's API.
