"""Generating text: greedy, temperature, top-k and top-p sampling (introduced in notebook 08)."""
import torch

from ._validate import require_positive_int, require_tensor
from .kv_cache import KVCache
from .next_token import (  # noqa: F401 - filter_logits, next_token_distribution, apply_repetition_penalty: notebook 08's names
    _check_sampling_args,
    _distribution,
    apply_repetition_penalty,
    check_logits,
    filter_logits,
    next_token_distribution,
)


@torch.no_grad()
def generate(model, token_ids, max_new_tokens, temperature=1.0, top_k=None, top_p=None,
             eos_id=None, generator=None, use_cache=True):
    """Extend ``token_ids`` by up to ``max_new_tokens`` tokens, one at a time.

    ``token_ids`` is ``(seq,)`` or ``(batch, seq)``; the result has the same rank with the new
    tokens appended. ``temperature=0`` is greedy decoding (argmax); otherwise the next token is
    drawn from ``softmax(logits / temperature)`` after keeping the ``top_k`` most likely tokens and
    the smallest set whose probability reaches ``top_p``. A prompt longer than the model's
    context keeps its last ``context_length`` tokens as context. Generation stops once every row
    has produced ``eos_id`` (rows that finished early are filled with ``eos_id``). The same
    ``torch.Generator`` seed gives the same text.

    ``use_cache=True`` (notebook 11) keeps every layer's keys and values in a ``KVCache``, so each
    step feeds the model one new token instead of the whole context; the tokens are the same as
    with ``use_cache=False``. Once the context window is full, positions shift at every step and the
    cache is rebuilt from the last ``context_length`` tokens, which is the uncached computation.
    """
    _check_sampling_args(temperature, top_k, top_p)
    require_tensor("token_ids", token_ids, integer=True)
    require_positive_int("max_new_tokens", max_new_tokens, allow_zero=True)
    if token_ids.dim() not in (1, 2) or token_ids.shape[-1] == 0:
        raise ValueError(f"token_ids must be a non-empty (seq,) or (batch, seq) tensor, got shape {tuple(token_ids.shape)}")
    if eos_id is not None and (isinstance(eos_id, bool) or not isinstance(eos_id, int)
                               or not 0 <= eos_id < model.config.vocab_size):
        raise ValueError(f"eos_id must be a token id in [0, {model.config.vocab_size}) or None, got {eos_id!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    single = token_ids.dim() == 1
    device = next(model.parameters()).device
    ids = (token_ids.unsqueeze(0) if single else token_ids).to(device)  # (batch, seq)
    context_length = model.config.context_length
    was_training = model.training
    model.eval()
    finished = torch.zeros(ids.shape[0], dtype=torch.bool, device=device)
    n_layers = len(model.blocks)

    def logits_from_window():  # the last position's logits, from (at most) the last context_length tokens
        cache = KVCache(n_layers) if use_cache else None
        return model(ids[:, -context_length:], cache=cache)[:, -1, :], cache

    logits, cache = logits_from_window() if max_new_tokens else (None, None)  # (batch, vocab)
    for step in range(max_new_tokens):
        check_logits(logits)
        if temperature == 0:
            next_ids = logits.argmax(dim=-1)  # (batch,)
        else:
            probs = _distribution(logits.float(), temperature, top_k, top_p)  # checked once, above
            if generator is not None and generator.device != probs.device:
                probs = probs.to(generator.device)  # sample where the generator lives
            next_ids = torch.multinomial(probs, 1, generator=generator).squeeze(-1).to(device)
        if eos_id is not None:
            next_ids = torch.where(finished, torch.full_like(next_ids, eos_id), next_ids)
            finished |= next_ids == eos_id
        ids = torch.cat([ids, next_ids.unsqueeze(-1)], dim=-1)  # (batch, seq + 1)
        if (eos_id is not None and bool(finished.all())) or step == max_new_tokens - 1:
            break
        if use_cache and len(cache) < context_length:
            logits = model(next_ids.unsqueeze(-1), cache=cache)[:, -1, :]  # one new token, cached past
        else:
            logits, cache = logits_from_window()  # no cache, or a full window: positions shift
    model.train(was_training)
    return ids[0] if single else ids


def generate_text(model, tokenizer, prompt, max_new_tokens=30, temperature=1.0, top_k=None, top_p=None,
                  generator=None):
    """Continue the words of ``prompt`` and return the whole text (prompt included) (notebook 07).

    The prompt is encoded after ``<sos>``, as the model saw sentences in training; words the
    tokenizer does not know become ``<unk>`` (see ``tokenizer.unknown_words``). Stops at ``<eos>``.

    A model of a continuous text (a character or BPE tokenizer, notebook 12) has no ``<sos>`` or
    ``<eos>``: it continues the prompt (a line break when the prompt is empty) for exactly
    ``max_new_tokens`` tokens.
    """
    if hasattr(tokenizer, "sos_id"):
        ids, eos_id = tokenizer.encode(prompt, add_sos=True), tokenizer.eos_id
    else:
        ids, eos_id = tokenizer.encode(prompt or "\n"), None
    out = generate(model, torch.tensor(ids, dtype=torch.long), max_new_tokens, temperature=temperature, top_k=top_k,
                   top_p=top_p, eos_id=eos_id, generator=generator)
    return tokenizer.decode(out.tolist())


def generate_batch(model, prompts, max_new_tokens, temperature=1.0, top_k=None, top_p=None, stop_id=None,
                   generator=None):
    """Continue every prompt of ``prompts`` (lists of token ids, any lengths) in shared forward passes (notebook 21).

    Returns one list of new token ids per prompt, ending at ``stop_id`` when the model produced it
    (a row stops there; the others go on), else after ``max_new_tokens`` tokens. Prompts are left-padded
    with a key mask and per-row positions (``course_lib.batching``), so greedy replies are the ones
    ``generate`` gives each prompt alone. Sampling draws the rows' tokens in row order from one
    ``generator``: seeded, the result is reproducible, though not the draws of one-at-a-time.
    """
    from .batching import Request, Scheduler  # batching builds on this module's sampling

    _check_sampling_args(temperature, top_k, top_p)
    require_positive_int("max_new_tokens", max_new_tokens, allow_zero=True)
    if not isinstance(prompts, (list, tuple)) or not prompts:
        raise ValueError("prompts must be a non-empty list of prompts, each a list of token ids")
    vocab_size = model.config.vocab_size
    for index, prompt in enumerate(prompts):
        if isinstance(prompt, torch.Tensor):
            raise TypeError(f"prompts[{index}] is a tensor: give each prompt as a list of ints (tensor.tolist())")
        if not isinstance(prompt, (list, tuple)) or not prompt:
            raise ValueError(f"prompts[{index}] must be a non-empty list of token ids, got {prompt!r:.60}")
        bad = next((t for t in prompt if isinstance(t, bool) or not isinstance(t, int) or not 0 <= t < vocab_size), None)
        if bad is not None:
            raise ValueError(f"prompts[{index}] holds {bad!r:.40}: token ids must be ints in [0, {vocab_size})")
    if stop_id is not None and (isinstance(stop_id, bool) or not isinstance(stop_id, int) or not 0 <= stop_id < vocab_size):
        raise ValueError(f"stop_id must be a token id in [0, {vocab_size}) or None, got {stop_id!r}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    scheduler = Scheduler(model, max_batch=len(prompts), max_waiting=len(prompts))
    requests = [scheduler.submit(Request(list(p), max_new_tokens, temperature, top_k, top_p, stop_id, generator))
                for p in prompts]
    was_training = model.training
    model.eval()
    try:
        while scheduler.step():
            pass
    finally:
        model.train(was_training)
    return [r.tokens + ([stop_id] if r.finish_reason == "stop" else []) for r in requests]
