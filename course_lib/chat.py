"""From a language model to a chat model: the template, assistant-only targets, chatting (introduced in notebook 14).

A chat model is a language model that reads a conversation written in one fixed **template**::

    <|system|>You are terse.<|end|><|user|>Hi!<|end|><|assistant|>Hello.<|end|><|user|>...

Every turn is a role marker, its text, and ``<|end|>``. The four markers are *special tokens*
appended to the base tokenizer's vocabulary (``chat_tokenizer``): they cannot be typed (the text
"<|assistant|>" encodes as its characters), so a user cannot forge a turn. Generation starts after
``<|assistant|>`` and stops at ``<|end|>``: that token is how the model says "my turn is over".

Fine-tuning teaches the model to write the *assistant's* turns, so only they are targets: every
other position's target is ``IGNORE_INDEX`` (-100), the value ``torch.nn.functional.cross_entropy``
ignores by default and ``GPT.forward`` uses when no ``pad_id`` is given. The seed's mistake was to
train on every token: then the model also learns to write the user's lines.
"""
import threading

import torch

from ._validate import require_finite_number, require_positive_int
from .dialogue import check_turns
from .kv_cache import KVCache
from .next_token import _check_sampling_args, choose_token
from .tokenizer import SpecialTokens

SYSTEM, USER, ASSISTANT, END = "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"
CHAT_SPECIALS = (SYSTEM, USER, ASSISTANT, END)
MARKERS = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}
#: The target of a position the loss skips (cross_entropy's default ``ignore_index``; notebook 14).
IGNORE_INDEX = -100


class CourseTemplate:
    """The course's own template (notebook 14): ``<|role|>text<|end|>`` per turn; ``<|assistant|>`` asks for a reply.

    The methods every template has (``course_lib.templates`` lists them; ``ChatML`` is the other
    one): ``encode``, ``generation_prompt``, ``ends_turn``, ``with_default_system``, ``render``.
    """

    def encode(self, tokenizer, turns):
        return _encode(tokenizer, turns)

    def generation_prompt(self, tokenizer):
        return [tokenizer.id_of(ASSISTANT)]

    def ends_turn(self, tokenizer, token_id):
        return token_id >= tokenizer.first_special  # <|end|>, or a marker that would start another turn

    def with_default_system(self, turns):
        return list(turns)

    def render(self, turns, add_generation_prompt=False):
        return render(turns) + (ASSISTANT if add_generation_prompt else "")

    def __repr__(self):
        return "CourseTemplate()"


COURSE_TEMPLATE = CourseTemplate()


def template_of(tokenizer):
    """The chat template ``tokenizer`` carries: its own ``chat_template`` (a real model's, notebook 18), or
    the course's markers for a ``chat_tokenizer`` (notebook 14). A tokenizer with neither is a TypeError."""
    own = getattr(tokenizer, "chat_template", None)
    if own is not None:
        return own
    if isinstance(tokenizer, SpecialTokens) and tuple(tokenizer.specials) == CHAT_SPECIALS:
        return COURSE_TEMPLATE
    raise TypeError("expected a chat tokenizer (course_lib.chat.chat_tokenizer(base), or a chat model's tokenizer "
                    f"from course_lib.gguf.load_gguf), got {type(tokenizer).__name__}: the template needs its role "
                    "markers and an end-of-turn token")


def chat_tokenizer(base):
    """``base`` with the chat template's four special tokens appended (notebook 14); its own ids are unchanged."""
    if not all(callable(getattr(base, name, None)) for name in ("encode", "decode", "__len__")):
        raise TypeError(f"chat_tokenizer needs a tokenizer (encode, decode, len), got {type(base).__name__}")
    if isinstance(base, SpecialTokens):
        if tuple(base.specials) != CHAT_SPECIALS:
            raise ValueError(f"this tokenizer has other special tokens {base.specials}; expected {list(CHAT_SPECIALS)}")
        return base
    return SpecialTokens(base, CHAT_SPECIALS)


def render(turns):
    """The conversation as the model reads it, markers written out (notebook 14)."""
    check_turns(turns)
    return "".join(f"{MARKERS[t['role']]}{t['content']}{END}" for t in turns)


def encode_turns(tokenizer, turns):
    """The template's token ids of ``turns`` and, for each id, whether the model must learn to write it (notebook 14).

    The learned tokens are the assistant's: its text and its ``<|end|>``; never its marker (the
    code writes that, to ask for a reply), never a user's or the system's token.
    """
    template = template_of(tokenizer)
    check_turns(turns)
    return template.encode(tokenizer, turns)


def _encode(tokenizer, turns):  # checked by the caller
    ids, learned = [], []
    for turn in turns:
        body = tokenizer.encode(turn["content"]) + [tokenizer.id_of(END)]
        is_assistant = turn["role"] == "assistant"
        ids += [tokenizer.id_of(MARKERS[turn["role"]])] + body
        learned += [False] + [is_assistant] * len(body)
    return ids, learned


def fit_turns(tokenizer, turns, budget):
    """Drop whole turns from the oldest end until ``turns`` takes at most ``budget`` tokens (notebook 14).

    A system turn stays (it is an instruction, not history); user/assistant exchanges go, oldest
    first, two turns at a time so the conversation still starts with the user. The last user turn
    and what follows it are never cut: if they alone do not fit, that is a ValueError saying by how
    much. Returns ``(kept_turns, dropped)``, ``dropped`` being how many turns went.
    """
    check_turns(turns)
    require_positive_int("budget", budget)
    system = turns[:1] if turns[0]["role"] == "system" else []
    rest = turns[len(system):]
    last_user = max(i for i, t in enumerate(rest) if t["role"] == "user") if any(
        t["role"] == "user" for t in rest) else 0
    template = template_of(tokenizer)
    lengths = [len(template.encode(tokenizer, [t])[0]) for t in rest]
    system_length = len(template.encode(tokenizer, system)[0]) if system else 0
    start = 0
    while system_length + sum(lengths[start:]) > budget and start + 2 <= last_user:
        start += 2  # one exchange: a user turn and the assistant's reply
    needed = system_length + sum(lengths[start:])
    if needed > budget:
        what = "the system turn and the last exchange" if system else "the last exchange"
        raise ValueError(f"{what} take {needed} tokens but only {budget} fit in the context: "
                         "shorten the message (or the system prompt), or use a model with a longer context_length")
    return system + rest[start:], start


LOSS_ON = ("assistant", "all")


def encode_dialogue(tokenizer, turns, context_length, loss_on="assistant"):
    """``(inputs, targets)`` for fine-tuning on one conversation: 1-D LongTensors of equal length (notebook 14).

    ``inputs`` are the template's tokens but the last; ``targets[t]`` is the token after
    ``inputs[t]`` where that token is the assistant's (its text or its ``<|end|>``), and
    ``IGNORE_INDEX`` (-100) everywhere else. A conversation longer than ``context_length + 1``
    tokens loses whole turns from the oldest end (``fit_turns``). ``loss_on="all"`` keeps every
    target instead: the seed's way, for comparison only.
    """
    require_positive_int("context_length", context_length)
    if loss_on not in LOSS_ON:
        raise ValueError(f"loss_on must be one of {LOSS_ON}, got {loss_on!r}")
    template = template_of(tokenizer)
    turns, _ = fit_turns(tokenizer, template.with_default_system(check_turns(turns)), context_length + 1)
    ids, learned = template.encode(tokenizer, turns)
    keep = learned[1:] if loss_on == "assistant" else [True] * (len(ids) - 1)
    targets = [token if kept else IGNORE_INDEX for token, kept in zip(ids[1:], keep)]
    return torch.tensor(ids[:-1], dtype=torch.long), torch.tensor(targets, dtype=torch.long)


def dialogue_batch(tokenizer, conversations, context_length, loss_on="assistant"):
    """Every conversation's ``encode_dialogue``, right-padded into two ``(n, longest)`` tensors (notebook 14).

    Padding inputs are ``<|end|>`` (any real id would do: a causal model never lets a position see
    the ones after it) and padding targets ``IGNORE_INDEX``, so padding adds nothing to the loss.
    """
    if isinstance(conversations, dict) or not conversations:
        raise ValueError("dialogue_batch expects a non-empty list of conversations (lists of turns)")
    template = template_of(tokenizer)
    pairs = [encode_dialogue(tokenizer, turns, context_length, loss_on) for turns in conversations]
    width = max(len(x) for x, _ in pairs)
    pad = tokenizer.id_of(END) if isinstance(template, CourseTemplate) else template.end_id
    inputs = torch.full((len(pairs), width), pad, dtype=torch.long)
    targets = torch.full((len(pairs), width), IGNORE_INDEX, dtype=torch.long)
    for row, (x, y) in enumerate(pairs):
        inputs[row, :len(x)], targets[row, :len(y)] = x, y
    return inputs, targets


def select_trainable(tokenizer, conversations, context_length):
    """``(usable, skipped)``: the conversations that teach something and fit, and how many did not (notebook 14).

    Usable: at least one assistant turn (else nothing is learned), and the last exchange fits in
    ``context_length + 1`` tokens (older turns may be dropped, ``fit_turns``).
    """
    usable = []
    for turns in conversations:
        if not any(turn["role"] == "assistant" for turn in check_turns(turns)):
            continue
        try:
            fit_turns(tokenizer, turns, context_length + 1)
        except ValueError:
            continue
        usable.append(turns)
    return usable, len(conversations) - len(usable)


class ChatStream:
    """The reply to one message, as an iterator of text pieces (notebook 15).

    Iterate to get the reply piece by piece as it is generated. Afterwards ``text`` is the whole
    reply, ``finish_reason`` is ``"stop"`` (the model ended its turn) or ``"length"`` (it hit
    ``max_new_tokens``), ``prompt_tokens`` and ``completion_tokens`` count tokens, and
    ``dropped_turns`` says how many old turns did not fit in the context.
    """

    def __init__(self, pieces, prompt_tokens, dropped_turns):
        self._pieces = pieces
        self.text, self.finish_reason, self.completion_tokens = "", None, 0
        self.prompt_tokens, self.dropped_turns = prompt_tokens, dropped_turns
        self.cancelled = threading.Event()

    def __iter__(self):
        return self

    def __next__(self):
        piece = next(self._pieces)  # StopIteration ends the reply
        self.text += piece
        return piece

    def close(self):
        """Stop generating (a client went away); ``finish_reason`` stays None."""
        self._pieces.close()

    def history_after(self, history, message):
        """The conversation to pass next time: ``history`` without the turns this reply dropped, plus the exchange.

        A system turn stays. An empty reply adds nothing (the turns must alternate): the next message
        answers the same history (notebook 15).
        """
        system = 1 if history and history[0]["role"] == "system" else 0
        kept = history[:system] + history[system + self.dropped_turns:]
        if not self.text.strip():
            return kept
        return kept + [{"role": "user", "content": message}, {"role": "assistant", "content": self.text}]

    def cancel(self):
        """Like ``close``, from any thread, even while another is inside ``next()``: generation stops
        before its next token (an HTTP server's handler calls it when the client disconnects)."""
        self.cancelled.set()


def stream_chat(model, tokenizer, history, message, max_new_tokens=200, temperature=0.7, top_k=None, top_p=0.9,
                repetition_penalty=1.0, generator=None):
    """The assistant's reply to ``message`` after ``history``, streamed: a ``ChatStream`` of text pieces (notebook 15).

    ``history`` is the conversation so far (a list of turns, possibly empty, possibly starting with
    a system turn). The prompt is the template of history + message, then ``<|assistant|>``; turns
    the context cannot hold are dropped, oldest first, keeping room for ``min(max_new_tokens,
    context_length // 4)`` new tokens. Sampling is notebook 08's (``temperature=0`` is greedy),
    after dividing the logit of every token already in this reply by ``repetition_penalty`` (or
    multiplying it, when negative: Keskar et al. 2019). Generation stops at ``<|end|>`` (or any
    other marker, which would start a turn that is not the assistant's) or after
    ``max_new_tokens`` tokens. The reply never contains the prompt or a marker.
    """
    template, prompt, dropped = chat_prompt(model, tokenizer, history, message, max_new_tokens, temperature, top_k,
                                            top_p, repetition_penalty, generator)
    stream = ChatStream(None, len(prompt), dropped)
    stream._pieces = _reply_pieces(model, tokenizer, template, prompt, max_new_tokens, temperature, top_k, top_p,
                                   repetition_penalty, generator, stream)
    return stream


def chat_prompt(model, tokenizer, history, message, max_new_tokens=200, temperature=0.7, top_k=None, top_p=0.9,
                repetition_penalty=1.0, generator=None):
    """``(template, prompt_ids, dropped_turns)``: what ``stream_chat`` feeds the model, every argument checked (notebook 15).

    A server that batches many conversations (notebook 21) builds each prompt here and generates it
    with ``course_lib.batching``, stopping where ``template.ends_turn`` says.
    """
    template = template_of(tokenizer)
    _check_sampling_args(temperature, top_k, top_p)
    require_positive_int("max_new_tokens", max_new_tokens)
    require_finite_number("repetition_penalty", repetition_penalty, low=1.0)
    if not isinstance(history, list):
        raise TypeError(f"history must be a list of turns ({{'role': ..., 'content': ...}}), got {type(history).__name__}")
    if not isinstance(message, str):
        raise TypeError(f"message must be a str, got {type(message).__name__}")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    context_length = model.config.context_length
    if len(tokenizer) > model.config.vocab_size:
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size}: "
                         "fine-tune it with course_lib.gpt.grow_vocabulary first (notebook 14)")
    turns = check_turns(history + [{"role": "user", "content": message}])
    asking = template.generation_prompt(tokenizer)  # <|assistant|>, or ChatML's <|im_start|>assistant\n
    budget = context_length - min(max_new_tokens, context_length // 4) - len(asking)
    added = template.with_default_system(turns)  # ChatML models add their default system prompt
    turns, dropped = fit_turns(tokenizer, added, budget)
    return template, template.encode(tokenizer, turns)[0] + asking, dropped


class TextPieces:
    """A reply's tokens turned into text pieces as they come (notebook 15).

    ``push(token)`` returns the text the token adds ("" while a byte-level token ends inside a
    character: the piece waits for the rest); ``flush()`` returns what is left at the end.
    """

    def __init__(self, tokenizer):
        self.tokenizer, self.tokens, self.shown = tokenizer, [], ""

    def push(self, token):
        self.tokens.append(token)
        text = self.tokenizer.decode(self.tokens)
        if text.endswith("\ufffd"):
            return ""
        piece, self.shown = text[len(self.shown):], text
        return piece

    def flush(self):
        text = self.tokenizer.decode(self.tokens)
        piece, self.shown = text[len(self.shown):], text
        return piece


def chat(model, tokenizer, history, message, max_new_tokens=200, temperature=0.7, top_k=None, top_p=0.9,
         repetition_penalty=1.0, generator=None):
    """The assistant's reply to ``message`` after ``history``, as one string (notebook 15; see ``stream_chat``)."""
    return "".join(stream_chat(model, tokenizer, history, message, max_new_tokens, temperature, top_k, top_p,
                               repetition_penalty, generator))


@torch.no_grad()
def _reply_pieces(model, tokenizer, template, prompt, max_new_tokens, temperature, top_k, top_p, repetition_penalty,
                  generator, stream):
    device = next(model.parameters()).device
    context_length = model.config.context_length
    ids = torch.tensor([prompt], dtype=torch.long, device=device)  # (1, seq)
    was_training = model.training
    model.eval()
    reply, pieces = [], TextPieces(tokenizer)

    def logits_from_window():  # the last position's logits, from (at most) the last context_length tokens
        cache = KVCache(len(model.blocks))
        return model(ids[:, -context_length:], cache=cache)[0, -1], cache

    try:
        logits, cache = logits_from_window()  # (vocab,)
        for _ in range(max_new_tokens):
            if stream.cancelled.is_set():
                return
            token = choose_token(logits, temperature, top_k, top_p, generator, reply, repetition_penalty,
                                 len(tokenizer))  # rows no token uses (a padded vocabulary) are never drawn
            if template.ends_turn(tokenizer, token):  # <|end|>, or a marker that would start another turn
                stream.finish_reason = "stop"
                break
            reply.append(token)
            stream.completion_tokens = len(reply)
            piece = pieces.push(token)  # "" while a byte-level token ends inside a character
            if piece:
                yield piece
            ids = torch.cat([ids, torch.tensor([[token]], device=device)], dim=1)
            if len(cache) < context_length:
                logits = model(ids[:, -1:], cache=cache)[0, -1]  # one new token, cached past
            else:
                logits, cache = logits_from_window()  # a full window: positions shift
        stream.finish_reason = stream.finish_reason or "length"
        rest = pieces.flush()
        if rest:
            yield rest
    finally:
        model.train(was_training)
