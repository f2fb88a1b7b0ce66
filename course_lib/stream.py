"""A continuous text as one stream of tokens, cut into windows (introduced in notebook 12).

Notebook 07 trained on one sentence per row. A real corpus is one long text: nanoGPT's recipe is
to encode it once into a 1-D tensor of ids and to train on random windows of ``context_length``
tokens, each window's targets being the same window shifted by one.
"""
import math

import torch

from ._validate import require_finite_number, require_positive_int, require_tensor


def split_text(text, val_fraction=0.1):
    """``(train_text, val_text)``: the last ``val_fraction`` of ``text`` held out, cut at a line break (notebook 12).

    The validation text comes from the end, as in nanoGPT, so it is text the model never saw (a
    random choice of windows would overlap the training ones). Cutting at a line break keeps a
    line from being split between the two.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    require_finite_number("val_fraction", val_fraction, low=0, high=1, low_open=True, high_open=True)
    cut = int(len(text) * (1 - val_fraction))
    line_break = text.rfind("\n", 0, cut)
    cut = line_break + 1 if line_break > 0 else cut
    if cut <= 0 or cut >= len(text):
        raise ValueError(f"a text of {len(text)} characters is too short to hold out {val_fraction:.0%} of it")
    return text[:cut], text[cut:]


def encode_stream(tokenizer, text):
    """The ids of ``text`` as a 1-D LongTensor (notebook 12)."""
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    if ids.numel() < 2:
        raise ValueError(f"the text encodes to {ids.numel()} token(s): a stream needs at least 2 to predict one")
    return ids


def _check_stream(ids, context_length):
    require_tensor("ids", ids, dim=1, integer=True)
    require_positive_int("context_length", context_length)
    if len(ids) < context_length + 1:
        raise ValueError(f"a stream of {len(ids)} tokens holds no window of context_length={context_length} "
                         f"(it needs at least {context_length + 1}): use a longer text or a shorter context")


def random_windows(ids, context_length, batch_size, generator=None):
    """``(x, y)``, each ``(batch_size, context_length)``: windows of ``ids`` at random starts, ``y`` shifted by one (notebook 12).

    ``x[b] = ids[s:s+T]`` and ``y[b] = ids[s+1:s+T+1]`` for a start ``s`` drawn uniformly from
    every position that leaves room for the window, with ``generator`` (a CPU ``torch.Generator``).
    """
    _check_stream(ids, context_length)
    require_positive_int("batch_size", batch_size)
    starts = torch.randint(len(ids) - context_length, (batch_size,), generator=generator)  # (batch,)
    return windows_at(ids, starts, context_length)


def windows_at(ids, starts, context_length):
    """The windows of ``ids`` beginning at ``starts`` (a 1-D tensor): ``(x, y)`` as ``random_windows`` (notebook 12)."""
    offsets = starts[:, None] + torch.arange(context_length + 1, device=starts.device)  # (batch, T + 1)
    chunk = ids[offsets]  # (batch, T + 1): one gather, no Python loop over the batch
    return chunk[:, :-1], chunk[:, 1:]


def sequential_windows(ids, context_length, max_windows=None):
    """Non-overlapping windows covering ``ids`` from the start, as ``(x, y)`` (notebook 12).

    For a deterministic validation loss: every target is predicted once. ``max_windows`` keeps that
    many, evenly spaced, when the whole stream would take too long.
    """
    _check_stream(ids, context_length)
    count = (len(ids) - 1) // context_length
    starts = torch.arange(count) * context_length
    if max_windows is not None:
        require_positive_int("max_windows", max_windows)
        if max_windows < count:
            starts = starts[torch.linspace(0, count - 1, max_windows).round().long()]
    return windows_at(ids, starts, context_length)


def bits_per_char(nats_per_token, tokens_per_char):
    """A loss in bits per character, comparable across tokenizers (notebook 12).

    ``nats_per_token / ln 2`` is bits per token; a tokenizer that packs ``1 / tokens_per_char``
    characters into a token spends that many bits on them. A character model has
    ``tokens_per_char = 1``; a BPE model about 0.5.
    """
    require_finite_number("nats_per_token", nats_per_token, low=0)
    require_finite_number("tokens_per_char", tokens_per_char, low=0, low_open=True)
    return nats_per_token / math.log(2) * tokens_per_char
