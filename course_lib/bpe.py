"""Byte-pair encoding, built from scratch (introduced in notebook 09).

Start from the 256 byte values, so any text can be encoded (no ``<unk>`` ever), then repeatedly
merge the most frequent adjacent pair of tokens into a new token. The merges, in the order they
were learned, are the whole tokenizer.
"""
from collections import Counter


def merge(ids, pair, new_id):
    """Replace every occurrence of ``pair`` (left to right, not overlapping) in ``ids`` by ``new_id`` (notebook 09)."""
    out, i = [], 0
    while i < len(ids):
        if i + 1 < len(ids) and ids[i] == pair[0] and ids[i + 1] == pair[1]:
            out.append(new_id)
            i += 2
        else:
            out.append(ids[i])
            i += 1
    return out


class BPETokenizer:
    """Byte-level BPE: ``BPETokenizer.train(text, vocab_size)``, then ``encode`` / ``decode`` (notebook 09)."""

    def __init__(self, merges):
        self.merges = [tuple(pair) for pair in merges]  # merges[r] makes token 256 + r
        self.vocab = {i: bytes([i]) for i in range(256)}  # token id -> the bytes it stands for
        for rank, (a, b) in enumerate(self.merges):
            self.vocab[256 + rank] = self.vocab[a] + self.vocab[b]

    @classmethod
    def train(cls, text, vocab_size):
        """Learn ``vocab_size - 256`` merges from ``text`` (fewer if no pair repeats any more)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str, got {type(text).__name__}")
        if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 256:
            raise ValueError(f"vocab_size must be an int >= 256 (the 256 byte values), got {vocab_size!r}")
        ids = list(text.encode("utf-8"))
        merges = []
        while 256 + len(merges) < vocab_size:
            counts = Counter(zip(ids, ids[1:]))
            if not counts:
                break
            pair = max(counts, key=counts.get)  # ties: the pair seen first
            if counts[pair] < 2:
                break  # merging a pair that occurs once compresses nothing
            ids = merge(ids, pair, 256 + len(merges))
            merges.append(pair)
        return cls(merges)

    def __len__(self):
        return 256 + len(self.merges)

    def encode(self, text):
        """Token ids of ``text``: its UTF-8 bytes, with the merges applied in the order learned."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        ids = list(text.encode("utf-8"))
        for rank, pair in enumerate(self.merges):
            if len(ids) < 2:
                break
            ids = merge(ids, pair, 256 + rank)
        return ids

    def decode(self, ids):
        """The text of ``ids``; byte sequences that are not valid UTF-8 show as U+FFFD."""
        for i in ids:
            if i not in self.vocab:
                raise ValueError(f"token id {i} is outside the vocabulary [0, {len(self)})")
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")

    def token_strings(self, ids):
        """Each token as readable text (for showing how a sentence was split)."""
        return [self.vocab[i].decode("utf-8", errors="replace") for i in ids]
