"""Byte-pair encoding, built from scratch (introduced in notebook 09).

Start from the 256 byte values, so any text can be encoded (no ``<unk>`` ever), then repeatedly
merge the most frequent adjacent pair of tokens into a new token. The merges, in the order they
were learned, are the whole tokenizer.

``merge`` below is the lesson, one pair at a time in plain Python. ``BPETokenizer`` computes exactly
the same merges and ids with NumPy (notebook 12 trains it on 1 MB of Shakespeare), checked against
the plain loop in ``tests/test_bpe.py``.
"""
import numpy as np

from ._validate import token_id_list


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


#: Texts up to this many bytes are encoded merge by merge in Python (``_encode_short``), longer ones with NumPy.
SHORT_TEXT = 256


class BPETokenizer:
    """Byte-level BPE: ``BPETokenizer.train(text, vocab_size)``, then ``encode`` / ``decode`` (notebook 09)."""

    def __init__(self, merges):
        if isinstance(merges, (str, bytes)) or not hasattr(merges, "__iter__"):
            raise TypeError(f"merges must be a list of (left, right) token id pairs, got {type(merges).__name__}")
        self.merges = [tuple(pair) for pair in merges]  # merges[r] makes token 256 + r
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}  # pair -> its merge's rank
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
        ids = _bytes_of(text)
        merges = []
        while 256 + len(merges) < vocab_size and len(ids) >= 2:
            pair, count = _most_frequent_pair(ids, 256 + len(merges))  # ties: the pair seen first
            if count < 2:
                break  # merging a pair that occurs once compresses nothing
            ids = _merge_array(ids, pair, 256 + len(merges))
            merges.append(pair)
        return cls(merges)

    def to_dict(self):
        """What a checkpoint stores (notebook 12): the merges, in the order learned."""
        return {"kind": "bpe", "merges": [list(pair) for pair in self.merges]}

    @classmethod
    def from_dict(cls, data):
        """The tokenizer ``to_dict`` described (notebook 12)."""
        merges = data.get("merges") if isinstance(data, dict) else None
        if not (isinstance(merges, list) and all(isinstance(m, list) and len(m) == 2 and all(
                isinstance(i, int) and 0 <= i < 256 + rank for i in m) for rank, m in enumerate(merges))):
            raise ValueError("a BPE tokenizer dict needs 'merges': pairs of earlier token ids (as written by BPETokenizer.to_dict)")
        return cls(merges)

    def __len__(self):
        return 256 + len(self.merges)

    def encode(self, text):
        """Token ids of ``text``: its UTF-8 bytes, with the merges applied in the order learned."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        ids = _bytes_of(text)
        if len(ids) <= SHORT_TEXT:
            return self._encode_short(ids.tolist())
        for rank, pair in enumerate(self.merges):
            if len(ids) < 2:
                break
            ids = _merge_array(ids, pair, 256 + rank)
        return ids.tolist()

    def _encode_short(self, ids):
        # A chat turn is a few dozen bytes: rather than a pass per merge, repeatedly apply the
        # earliest-learned merge among the pairs present. Same result: a merge can only involve
        # tokens made by earlier merges, so this applies the merges in the order learned.
        while len(ids) >= 2:
            pair = min(zip(ids, ids[1:]), key=lambda p: self.ranks.get(p, len(self.ranks)))
            if pair not in self.ranks:
                break
            ids = merge(ids, pair, 256 + self.ranks[pair])
        return ids

    def decode(self, ids):
        """The text of ``ids``; byte sequences that are not valid UTF-8 show as U+FFFD."""
        ids = token_id_list(ids)
        for i in ids:
            if i not in self.vocab:
                raise ValueError(f"token id {i} is outside the vocabulary [0, {len(self)})")
        return b"".join(self.vocab[i] for i in ids).decode("utf-8", errors="replace")

    def token_strings(self, ids):
        """Each token as readable text (for showing how a sentence was split)."""
        return [self.vocab[i].decode("utf-8", errors="replace") for i in ids]


def _bytes_of(text):
    return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int64)


def _most_frequent_pair(ids, vocab_size):
    """The most frequent adjacent pair in ``ids`` and its count; ties go to the pair that occurs first.

    Pairs are counted at every position, overlapping ones included, as ``Counter(zip(ids, ids[1:]))``
    counts them: each pair becomes one integer code, ``left * vocab_size + right``.
    """
    codes = ids[:-1] * vocab_size + ids[1:]
    if vocab_size <= 4096:  # a count for every possible pair fits in memory (<= 128 MB): one pass
        counts = np.bincount(codes, minlength=vocab_size * vocab_size)
        best = int(counts.max())
        tied = np.flatnonzero(counts == best)
    else:
        unique, counts = np.unique(codes, return_counts=True)
        best = int(counts.max())
        tied = unique[counts == best]
    code = tied[0] if len(tied) == 1 else codes[np.isin(codes, tied)][0]  # the tied pair seen first
    return (int(code // vocab_size), int(code % vocab_size)), best


def _merge_array(ids, pair, new_id):
    """``merge`` on a NumPy array: every ``pair``, left to right and not overlapping, becomes ``new_id``."""
    starts = np.flatnonzero((ids[:-1] == pair[0]) & (ids[1:] == pair[1]))  # where the pair begins
    if len(starts) == 0:
        return ids
    if pair[0] == pair[1]:
        # In a run like a a a a, the pair begins at consecutive positions that overlap; left to right,
        # the 1st, 3rd, ... of each run are merged (as merge() does), the others are used up.
        new_run = np.concatenate(([True], np.diff(starts) != 1))
        run_start = np.maximum.accumulate(np.where(new_run, starts, 0))
        starts = starts[(starts - run_start) % 2 == 0]
    out = ids.copy()
    out[starts] = new_id
    keep = np.ones(len(ids), dtype=bool)
    keep[starts + 1] = False  # the right half of each merged pair
    return out[keep]
