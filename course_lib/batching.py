"""Many sequences at once: batched generation and continuous batching (introduced in notebook 21).

At batch size one, a decoding step reads every weight of the model from memory to make a single
token, so the processor mostly waits on memory. Stacking the next token of many sequences into one
forward pass reads the weights once for all of them. Two things make that exact:

- **Left padding.** Prompts of different lengths are padded on the left, so every row's newest
  token sits in the last column and the next step appends one column for all rows. A ``key_mask``
  (True = a real token) keeps padding out of attention, and each row has its **own positions**
  (a row padded by 3 starts at position 0 in column 3): the model computes for each row exactly
  what it would compute for that row alone.
- **Rows come and go between steps** (continuous batching, as vLLM, TGI and llama.cpp's server do):
  a finished row leaves at once; a new request is prefilled and joins the running batch, its cache
  left-padded to the batch's length. No request waits for the longest one of a fixed batch.

``Batch`` holds the rows' shared KV cache; ``Scheduler`` owns the model and runs the loop;
``course_lib.sampling.generate_batch`` is the scheduler run to the end on a list of prompts.
"""
import collections
import threading

import torch

from ._validate import require_finite_number, require_positive_int
from .kv_cache import KVCache
from .next_token import _check_sampling_args, choose_token


def left_pad(prompts, pad_id=0, device=None):
    """``(ids, key_mask, positions)``, each ``(batch, longest)``: ``prompts`` padded on the left (notebook 21).

    ``key_mask`` is True at real tokens; ``positions`` counts each row from 0 at its first real token
    (padding gets position 0: it is never attended, so any valid position does).
    """
    longest = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), longest), pad_id, dtype=torch.long, device=device)
    key_mask = torch.zeros(len(prompts), longest, dtype=torch.bool, device=device)
    for row, prompt in enumerate(prompts):
        ids[row, longest - len(prompt):] = torch.tensor(prompt, dtype=torch.long)
        key_mask[row, longest - len(prompt):] = True
    positions = (key_mask.long().cumsum(dim=-1) - 1).clamp(min=0)  # (batch, longest): 0, 1, 2, ... from the first real token
    return ids, key_mask, positions


class Batch:
    """Rows generated together: one KV cache, which of its keys are real, and each row's length (notebook 21).

    Every row's tokens are right-aligned in the cache (left padding), so a decoding step appends one
    column for all rows. ``rows`` are the caller's names for the rows (indices, requests), kept in
    step through ``select`` and ``concat``.
    """

    def __init__(self, cache, key_mask, lengths, rows):
        self.cache, self.key_mask, self.lengths, self.rows = cache, key_mask, lengths, list(rows)

    def __len__(self):
        return len(self.rows)

    @classmethod
    def prefill(cls, model, prompts, rows):
        """Read ``prompts`` (lists of ids) in one forward pass; return the batch and each row's next-token logits."""
        device = next(model.parameters()).device
        ids, key_mask, positions = left_pad(prompts, device=device)
        cache = KVCache(len(model.blocks))
        logits = model(ids, cache=cache, positions=positions, key_mask=key_mask)[:, -1, :]  # (batch, vocab)
        lengths = torch.tensor([len(p) for p in prompts], device=device)
        return cls(cache, key_mask, lengths, rows), logits

    def decode(self, model, next_ids):
        """Feed each row its next token ``next_ids`` ``(batch,)``; return each row's next logits ``(batch, vocab)``."""
        self.key_mask = torch.cat([self.key_mask, self.key_mask.new_ones(len(self), 1)], dim=1)  # (batch, past + 1)
        logits = model(next_ids[:, None], cache=self.cache, positions=self.lengths[:, None], key_mask=self.key_mask)
        self.lengths = self.lengths + 1
        return logits[:, -1, :]

    def select(self, keep):
        """The batch of rows ``keep`` (indices), without the leading columns none of them uses."""
        if list(keep) == list(range(len(self))) and bool(self.key_mask[:, 0].any()):
            return self  # every row stays and the first column is in use: nothing to copy
        index = torch.tensor(keep, dtype=torch.long, device=self.key_mask.device)
        longest = int(self.lengths[index].max()) if keep else 0
        start = self.key_mask.shape[1] - longest  # rows are right-aligned: the last `longest` columns hold them all
        cache = KVCache(len(self.cache.keys))
        cache.keys = [k[index, :, start:] for k in self.cache.keys]  # (kept, kv_heads, longest, head_dim)
        cache.values = [v[index, :, start:] for v in self.cache.values]
        return Batch(cache, self.key_mask[index, start:], self.lengths[index], [self.rows[i] for i in keep])

    @staticmethod
    def concat(first, second):
        """One batch of both: the shorter one's cache is padded on the left to the other's length."""
        width = max(first.key_mask.shape[1], second.key_mask.shape[1])

        def padded(tensor, value):  # (..., columns, [head_dim]) padded on the left along the position axis
            missing = width - (tensor.shape[-2] if tensor.dim() == 4 else tensor.shape[-1])
            if missing == 0:
                return tensor
            shape = list(tensor.shape)
            shape[-2 if tensor.dim() == 4 else -1] = missing
            return torch.cat([tensor.new_full(shape, value), tensor], dim=-2 if tensor.dim() == 4 else -1)

        cache = KVCache(len(first.cache.keys))
        cache.keys = [torch.cat([padded(a, 0), padded(b, 0)]) for a, b in zip(first.cache.keys, second.cache.keys)]
        cache.values = [torch.cat([padded(a, 0), padded(b, 0)]) for a, b in zip(first.cache.values, second.cache.values)]
        key_mask = torch.cat([padded(first.key_mask, False), padded(second.key_mask, False)])
        return Batch(cache, key_mask, torch.cat([first.lengths, second.lengths]), first.rows + second.rows)


def _join(parts):
    """``(batch, logits)`` pairs as one pair (None when there are none)."""
    parts = [part for part in parts if part is not None]
    if not parts:
        return None
    batch, logits = parts[0]
    for other, more in parts[1:]:
        batch, logits = Batch.concat(batch, other), torch.cat([logits, more])
    return batch, logits


class Request:
    """One sequence for the ``Scheduler``: its prompt, how to choose tokens, and what it has produced (notebook 21).

    ``stop`` is a token id or a function ``token -> bool``: that token ends the sequence
    (``finish_reason`` "stop") and is not added to ``tokens``; after ``max_new_tokens`` tokens it is
    "length", after ``cancel()`` "cancelled", after a failure "error" (``error`` says why).
    ``on_event(kind, value)`` is called from the scheduler's thread with ("token", id), then one
    ("end", finish_reason); by default events go to a queue that ``events()`` reads.
    ``vocab_limit``: ids at or above it are never drawn (a padded embedding's unused rows).
    """

    def __init__(self, prompt, max_new_tokens, temperature=1.0, top_k=None, top_p=None, stop=None, generator=None,
                 repetition_penalty=1.0, vocab_limit=None, on_event=None):
        if not isinstance(prompt, (list, tuple)) or not prompt or any(isinstance(t, bool) or not isinstance(t, int) for t in prompt):
            raise ValueError("a prompt must be a non-empty list of int token ids")
        require_positive_int("max_new_tokens", max_new_tokens, allow_zero=True)
        _check_sampling_args(temperature, top_k, top_p)
        require_finite_number("repetition_penalty", repetition_penalty, low=1.0)
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        self.prompt, self.max_new_tokens = list(prompt), max_new_tokens
        self.temperature, self.top_k, self.top_p, self.generator = temperature, top_k, top_p, generator
        self.repetition_penalty, self.vocab_limit = repetition_penalty, vocab_limit
        self.is_stop = stop if callable(stop) else (lambda token: token == stop)
        self.tokens, self.finish_reason, self.error = [], None, None
        self.cancelled = threading.Event()
        self._queue = collections.deque()
        self._arrived = threading.Condition()
        self.on_event = on_event or self._enqueue

    def cancel(self):
        """Stop this sequence before its next token (any thread; a client that went away)."""
        self.cancelled.set()

    def _enqueue(self, kind, value):
        with self._arrived:
            self._queue.append((kind, value))
            self._arrived.notify_all()

    def events(self, timeout=None):
        """The events so far and to come, ("token", id) ... ("end", finish_reason), blocking between them."""
        while True:
            with self._arrived:
                if not self._queue and not self._arrived.wait_for(lambda: self._queue, timeout):
                    raise TimeoutError("no event from the scheduler in time")
                kind, value = self._queue.popleft()
            yield kind, value
            if kind == "end":
                return

    def choose(self, logits):
        """The next token from this row's ``logits`` ``(vocab,)``, as ``course_lib.chat`` chooses it alone."""
        return choose_token(logits, self.temperature, self.top_k, self.top_p, self.generator, self.tokens,
                            self.repetition_penalty, self.vocab_limit)

    def _finish(self, reason, error=None):
        self.finish_reason, self.error = reason, error
        self.on_event("end", reason)


class QueueFull(Exception):
    """The scheduler's waiting line is full: try again later (the server answers 429; notebook 21)."""


class Scheduler:
    """One owner of the model, stepping every active sequence together (continuous batching, notebook 21).

    Each ``step()``: drop cancelled rows; prefill waiting requests (up to ``max_batch`` rows in
    all) in one forward pass and join them to the batch; choose every row's next token; let
    finished rows leave; one forward pass for all the rest. ``submit`` raises ``QueueFull`` when
    ``max_waiting`` requests already wait. ``start()`` runs the steps in a thread of their own;
    without it, call ``step()`` until it returns False (``generate_batch`` does).
    """

    def __init__(self, model, max_batch=32, max_waiting=64):
        require_positive_int("max_batch", max_batch)
        require_positive_int("max_waiting", max_waiting)
        self.model, self.max_batch, self.max_waiting = model, max_batch, max_waiting
        self.context_length = model.config.context_length
        self.waiting = collections.deque()
        self.state = None  # (Batch, logits): the running rows, and each one's next-token logits
        self.lock = threading.Condition()
        self.thread, self.stopping = None, False
        self.steps = 0

    @property
    def active(self):
        """How many sequences are in the running batch."""
        state = self.state
        return 0 if state is None else len(state[0])

    def submit(self, request):
        """Queue ``request``; it joins the batch at the next step with room. Raises ``QueueFull``."""
        if not isinstance(request, Request):
            raise TypeError(f"submit takes a course_lib.batching.Request, got {type(request).__name__}")
        if len(request.prompt) > self.context_length:
            request.prompt = request.prompt[-self.context_length:]  # as generate() does: the last context_length tokens
        with self.lock:
            if len(self.waiting) >= self.max_waiting:
                raise QueueFull(f"{len(self.waiting)} requests are already waiting (at most {self.max_waiting})")
            self.waiting.append(request)
            self.lock.notify_all()
        return request

    def step(self):
        """One step of every sequence; False when nothing is running or waiting."""
        with torch.inference_mode():
            self._drop(lambda r: r.cancelled.is_set(), "cancelled")
            self._admit()
            if self.state is None:
                return False
            batch, logits = self.state
            greedy = self._greedy_tokens(batch.rows, logits)
            chosen, keep = [], []
            for row, request in enumerate(batch.rows):
                try:
                    token = greedy[row] if greedy[row] is not None else request.choose(logits[row])
                except ValueError as error:  # NaN logits: this request fails, the others go on
                    request._finish("error", str(error))
                    continue
                if request.is_stop(token):
                    request._finish("stop")
                    continue
                request.tokens.append(token)
                request.on_event("token", token)
                if len(request.tokens) >= request.max_new_tokens:
                    request._finish("length")
                    continue
                chosen.append(token)
                keep.append(row)
            self.steps += 1
            self.state = self._feed(batch.select(keep), chosen) if keep else None
            return True

    @staticmethod
    def _greedy_tokens(rows, logits):
        """Every plain greedy row's token from one argmax over the batch (None for the other rows, and for rows
        with NaN logits, which ``Request.choose`` then reports): the same token ``choose`` picks, without a loop."""
        plain = [r.temperature == 0 and r.repetition_penalty == 1.0 for r in rows]
        if not any(plain):
            return [None] * len(rows)
        vocab = logits.shape[-1]
        limits = torch.tensor([r.vocab_limit or vocab for r in rows], device=logits.device)
        allowed = torch.arange(vocab, device=logits.device)[None, :] < limits[:, None]  # (batch, vocab)
        tokens = logits.float().masked_fill(~allowed, float("-inf")).argmax(dim=-1).tolist()
        finite = torch.isfinite(logits).all(dim=-1).tolist()
        return [t if p and f else None for t, p, f in zip(tokens, plain, finite)]

    def _feed(self, batch, tokens):
        """Each row's chosen token in, its next logits out. A row whose context is full is read again from its
        last ``context_length`` tokens (positions shift), as ``generate`` does."""
        full = [i for i, n in enumerate(batch.lengths.tolist()) if n >= self.context_length]
        if not full:
            return batch, batch.decode(self.model, torch.tensor(tokens, device=batch.lengths.device))
        room = [i for i in range(len(batch)) if i not in full]
        decoded = None
        if room:
            part = batch.select(room)
            decoded = part, part.decode(self.model, torch.tensor([tokens[i] for i in room], device=batch.lengths.device))
        windows = [(batch.rows[i].prompt + batch.rows[i].tokens)[-self.context_length:] for i in full]
        return _join([decoded, Batch.prefill(self.model, windows, [batch.rows[i] for i in full])])

    def _admit(self):
        with self.lock:
            room = self.max_batch - self.active
            new = []
            while self.waiting and len(new) < room:
                request = self.waiting.popleft()
                if request.cancelled.is_set():
                    request._finish("cancelled")
                elif request.max_new_tokens == 0:
                    request._finish("length")
                else:
                    new.append(request)
        if new:
            try:
                prefilled = Batch.prefill(self.model, [r.prompt for r in new], new)
            except Exception as error:  # these requests fail; the running batch goes on
                for request in new:
                    request._finish("error", f"{type(error).__name__}: {error}")
                raise
            self.state = _join([self.state, prefilled])

    def _drop(self, leaving, reason):
        if self.state is None:
            return
        batch, logits = self.state
        keep = [i for i, request in enumerate(batch.rows) if not leaving(request)]
        if len(keep) == len(batch):
            return
        for i, request in enumerate(batch.rows):
            if i not in keep:
                request._finish(reason)
        self.state = (batch.select(keep), logits[keep]) if keep else None

    def _fail_all(self, error):
        rows = self.state[0].rows if self.state is not None else []
        self.state = None
        for request in rows:
            request._finish("error", f"{type(error).__name__}: {error}")

    def _run(self):
        while True:
            with self.lock:
                self.lock.wait_for(lambda: self.stopping or self.waiting or self.state is not None)
                if self.stopping:
                    break
            try:
                self.step()
            except Exception as error:  # a bug in one step must not end the server: fail its rows, go on
                self._fail_all(error)
        self._fail_all(RuntimeError("the scheduler stopped"))
        with self.lock:
            while self.waiting:
                self.waiting.popleft()._finish("cancelled")

    def start(self):
        """Run the steps in a daemon thread until ``stop()``."""
        if self.thread is None:
            self.model.eval()
            self.stopping = False
            self.thread = threading.Thread(target=self._run, name="course_lib-scheduler", daemon=True)
            self.thread.start()
        return self

    def stop(self):
        """End the thread; sequences still running end with "error" and waiting ones with "cancelled"."""
        with self.lock:
            self.stopping = True
            self.lock.notify_all()
        if self.thread is not None:
            self.thread.join(timeout=30)
            self.thread = None
