"""Causal and padding masks (introduced in notebook 04). True means "may attend"."""
import torch

from ._validate import require_positive_int, require_tensor


def causal_mask(seq_len, device=None, past=0):
    """Boolean ``(seq_len, seq_len)``: True on and below the diagonal.

    Row ``t`` (a query) may attend to columns ``0..t`` (keys at or before it), never to the future.
    With ``past > 0`` (generation with a KV cache, notebook 11) the queries come after ``past``
    cached positions: the mask is ``(seq_len, past + seq_len)`` and query ``t`` sees keys
    ``0..past + t``.
    """
    require_positive_int("seq_len", seq_len, allow_zero=True)
    require_positive_int("past", past, allow_zero=True)
    return torch.ones(seq_len, past + seq_len, dtype=torch.bool, device=device).tril(diagonal=past)


def padding_mask(token_ids, pad_id):
    """Boolean ``(batch, 1, 1, seq_len)``: True where the key is a real token, False at padding (notebook 04).

    The two singleton axes let it broadcast over heads and query positions, and it combines with
    a causal mask by ``&``: ``causal_mask(T) & padding_mask(ids, pad_id)`` is ``(batch, 1, T, T)``.
    """
    require_tensor("token_ids", token_ids, dim=2, integer=True)
    if isinstance(pad_id, bool) or not isinstance(pad_id, int):
        raise TypeError(f"pad_id must be an int token id, got {type(pad_id).__name__}")
    return (token_ids != pad_id)[:, None, None, :]
