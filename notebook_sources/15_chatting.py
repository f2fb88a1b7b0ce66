# %% [markdown]
# # 15 · Chatting: decoding for chat, the history, a chat box
#
# **Goal.** Talk to the chat model of notebook 14. A reply is generated the way notebook 08
# generated text, with three changes that make it a *turn* in a conversation: the prompt is the
# whole conversation in the chat template, generation stops at `<|end|>`, and the reply, never the
# prompt, is what comes back. Then: sampling settings for chat (top-p, a repetition penalty),
# streaming, what happens when the conversation outgrows the context, and a chat box.
#
# **You will build** the repetition penalty; the library's versions are
# `course_lib.sampling.apply_repetition_penalty` and `course_lib.chat.chat` / `stream_chat`.
#
# The model is the one notebook 14 saved in `runs/memory_chat.pt` (it remembers what you tell it);
# without that file this notebook trains the same model, about 15 seconds on a CPU.

# %%
from pathlib import Path

import torch

import course_lib
from course_lib import checks
from course_lib.chat import ASSISTANT, chat, chat_tokenizer, dialogue_batch, encode_turns, render, stream_chat
from course_lib.dialogue import memory_dialogues
from course_lib.sampling import generate
from course_lib.training import load_checkpoint

course_lib.seed_everything(0)
device = course_lib.get_device()
print("device:", device)

# %% tags=["nbval-ignore-output"]
checkpoint = Path("runs") / "memory_chat.pt"
if checkpoint.is_file():
    model, tokenizer = load_checkpoint(checkpoint, device=device)
    print(f"loaded {checkpoint}")
else:  # notebook 14, section 5, in a few lines
    from course_lib.bpe import BPETokenizer
    from course_lib.data import data_path
    from course_lib.gpt import GPT, GPTConfig
    from course_lib.training import save_checkpoint, train

    tokenizer = chat_tokenizer(BPETokenizer.train(data_path("shakespeare.txt").read_text(encoding="utf-8"), 512))
    course_lib.seed_everything(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer), context_length=96, d_model=64, n_heads=4, n_layers=2, d_ff=256,
                          positions="learned", scale_embeddings=False)).to(device)
    train(model, dialogue_batch(tokenizer, memory_dialogues()[0], 96), 300, lr=3e-3, batch_size=32, progress=False)
    save_checkpoint(checkpoint, model, tokenizer)
    print(f"trained and saved {checkpoint}")
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
checks.expect_equal(reply, "You love opera.", "the last reply")

# %% [markdown]
# What the model read for the last reply, markers written out:

# %%
print(render(history[:-1]) + ASSISTANT)

# %% [markdown]
# ## 2. Where a reply ends
#
# Notebook 08's `generate` does not know about turns: it writes on past `<|end|>`. What comes after
# an assistant's `<|end|>` was never a target in fine-tuning (the next turn is the user's, and the
# loss ignored it), so the model writes noise there. Stopping at `<|end|>`, and at any other
# marker, is what makes the model take one turn and no more.

# %%
prompt = encode_turns(tokenizer, history[:-1])[0] + [tokenizer.id_of(ASSISTANT)]
raw = generate(model, torch.tensor(prompt), 30, temperature=0)[len(prompt):]
print("generate():", tokenizer.decode(raw.tolist(), skip_special=False))
print("chat():    ", chat(model, tokenizer, history[:-2], history[-2]["content"], temperature=0))

# %% [markdown]
# ## 3. Sampling a reply
#
# Greedy decoding always gives the same reply. Chat models usually *sample* with a temperature near
# 0.7 and **top-p** (nucleus) 0.9 (notebook 08): varied wording, and the long tail of unlikely
# tokens cut off. On a question with one right answer a well-trained model stays right:

# %%
generator = torch.Generator().manual_seed(0)
for _ in range(3):
    print(chat(model, tokenizer, history[:-2], "What do I love?", temperature=0.7, top_p=0.9, generator=generator))

# %% [markdown]
# Small models fall into loops ("jazzzzzz", "the the the"). A **repetition penalty** (Keskar et
# al., 2019, the CTRL paper) makes every token already in the reply less likely: its logit is
# divided by the penalty $\theta > 1$ when positive, and multiplied by it when negative. Dividing a
# negative logit would move it *toward* zero, making the token *more* likely.
#
# **Exercise 4 (implement, 2 points).** Write `penalize(logits, seen, penalty)`: `logits` a 1-D
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

# %%
long_history = []
for message in ["I am Rex and I like kites.", "How are you?", "Do you sleep?", "Is it late?", "What is my name?"]:
    stream = stream_chat(model, tokenizer, long_history, message, max_new_tokens=20, temperature=0)
    reply = "".join(stream)
    print(f"you: {message:<28} bot: {reply:<22} (prompt {stream.prompt_tokens} tokens, "
          f"{stream.dropped_turns} old turns dropped)")
    long_history += [{"role": "user", "content": message}, {"role": "assistant", "content": reply}]

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

# %%
for _message in ["Hi! I'm Lars. I love tango.", "Do you sleep?", "What do I love?"]:
    box.say(_message)
for _turn in box.history:
    print(f"{_turn['role']:>9}: {_turn['content']}")

# %% [markdown]
# And from a terminal, with `/reset` and `/exit`:
#
# ```
# python -m course_lib chat --checkpoint notebooks/runs/memory_chat.pt --temperature 0
# ```
#
# ## What you built
#
# `penalize`, the repetition penalty (the library's `apply_repetition_penalty`), and you used
# `chat`, `stream_chat` (its pieces, `finish_reason` and token counts), the history's truncation,
# and `chat_widget`.
