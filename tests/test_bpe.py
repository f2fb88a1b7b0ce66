"""Byte-pair encoding: round trips on arbitrary Unicode, merges on a hand-checked case."""
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.bpe import BPETokenizer, merge
from course_lib.data import data_path


@pytest.fixture(scope="module")
def tokenizer():
    return BPETokenizer.train(data_path("lang.txt").read_text(encoding="utf-8"), vocab_size=400)


def test_merge_is_left_to_right_and_non_overlapping():
    assert merge([1, 1, 1, 2, 1, 1], (1, 1), 9) == [9, 1, 2, 9]


def test_training_on_a_hand_checked_text():
    bpe = BPETokenizer.train("aaabdaaabac", vocab_size=259)
    # the classic example: "aa" first, then "aa"+"a"... each merge is the most frequent pair
    assert bpe.merges[0] == (ord("a"), ord("a"))
    assert bpe.vocab[256] == b"aa" and len(bpe) == 259
    assert bpe.decode(bpe.encode("aaabdaaabac")) == "aaabdaaabac"
    assert len(bpe.encode("aaabdaaabac")) < len("aaabdaaabac")


def test_learned_merges_compress_the_training_text(tokenizer):
    text = data_path("lang.txt").read_text(encoding="utf-8")
    assert len(tokenizer) == 400
    assert len(tokenizer.encode(text)) < len(text.encode("utf-8")) / 2  # measured: 1286 bytes -> 531 tokens
    assert tokenizer.token_strings(tokenizer.encode("Python")) == ["Python"]  # a frequent word becomes one token


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_round_trips_any_unicode_text(tokenizer, text):
    ids = tokenizer.encode(text)
    assert all(0 <= i < len(tokenizer) for i in ids)
    assert tokenizer.decode(ids) == text


@settings(max_examples=50, deadline=None)
@given(st.text(min_size=1, max_size=200), st.integers(min_value=256, max_value=300))
def test_trained_on_anything_round_trips_itself(text, vocab_size):
    bpe = BPETokenizer.train(text, vocab_size)
    assert bpe.decode(bpe.encode(text)) == text
    assert len(bpe.encode(text)) <= len(text.encode("utf-8"))


def test_bad_arguments(tokenizer):
    with pytest.raises(ValueError, match="vocab_size must be an int >= 256"):
        BPETokenizer.train("abc", 100)
    with pytest.raises(TypeError, match="text must be a str"):
        BPETokenizer.train(b"abc", 300)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.decode([999])
    with pytest.raises(TypeError, match="encode expects a str"):
        tokenizer.encode(None)


def reference_train(text, vocab_size):
    """The plain-Python BPE of notebook 09, pair by pair: the independent check of the NumPy version."""
    from collections import Counter

    ids, merges = list(text.encode("utf-8")), []
    while 256 + len(merges) < vocab_size:
        counts = Counter(zip(ids, ids[1:]))
        if not counts:
            break
        pair = max(counts, key=counts.get)  # ties: the pair seen first
        if counts[pair] < 2:
            break
        ids = merge(ids, pair, 256 + len(merges))
        merges.append(pair)
    return merges, ids


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("aab é\n"), max_size=120) | st.text(max_size=60), st.integers(256, 290))
def test_numpy_training_and_encoding_equal_the_plain_loop(text, vocab_size):
    merges, ids = reference_train(text, vocab_size)
    bpe = BPETokenizer.train(text, vocab_size)
    assert bpe.merges == merges
    assert bpe.encode(text) == ids


def test_numpy_version_on_runs_and_ties():
    for text in ["aaaaaaa", "aaaa b aaaaa", "abab abab ba", "zzyyzzyy", "a" * 33 + "b" * 17]:
        merges, ids = reference_train(text, 300)
        assert BPETokenizer.train(text, 300).merges == merges, text
        assert BPETokenizer.train(text, 300).encode(text) == ids, text


def test_numpy_version_on_a_real_text_and_with_a_large_vocabulary():
    text = data_path("stories.txt").read_text(encoding="utf-8")[:6000]
    merges, ids = reference_train(text, 330)
    bpe = BPETokenizer.train(text, 330)
    assert bpe.merges == merges and bpe.encode(text) == ids
    # Beyond 4096 tokens the pair counts come from np.unique instead of np.bincount: same answer
    from collections import Counter

    import numpy as np

    from course_lib import bpe as module

    rng = np.random.default_rng(0)
    for vocab_size in (300, 5000):
        big_ids = rng.integers(0, 12, 3000) * (vocab_size // 12)  # few distinct ids: many tied pairs
        counts = Counter(zip(big_ids.tolist(), big_ids[1:].tolist()))
        expected = max(counts, key=counts.get)
        assert module._most_frequent_pair(big_ids, vocab_size) == (expected, counts[expected])
    assert BPETokenizer.from_dict(bpe.to_dict()).merges == merges
    assert bpe.to_dict()["kind"] == "bpe"
    with pytest.raises(ValueError, match="pairs of earlier token ids"):
        BPETokenizer.from_dict({"kind": "bpe", "merges": [[300, 1]]})


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.sampled_from("aab é\nxy"), min_size=0, max_size=600))
def test_short_and_long_encodings_agree(text):
    """Texts up to SHORT_TEXT bytes take the earliest-merge-first loop; both paths give the same ids."""
    from course_lib import bpe as module

    tokenizer = BPETokenizer.train("aab aab é\nxy xy aaab " * 20, 300)
    short = tokenizer._encode_short(list(text.encode("utf-8")))
    ids = module._bytes_of(text)
    for rank, pair in enumerate(tokenizer.merges):
        ids = module._merge_array(ids, pair, 256 + rank) if len(ids) >= 2 else ids
    assert short == ids.tolist()
    assert tokenizer.encode(text) == short
