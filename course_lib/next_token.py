"""How the next token is chosen from the model's logits: temperature, top-k, top-p, a repetition penalty (notebook 08).

``course_lib.sampling`` (one sequence at a time) and ``course_lib.batching`` (many, notebook 21)
both choose tokens with these functions, so a row of a batch gets exactly the token it would get alone.
"""
import torch

from ._validate import require_finite_number, require_tensor


def filter_logits(logits, top_k=None, top_p=None):
    """Set to -inf every logit outside the top-k and outside the top-p nucleus (last axis, notebook 08)."""
    require_tensor("logits", logits, min_dim=1, floating=True)
    _check_filters(top_k, top_p)
    return _filter_logits(logits, top_k, top_p)


def _filter_logits(logits, top_k, top_p):  # arguments already checked
    if top_k is not None and top_k < logits.shape[-1]:
        kth = torch.topk(logits, top_k, dim=-1).values[..., -1:]  # (..., 1): the k-th largest
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
        probs = torch.softmax(sorted_logits, dim=-1)
        mass_before = probs.cumsum(dim=-1) - probs  # probability of the tokens ranked above
        drop_sorted = mass_before >= top_p  # the set already reached p without this token
        drop = drop_sorted.scatter(-1, order, drop_sorted)  # back to vocabulary order
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def _check_filters(top_k, top_p):
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int):
            raise TypeError(f"top_k must be an int or None, got {type(top_k).__name__}")
        if top_k < 1:
            raise ValueError(f"top_k must be >= 1 (or None for no limit), got {top_k}")
    if top_p is not None:
        if isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1] (or None for no limit), got {top_p!r}")


def _check_sampling_args(temperature, top_k, top_p):
    require_finite_number("temperature", temperature, low=0)  # 0 means greedy
    _check_filters(top_k, top_p)


def next_token_distribution(logits, temperature=1.0, top_k=None, top_p=None):
    """The probabilities ``generate`` samples from, given the last position's ``logits`` (notebook 08)."""
    require_tensor("logits", logits, min_dim=1, floating=True)
    _check_sampling_args(temperature, top_k, top_p)
    return _distribution(logits, temperature, top_k, top_p)


def check_logits(logits):
    """Raise a ValueError when the model's logits hold NaN or infinity: its weights are broken (notebook 08)."""
    if not bool(torch.isfinite(logits).all()):
        raise ValueError("the model produced NaN or infinite logits: its weights are broken (NaN), e.g. after a "
                         "diverged training run; train again with a lower learning rate, or load another checkpoint")


def _distribution(logits, temperature, top_k, top_p):  # arguments already checked
    if temperature < torch.finfo(logits.dtype).tiny:  # 0, or too small to divide by in this dtype: greedy
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    # Subtract the largest logit first: softmax is unchanged, and a tiny temperature then sends the
    # others to -inf instead of every logit to +-inf (inf - inf is NaN).
    shifted = logits - logits.amax(dim=-1, keepdim=True)
    return torch.softmax(_filter_logits(shifted / temperature, top_k, top_p), dim=-1)


def apply_repetition_penalty(logits, seen, penalty):
    """Make every token of ``seen`` (ids) less likely: its logit divided by ``penalty`` if positive, else multiplied (notebook 15).

    Keskar et al. (2019, CTRL). Dividing a negative logit would *raise* it, hence the two cases.
    ``penalty=1`` changes nothing; 1.1 to 1.3 is the usual range. ``logits`` is ``(..., vocab)``.
    """
    require_tensor("logits", logits, min_dim=1, floating=True)
    require_finite_number("penalty", penalty, low=1.0)
    seen = torch.as_tensor(seen, dtype=torch.long, device=logits.device).reshape(-1)
    mask = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    mask[seen] = True  # (vocab,)
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(mask, penalised, logits)


def choose_token(logits, temperature, top_k=None, top_p=None, generator=None, seen=(), repetition_penalty=1.0,
                 vocab_limit=None):
    """The next token id from one position's ``logits`` ``(vocab,)``: chat's choice (notebook 15), one row of a batch's (notebook 21).

    The repetition penalty acts on the ids in ``seen`` (the reply so far); ids at or above
    ``vocab_limit`` (a padded embedding's unused rows) are never chosen; then greedy argmax
    (``temperature=0``) or a draw from ``_distribution`` with ``generator``. Arguments are checked by the caller.
    """
    logits = logits.float()
    check_logits(logits)
    if repetition_penalty != 1.0 and len(seen):
        logits = apply_repetition_penalty(logits, seen, repetition_penalty)
    if vocab_limit is not None and vocab_limit < logits.shape[-1]:
        logits = logits.clone()
        logits[vocab_limit:] = float("-inf")
    if temperature == 0:
        return int(logits.argmax())
    probs = _distribution(logits, temperature, top_k, top_p)
    if generator is not None and generator.device != probs.device:
        probs = probs.to(generator.device)
    return int(torch.multinomial(probs, 1, generator=generator))
