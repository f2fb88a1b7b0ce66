# %% [markdown]
# # 09 · Tokenization: words, characters, and byte-pair encoding
#
# **Goal.** Decide what the model's "tokens" are. Compare the course's word-level tokenizer with
# characters, build byte-pair encoding (BPE) from scratch, and measure the trade-off between
# vocabulary size and sequence length on the course's texts.
#
# **You will build** `BPETokenizer` (learn merges, encode, decode), kept in `course_lib.bpe`.

# %%
from collections import Counter

import matplotlib.pyplot as plt

import course_lib
from course_lib import checks
from course_lib.data import data_path, load_sentences
from course_lib.tokenizer import WordTokenizer

course_lib.seed_everything(0)
lang = data_path("lang.txt").read_text(encoding="utf-8")
stories = data_path("stories.txt").read_text(encoding="utf-8")
print(f"lang.txt: {len(lang):,} characters;  stories.txt: {len(stories):,} characters")

# %% [markdown]
# ## 1. Words: short sequences, big vocabularies, and `<unk>`
#
# The course's tokenizer (notebook 07) gives every distinct space-separated word an id. Sequences are
# short, but every new word form ("Python." vs "Python", "learn" vs "learning") needs its own
# entry, and a word never seen in training can only become `<unk>`. How often does that happen on
# text the tokenizer was not built from? Build it from 15 sentences of lang.txt and encode the
# other 5:

# %%
sentences = load_sentences("lang.txt")
words = WordTokenizer.from_sentences(sentences[:15])
held_out = " ".join(sentences[15:])
unknown = [w for w in held_out.split() if w not in words.stoi]
print(f"vocabulary from 15 sentences: {len(words)} entries")
print(f"held-out words that become <unk>: {len(unknown)} of {len(held_out.split())} ({len(unknown) / len(held_out.split()):.0%})")
print("for example:", unknown[:8])

# %% [markdown]
# About half of the held-out words are unknown, and every `<unk>` erases information: "excited",
# "wisely" and "digital" all become the same token. Word-level tokenization only works on a closed
# vocabulary.
#
# ## 2. Characters: tiny vocabularies, long sequences
#
# At the other extreme, one token per character: any text over the same alphabet can be encoded,
# and the vocabulary is tiny. But sequences get about five times longer, and attention's cost grows
# with the square of the length.

# %%
for name, text in [("lang.txt", lang), ("stories.txt", stories)]:
    n_words, n_chars = len(text.split()), len(text)
    print(f"{name:12s} word vocabulary {len(set(text.split())):5d}, {n_words:6d} tokens | "
          f"character vocabulary {len(set(text)):3d}, {n_chars:7d} tokens ({n_chars / n_words:.1f} per word)")


# %% [markdown]
# ## 3. Byte-pair encoding, from scratch
#
# BPE (Sennrich et al., 2016; GPT-2 uses its byte-level form) starts from the 256 possible **bytes**
# of UTF-8, so *every* text can be encoded and there is no `<unk>`. Then it repeats:
#
# 1. count every adjacent pair of tokens in the training text;
# 2. give the most frequent pair a new token id, and replace the pair everywhere.
#
# Frequent words end up as single tokens; rare words are spelled with a few pieces.

# %%
def pair_counts(ids):
    return Counter(zip(ids, ids[1:]))  # (left, right) -> how often they stand side by side


def merge(ids, pair, new_id):
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and (ids[i], ids[i + 1]) == pair:
            out.append(new_id)  # the pair becomes one token
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


def train_bpe(text, vocab_size):
    ids = list(text.encode("utf-8"))  # start from bytes: ids 0..255
    merges = []
    while 256 + len(merges) < vocab_size:
        counts = pair_counts(ids)
        if not counts:
            break
        pair = max(counts, key=counts.get)  # the most frequent pair (first seen wins a tie)
        if counts[pair] < 2:
            break
        ids = merge(ids, pair, 256 + len(merges))
        merges.append(pair)
    return merges


merges = train_bpe(lang, 400)
vocab = {i: bytes([i]) for i in range(256)}
for rank, (a, b) in enumerate(merges):
    vocab[256 + rank] = vocab[a] + vocab[b]
print(f"{len(merges)} merges")
print("the first ten:", [vocab[256 + r].decode() for r in range(10)])
print("the longest tokens:", sorted((vocab[256 + r].decode() for r in range(len(merges))), key=len)[-8:])

# %% [markdown]
# The first merges join common letter pairs and spaces ("e ", "in", "th"); later ones build whole
# frequent words ("Python") and even pieces of phrases across spaces ("deep learning",
# "ural network"). The library's `BPETokenizer` learns exactly the same merges:

# %%
from course_lib.bpe import BPETokenizer

bpe = BPETokenizer.train(lang, 400)
assert bpe.merges == merges
sentence = "Python libraries like Pandas make data analysis easier."
ids = bpe.encode(sentence)
print(f"{len(sentence.encode('utf-8'))} bytes -> {len(ids)} tokens:", bpe.token_strings(ids))

# %% [markdown]
# ## 4. Every byte round-trips
#
# Decoding joins the tokens' bytes and decodes UTF-8 once, at the end (a token can hold half of a
# multi-byte character). Text the tokenizer never saw, in any script, comes back exactly:

# %%
for text in ["GPT 模型从头实现", "naïve café — déjà vu", "emoji 🙂🚀", "tabs\tand\nnewlines", ""]:
    ids = bpe.encode(text)
    assert bpe.decode(ids) == text
    print(f"{text!r:30} {len(text.encode('utf-8')):3d} bytes -> {len(ids):3d} tokens, round trip OK")

# %% [markdown]
# (`tests/test_bpe.py` checks the round trip on hundreds of random Unicode strings with
# *hypothesis*, a property-based testing library.)
#
# ## 5. The trade-off, measured
#
# More merges: a bigger vocabulary (a bigger embedding table and output layer) and shorter
# sequences. Train BPE on stories.txt with several vocabulary sizes and measure the tokens per word
# on its last 400 sentences, which the merges were not learned from:

# %%
story_lines = stories.splitlines()
train_text, test_text = "\n".join(story_lines[:1000]), "\n".join(story_lines[-400:])
n_test_words = len(test_text.split())
sizes = [256, 300, 400, 600, 800]
tokens_per_word = []
for size in sizes:
    tokenizer = BPETokenizer.train(train_text, size)
    tokens_per_word.append(len(tokenizer.encode(test_text)) / n_test_words)
    print(f"vocabulary {len(tokenizer):4d}: {tokens_per_word[-1]:.2f} tokens per word")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.plot(sizes, tokens_per_word, "o-")
ax.axhline(1.0, color="grey", linestyle=":", label="word level (if no word were unknown)")
ax.set_xlabel("vocabulary size")
ax.set_ylabel("tokens per word (held-out text)")
ax.set_title("BPE on stories.txt: vocabulary vs sequence length")
ax.legend()
plt.show()

# %% [markdown]
# With 256 tokens (bytes only) a word costs as many tokens as it has bytes, spaces included; a few
# hundred merges bring that below one token per word. Below one? Nothing stops a merge from
# crossing a space, so on this repetitive text whole phrases ("in the ", "the garden") become single
# tokens. GPT-2 prevents that by splitting the text into words (with a regular expression) before
# learning merges, so its tokens stay inside words. Real tokenizers use 30,000–200,000 tokens for
# the words of many languages; GPT-2's has 50,257.
#
# ## 6. Compared with GPT-2's tokenizer (if `tiktoken` is installed)
#
# OpenAI's `tiktoken` package ships GPT-2's trained BPE. It is optional here: the cell below skips
# cleanly without it (and it downloads the vocabulary on first use).

# %% tags=["nbval-ignore-output"]
try:
    import tiktoken

    gpt2 = tiktoken.get_encoding("gpt2")
    gpt2_ids = gpt2.encode(sentence)
    print(f"GPT-2: {len(gpt2_ids)} tokens:", [gpt2.decode([i]) for i in gpt2_ids])
    print(f"ours (400 tokens, trained on lang.txt): {len(bpe.encode(sentence))} tokens")
except Exception as error:  # not installed, or no network for its vocabulary file
    print(f"skipped: tiktoken is not available here ({type(error).__name__})")


# %% [markdown]
# ## Exercises
#
# Each test cell checks the exercise just above it, and nothing else in the notebook uses the
# exercises: skip one and the rest still runs. Silence means pass; otherwise the message says what
# is wrong.
#
# **Exercise 1 (implement, 2 points).** Write `most_frequent_pair(ids)`: the adjacent pair that
# occurs most often in the list `ids`, or `None` for fewer than two ids. Count every adjacent
# position, as `BPETokenizer.train` does: in `[1, 1, 1]` the pair `(1, 1)` occurs twice. Ties go to the
# pair that occurs first.

# %% solution="ex09_most_frequent_pair"
def most_frequent_pair(ids):
    ### BEGIN SOLUTION
    counts = Counter(zip(ids, ids[1:]))
    return max(counts, key=counts.get) if counts else None
    ### END SOLUTION


# %% tests="ex09_most_frequent_pair_tests" points=2
checks.expect_equal(most_frequent_pair([1, 2, 3, 1, 2]), (1, 2), "most_frequent_pair([1, 2, 3, 1, 2])")
checks.expect_equal(most_frequent_pair([5, 6, 1, 2, 5, 6, 1, 2]), (5, 6), "most_frequent_pair([5, 6, 1, 2, 5, 6, 1, 2]): "
                    "(5, 6) and (1, 2) occur twice each, and a tie goes to the pair that occurs first")
checks.expect_equal(most_frequent_pair([1, 1, 1, 2, 3, 2, 3]), (1, 1), "most_frequent_pair([1, 1, 1, 2, 3, 2, 3]): count every "
                    "adjacent position, overlapping ones too, so (1, 1) occurs twice, as often as (2, 3), and first")
checks.expect_equal(most_frequent_pair([5]), None, "most_frequent_pair([5]): fewer than two ids have no pair")
### BEGIN HIDDEN TESTS
checks.expect_equal(most_frequent_pair([]), None, "most_frequent_pair([])")
checks.expect_equal(most_frequent_pair([7, 8, 9, 9, 7, 8, 9, 9]), (7, 8), "a tie goes to the first pair")
checks.expect_equal(most_frequent_pair(list(b"aaabdaaabac")), (97, 97), "most_frequent_pair(b'aaabdaaabac')")
checks.expect_equal(most_frequent_pair([3, 9, 9, 9, 4, 3, 4, 3]), (9, 9), "most_frequent_pair([3, 9, 9, 9, 4, 3, 4, 3])")
import torch as _torch

_gen = checks.grading_generator("ex09_most_frequent_pair")
for _ in range(20):
    _ids = _torch.randint(0, 4, (int(_torch.randint(2, 30, (1,), generator=_gen)),), generator=_gen).tolist()
    _counts = {}
    for _pair in zip(_ids, _ids[1:]):
        _counts[_pair] = _counts.get(_pair, 0) + 1
    checks.expect_equal(most_frequent_pair(_ids), max(_counts, key=_counts.get), f"most_frequent_pair({_ids})")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (predict, then run; 1 point).** The text is `"aaaa"` (bytes 97 97 97 97) and the only
# merge is `(97, 97) -> 256`. How many tokens does `merge` produce? And for `"aaaaa"`? Set
# `tokens_for_4` and `tokens_for_5`.

# %% solution="ex09_predict_merge"
tokens_for_4 = None  # your answer
tokens_for_5 = None  # your answer
### BEGIN SOLUTION
tokens_for_4 = 2  # [256, 256]
tokens_for_5 = 3  # [256, 256, 97]: pairs do not overlap
### END SOLUTION

# %% tests="ex09_predict_merge_tests" points=1
checks.answered(tokens_for_4=tokens_for_4, tokens_for_5=tokens_for_5)
assert isinstance(tokens_for_4, int) and isinstance(tokens_for_5, int), "answers must be ints"
### BEGIN HIDDEN TESTS
checks.expect_equal(tokens_for_4, len(merge(list(b"aaaa"), (97, 97), 256)), "tokens_for_4")
checks.expect_equal(tokens_for_5, len(merge(list(b"aaaaa"), (97, 97), 256)), "tokens_for_5")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (spot the bug, 2 points).** This decoder works on lang.txt and crashes on
# `"模型"`. Why? Write `fixed_decode(vocab, ids)`.

# %%
def buggy_decode(vocab, ids):
    return "".join(vocab[i].decode("utf-8") for i in ids)


# %% solution="ex09_spot_the_bug"
def fixed_decode(vocab, ids):
    ### BEGIN SOLUTION
    # One character can be split over several tokens (a Chinese character is 3 bytes): join all
    # the bytes first, then decode UTF-8 once.
    return b"".join(vocab[i] for i in ids).decode("utf-8", errors="replace")
    ### END SOLUTION


# %% tests="ex09_spot_the_bug_tests" points=2
checks.expect_equal(fixed_decode(bpe.vocab, bpe.encode("Python")), "Python", "fixed_decode of 'Python'")
checks.expect_equal(fixed_decode(bpe.vocab, bpe.encode("模型")), "模型", "fixed_decode of '模型' (each of these characters is "
                    "3 bytes, and a token can hold part of one: join the bytes of all the tokens, then decode once)")
### BEGIN HIDDEN TESTS
for _text in ["模型", "déjà 🙂", "Data science.", ""]:
    checks.expect_equal(fixed_decode(bpe.vocab, bpe.encode(_text)), _text, f"fixed_decode of {_text!r}")
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# - Words: short sequences, but a large vocabulary and `<unk>` for anything new (about half of
#   lang.txt's held-out words). Characters: no `<unk>`, but sequences about five times longer.
# - Byte-level BPE starts from bytes (nothing is ever unknown) and merges frequent pairs; the number
#   of merges trades vocabulary size against sequence length, as measured above.
# - Decode by joining bytes first: one character can span several tokens.
#
# **Next: [10 · Evaluation and perplexity](10_evaluation_and_perplexity.ipynb)**: measure what a
# model has learned on text it has never seen.
