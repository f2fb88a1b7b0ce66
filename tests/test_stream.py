"""A continuous text as a token stream (notebook 12): the character tokenizer, windows, the split, bits per character."""
import math

import pytest
import torch

from course_lib.bpe import BPETokenizer
from course_lib.stream import bits_per_char, encode_stream, random_windows, sequential_windows, split_text, windows_at
from course_lib.tokenizer import CharTokenizer, WordTokenizer, tokenizer_from_dict


def test_char_tokenizer_round_trip_and_clear_errors():
    text = "To be, or not to be:\nthat is the question. Ça va? 模型"
    tok = CharTokenizer.from_text(text)
    assert tok.chars == "".join(sorted(set(text))) and len(tok) == len(set(text))
    assert tok.decode(tok.encode(text)) == text
    assert tok.decode(torch.tensor(tok.encode("be"))) == "be"
    with pytest.raises(ValueError, match=r"not built with: \['Z'\]"):
        tok.encode("Zebra")
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([len(tok)])
    with pytest.raises(ValueError, match="non-empty"):
        CharTokenizer.from_text("")
    for made in (tok, BPETokenizer.train(text, 270), WordTokenizer.from_sentences(["a b"])):
        again = tokenizer_from_dict(made.to_dict())
        assert type(again) is type(made) and again.to_dict() == made.to_dict()
    with pytest.raises(ValueError, match="unknown tokenizer kind 'sentencepiece'"):
        tokenizer_from_dict({"kind": "sentencepiece"})


def test_windows_are_the_stream_shifted_by_one_brute_force():
    ids = torch.arange(100) * 3 % 17
    x, y = random_windows(ids, 8, 32, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (32, 8)
    for row_x, row_y in zip(x, y):
        start = next(s for s in range(100 - 8) if torch.equal(ids[s:s + 8], row_x) and torch.equal(ids[s + 1:s + 9], row_y))
        assert start <= 100 - 9  # the window and its target fit in the stream
    starts = torch.tensor([0, 91, 5])
    wx, wy = windows_at(ids, starts, 8)
    for i, s in enumerate(starts.tolist()):
        assert torch.equal(wx[i], ids[s:s + 8]) and torch.equal(wy[i], ids[s + 1:s + 9])
    # every start that leaves room is drawn: the last possible one included
    x, _ = random_windows(torch.arange(10), 8, 200, torch.Generator().manual_seed(1))
    assert set(x[:, 0].tolist()) == {0, 1}


def test_sequential_windows_predict_every_token_once():
    ids = torch.arange(50)
    x, y = sequential_windows(ids, 7)
    assert x.shape == (7, 7)  # (50 - 1) // 7 windows
    assert torch.equal(y.flatten(), ids[1:50])
    x, _ = sequential_windows(ids, 7, max_windows=3)
    assert x[:, 0].tolist() == [0, 21, 42]  # evenly spaced, first and last kept
    with pytest.raises(ValueError, match="holds no window of context_length=64"):
        sequential_windows(ids, 64)


def test_split_text_cuts_at_a_line_break_from_the_end():
    text = "".join(f"line {i}\n" for i in range(100))
    train, val = split_text(text, 0.1)
    assert train + val == text and train.endswith("\n") and val.startswith("line 9")
    assert abs(len(val) / len(text) - 0.1) < 0.02
    with pytest.raises(ValueError, match="val_fraction must be < 1"):
        split_text(text, 1.0)
    with pytest.raises(ValueError, match="too short"):
        split_text("a", 0.1)
    with pytest.raises(ValueError, match="at least 2"):
        encode_stream(CharTokenizer("a"), "a")


def test_bits_per_char_by_the_formula():
    # a uniform guess among 65 characters costs log2(65) bits per character
    assert math.isclose(bits_per_char(math.log(65), 1.0), math.log2(65))
    # a BPE token that holds two characters: the same nats per token are half the bits per character
    assert math.isclose(bits_per_char(2.0, 0.5), 2.0 / math.log(2) / 2)
    with pytest.raises(ValueError, match="tokens_per_char must be > 0"):
        bits_per_char(1.0, 0)
