"""The word-level tokenizer and batches (course_lib.tokenizer)."""
import pytest
import torch


def test_tokenizer_round_trip_unknown_words_and_batches(corpus):
    sentences, tokenizer, (inputs, targets) = corpus
    assert tokenizer.itos[:4] == ["<pad>", "<sos>", "<eos>", "<unk>"] and len(tokenizer) == 134
    for s in sentences:
        assert tokenizer.decode(tokenizer.encode(s, add_sos=True, add_eos=True)) == s
    ids = tokenizer.encode("Python rocks")
    assert ids[1] == tokenizer.unk_id and tokenizer.unknown_words("Python rocks hard") == ["rocks", "hard"]
    assert tokenizer.decode(ids) == "Python <unk>"
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['rocks'\]"):
        tokenizer.encode("Python rocks", strict=True)
    longest = max(len(s.split()) for s in sentences)
    assert inputs.shape == targets.shape == (20, longest + 1)
    assert inputs[0, 0] == tokenizer.sos_id
    words = (targets[:, :-1] != tokenizer.pad_id) & (targets[:, :-1] != tokenizer.eos_id)
    assert torch.equal(inputs[:, 1:][words], targets[:, :-1][words])  # targets are inputs shifted by one
    assert int((targets == tokenizer.eos_id).sum()) == 20
    assert int((targets != 0).sum()) == sum(len(s.split()) + 1 for s in sentences) == 237

