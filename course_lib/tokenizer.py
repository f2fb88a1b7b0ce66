"""A word-level tokenizer and language-model batches (introduced in notebook 07)."""
from collections import Counter

import torch

from ._validate import token_id_list

PAD, SOS, EOS, UNK = "<pad>", "<sos>", "<eos>", "<unk>"
SPECIALS = (PAD, SOS, EOS, UNK)


class WordTokenizer:
    """Splits text on whitespace; one id per distinct word, after four special tokens (notebook 07).

    ``<pad>`` = 0 fills short sentences, ``<sos>`` = 1 starts every sentence, ``<eos>`` = 2 ends it,
    ``<unk>`` = 3 stands for any word not in the vocabulary. Words keep their case and punctuation
    ("Python" and "Python." are different words), exactly as the seed corpus was tokenized.

    Unknown words: ``encode`` maps them to ``<unk>`` (a model can still run on new text), and
    ``unknown_words(text)`` names them; ``encode(text, strict=True)`` refuses them instead.
    """

    def __init__(self, vocab):
        vocab = list(vocab)
        if tuple(vocab[:4]) != SPECIALS:
            raise ValueError(f"a vocabulary must start with the special tokens {SPECIALS}, got {vocab[:4]}")
        if len(set(vocab)) != len(vocab):
            raise ValueError("the vocabulary has duplicate entries")
        self.itos = vocab  # id -> word
        self.stoi = {word: i for i, word in enumerate(vocab)}  # word -> id

    @classmethod
    def from_sentences(cls, sentences, min_count=1):
        """Build the vocabulary from an iterable of sentences, in order of first appearance."""
        if isinstance(sentences, str):
            raise TypeError("from_sentences expects a list of sentences; for one text use from_text")
        sentences = list(sentences)  # a generator could be read only once; the vocabulary needs two passes
        if not all(isinstance(s, str) for s in sentences):
            bad = next(s for s in sentences if not isinstance(s, str))
            raise TypeError(f"from_sentences expects sentences as str, got a {type(bad).__name__}: {bad!r:.60}")
        if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
            raise ValueError(f"min_count must be an int >= 1, got {min_count!r}")
        counts = Counter(word for sentence in sentences for word in sentence.split())
        seen = dict.fromkeys(word for sentence in sentences for word in sentence.split())
        words = [w for w in seen if counts[w] >= min_count and w not in SPECIALS]
        return cls(list(SPECIALS) + words)

    @classmethod
    def from_text(cls, text, min_count=1):
        """Build from a text with one sentence per line."""
        from .data import split_sentences

        return cls.from_sentences(split_sentences(text), min_count)

    pad_id, sos_id, eos_id, unk_id = 0, 1, 2, 3

    def __len__(self):
        return len(self.itos)

    @property
    def vocab_size(self):
        return len(self.itos)

    def unknown_words(self, text):
        """The words of ``text`` that are not in the vocabulary, in order, without repeats."""
        return list(dict.fromkeys(w for w in text.split() if w not in self.stoi))

    def encode(self, text, add_sos=False, add_eos=False, strict=False):
        """Word ids of ``text``; unknown words become ``<unk>`` unless ``strict=True``."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        if strict:
            unknown = self.unknown_words(text)
            if unknown:
                raise ValueError(f"words not in the vocabulary: {unknown} (known words include {self.itos[4:9]})")
        ids = [self.stoi.get(word, self.unk_id) for word in text.split()]
        return ([self.sos_id] if add_sos else []) + ids + ([self.eos_id] if add_eos else [])

    def decode(self, ids, skip_special=True):
        """The text of ``ids`` (a list or a 1-D tensor); special tokens are dropped unless asked for."""
        ids = token_id_list(ids)
        words = []
        for i in ids:
            if not 0 <= i < len(self.itos):
                raise ValueError(f"token id {i} is outside the vocabulary [0, {len(self.itos)})")
            if skip_special and self.itos[i] in (PAD, SOS, EOS):
                continue
            words.append(self.itos[i])
        return " ".join(words)

    def to_dict(self):
        return {"kind": "word", "itos": list(self.itos)}

    @classmethod
    def from_dict(cls, data):
        """The tokenizer ``to_dict`` described (as stored in a checkpoint)."""
        if not (isinstance(data, dict) and isinstance(data.get("itos"), list) and all(isinstance(w, str) for w in data["itos"])):
            raise ValueError("a tokenizer dict needs 'itos': a list of words (as written by WordTokenizer.to_dict)")
        return cls(data["itos"])


class CharTokenizer:
    """One id per distinct character of a text, in sorted order (notebook 12, after nanoGPT's shakespeare_char).

    Every character is a token, so there is no ``<unk>``, no ``<sos>``, no padding: a continuous
    text is one long sequence of ids. A character the training text never had cannot be encoded,
    and ``encode`` says which.
    """

    def __init__(self, chars):
        if not isinstance(chars, str) or not chars:
            raise ValueError("a CharTokenizer needs its characters as a non-empty str")
        if len(set(chars)) != len(chars):
            raise ValueError("the characters of a CharTokenizer must be distinct")
        self.chars = chars
        self.stoi = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text):
        """Every distinct character of ``text``, sorted (notebook 12)."""
        if not isinstance(text, str):
            raise TypeError(f"from_text expects a str, got {type(text).__name__}")
        if not text:
            raise ValueError("from_text needs a non-empty text to find its characters")
        return cls("".join(sorted(set(text))))

    def __len__(self):
        return len(self.chars)

    vocab_size = property(__len__)

    def extended(self, text):
        """This tokenizer plus every character of ``text`` it lacks, appended: old ids unchanged (notebook 14)."""
        if not isinstance(text, str):
            raise TypeError(f"extended expects a str, got {type(text).__name__}")
        return CharTokenizer(self.chars + "".join(sorted(set(text) - set(self.chars))))

    def encode(self, text):
        """The id of each character of ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        try:
            return [self.stoi[c] for c in text]
        except KeyError:
            unknown = sorted({c for c in text if c not in self.stoi})
            raise ValueError(f"characters the tokenizer was not built with: {unknown[:10]} "
                             f"(it knows {len(self)}: {self.chars[:40]!r}...)") from None

    def decode(self, ids):
        """The text of ``ids`` (a list or a 1-D tensor)."""
        ids = token_id_list(ids)
        for i in ids:
            if not 0 <= i < len(self.chars):
                raise ValueError(f"token id {i} is outside the vocabulary [0, {len(self.chars)})")
        return "".join(self.chars[i] for i in ids)

    def to_dict(self):
        return {"kind": "char", "chars": self.chars}

    @classmethod
    def from_dict(cls, data):
        """The tokenizer ``to_dict`` described (as stored in a checkpoint)."""
        if not (isinstance(data, dict) and isinstance(data.get("chars"), str)):
            raise ValueError("a char tokenizer dict needs 'chars': a str (as written by CharTokenizer.to_dict)")
        return cls(data["chars"])


class SpecialTokens:
    """A tokenizer with extra special tokens after its vocabulary, e.g. a chat's role markers (notebook 14).

    ``base``'s ids are unchanged; ``specials[i]`` gets id ``len(base) + i``, so a model trained on
    ``base`` keeps every row of its embedding and gains one new row per special token.
    ``encode(text)`` is ``base.encode(text)``: it never turns text into a special token, so a user who
    *types* ``<|assistant|>`` cannot forge a turn. Special ids are placed by code (``id_of``), and
    ``decode`` leaves them out unless ``skip_special=False``.
    """

    def __init__(self, base, specials):
        if isinstance(base, SpecialTokens):
            raise TypeError("base is already a SpecialTokens tokenizer: give all the special tokens at once")
        specials = list(specials)
        if not specials or not all(isinstance(s, str) and s for s in specials) or len(set(specials)) != len(specials):
            raise ValueError(f"specials must be distinct non-empty strings, got {specials!r}")
        self.base = base
        self.specials = specials
        self.first_special = len(base)
        self.ids = {s: self.first_special + i for i, s in enumerate(specials)}  # special token -> id

    def __len__(self):
        return len(self.base) + len(self.specials)

    vocab_size = property(__len__)

    def id_of(self, special):
        """The id of a special token, e.g. ``id_of("<|end|>")``."""
        if special not in self.ids:
            raise KeyError(f"{special!r} is not one of this tokenizer's special tokens {self.specials}")
        return self.ids[special]

    def encode(self, text):
        """The base tokenizer's ids of ``text`` (special-token strings in it stay plain text)."""
        return list(self.base.encode(text))

    def decode(self, ids, skip_special=True):
        """The text of ``ids``; special tokens are dropped, or written out with ``skip_special=False``."""
        ids = token_id_list(ids)
        text, run = [], []
        for i in ids:
            if not 0 <= i < len(self):
                raise ValueError(f"token id {i} is outside the vocabulary [0, {len(self)})")
            if i < self.first_special:
                run.append(i)
                continue
            if run:  # decode runs of base ids together: a byte-level BPE's characters may span tokens
                text.append(self.base.decode(run))
                run = []
            if not skip_special:
                text.append(self.specials[i - self.first_special])
        if run:
            text.append(self.base.decode(run))
        return "".join(text)

    def to_dict(self):
        return {"kind": "special", "base": self.base.to_dict(), "specials": list(self.specials)}

    @classmethod
    def from_dict(cls, data):
        """The tokenizer ``to_dict`` described (as stored in a checkpoint)."""
        if not (isinstance(data, dict) and isinstance(data.get("base"), dict) and isinstance(data.get("specials"), list)):
            raise ValueError("a special-token tokenizer dict needs 'base' (a tokenizer dict) and 'specials' (a list)")
        return cls(tokenizer_from_dict(data["base"]), data["specials"])


def tokenizer_from_dict(data):
    """The word, character, BPE or special-token tokenizer a checkpoint stored (``to_dict``'s ``kind``; notebook 12)."""
    from .bpe import BPETokenizer

    kinds = {"word": WordTokenizer, "char": CharTokenizer, "bpe": BPETokenizer, "special": SpecialTokens}
    kind = data.get("kind", "word") if isinstance(data, dict) else None  # the oldest checkpoints have no kind
    if kind not in kinds:
        raise ValueError(f"unknown tokenizer kind {kind!r}; expected one of {sorted(kinds)}")
    return kinds[kind].from_dict(data)


def make_batch(tokenizer, sentences):
    """Inputs and next-token targets for a batch of sentences, right-padded to the longest one (notebook 07).

    For "I love Python ." the rows are::

        inputs : <sos> I    love   Python <pad> ...
        targets: I     love Python <eos>  <pad> ...

    Returns two LongTensors of shape ``(len(sentences), longest + 1)``.
    """
    if isinstance(sentences, str) or not sentences:
        raise ValueError("make_batch expects a non-empty list of sentences")
    sequences = [tokenizer.encode(s, add_sos=True, add_eos=True) for s in sentences]
    width = max(len(s) for s in sequences) - 1
    inputs = torch.full((len(sequences), width), tokenizer.pad_id, dtype=torch.long)
    targets = torch.full((len(sequences), width), tokenizer.pad_id, dtype=torch.long)
    for row, seq in enumerate(sequences):
        inputs[row, : len(seq) - 1] = torch.tensor(seq[:-1])
        targets[row, : len(seq) - 1] = torch.tensor(seq[1:])
    return inputs, targets
