"""One evaluation for any course checkpoint: bits per byte, reply perplexity, exact match, multiple choice (notebook 22).

Every figure here is measured on text the pipeline never trains on, and each one is defined so that
two models compare fairly whatever their tokenizers:

- **bits per byte** (bpb): the model's total surprise over a held-out text, in bits, divided by the
  text's UTF-8 bytes. Loss per *token* cannot compare a character model with a BPE one (a BPE token
  carries more text, so it is harder to predict); loss per byte can. Notebook 10's perplexity is
  ``2 ** (bits per token)``; bpb is the same information per byte.
- **reply perplexity**: ``exp`` of the mean loss per token of the assistant's turns in held-out
  conversations (notebook 14's measure). It depends on the tokenizer: compare it between models
  that share one.
- **exact match**: greedy replies compared with the expected one, character for character (the
  memory conversations of notebook 14, the arithmetic of notebook 19).
- **multiple choice by log-likelihood**, as evaluation harnesses score it: the model "chooses" the
  continuation it finds most likely. ``acc`` compares the summed log-probabilities; ``acc_norm``
  divides each by its continuation's length in bytes first, so a longer choice is not penalised
  for having more tokens. The course's set: which of four lines truly follows a held-out
  Shakespeare line (chance 25 %).
"""
import json
import math
import random

import torch
import torch.nn.functional as F

from ._validate import require_positive_int
from .chat import IGNORE_INDEX, chat, dialogue_batch, select_trainable, template_of
from .data import data_path
from .dialogue import memory_dialogues, read_dialogues
from .stream import sequential_windows, split_text
from .tokenizer import CharTokenizer, SpecialTokens, WordTokenizer

#: The held-out share of the distinct dialogues (a fixed shuffle; the pipeline trains on the rest).
DIALOGUE_HELD_OUT_FRACTION, DIALOGUE_SPLIT_SEED = 0.2, 22
#: The multiple-choice set: how many questions, and the seed that builds them (fixed: changing it changes every figure).
CHOICE_QUESTIONS, CHOICE_SEED, CHOICES = 200, 22, 4


# --- the two pieces every likelihood figure is made of ---------------------------------------------

def token_byte_lengths(tokenizer):
    """The UTF-8 length in bytes of each token id's text, a ``(vocab,)`` LongTensor (notebook 22).

    Special tokens (chat markers, ``<|endoftext|>``) stand for no text: 0 bytes. A word-level
    tokenizer's tokens lose the spaces and the unknown words between them, so bytes cannot be
    counted from its ids: that is a TypeError saying so.
    """
    if isinstance(tokenizer, SpecialTokens):
        return torch.cat([token_byte_lengths(tokenizer.base), torch.zeros(len(tokenizer.specials), dtype=torch.long)])
    if isinstance(tokenizer, WordTokenizer):
        raise TypeError("a word-level tokenizer drops spaces and reads unknown words as <unk>: its tokens have no "
                        "byte length, so bits per byte cannot be measured (use a char or BPE model)")
    if isinstance(tokenizer, CharTokenizer):
        return torch.tensor([len(c.encode("utf-8")) for c in tokenizer.chars], dtype=torch.long)
    vocab = getattr(tokenizer, "vocab", None)
    if isinstance(vocab, dict) and all(isinstance(v, bytes) for v in vocab.values()):  # the course's byte-level BPE
        return torch.tensor([len(vocab[i]) for i in range(len(tokenizer))], dtype=torch.long)
    decoder, byte_decoder = getattr(tokenizer, "decoder", None), getattr(tokenizer, "byte_decoder", None)
    if isinstance(decoder, dict) and isinstance(byte_decoder, dict):  # GPT-2's and GGUF's byte-to-character alphabet
        specials = set(getattr(tokenizer, "special_ids", {}).values())
        lengths = [0 if i in specials or not all(ch in byte_decoder for ch in decoder.get(i, "")) else len(decoder[i])
                   for i in range(len(tokenizer))]  # one character of the alphabet per byte
        return torch.tensor(lengths, dtype=torch.long)
    raise TypeError(f"cannot count the bytes of a {type(tokenizer).__name__}'s tokens: expected a course tokenizer "
                    "(char, BPE, chat), GPT-2's or a GGUF file's")


@torch.no_grad()
def sum_nats(model, inputs, targets, batch_size=32):
    """Total next-token loss in nats over every target that is not ``IGNORE_INDEX``, and how many there were (notebook 22).

    ``inputs`` and ``targets``: ``(n, seq)`` LongTensors, ``targets[i, t]`` the token after
    ``inputs[i, :t + 1]``. The sum, not the mean: sums from several batches, or several texts, add up.
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    # The logits of a batch are (rows, seq, vocab) floats: with a real model's 49,152 tokens one row of
    # 1,024 positions is 200 MB, so rows per batch are capped to keep them near 256 MB.
    batch_size = max(1, min(batch_size, (1 << 26) // max(1, inputs.shape[1] * model.config.vocab_size)))
    total, count = 0.0, 0
    for start in range(0, len(inputs), batch_size):
        x, y = inputs[start:start + batch_size].to(device), targets[start:start + batch_size].to(device)
        logits = model(x).float()  # (batch, seq, vocab)
        losses = F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=IGNORE_INDEX, reduction="sum")
        total += losses.item()
        count += int((y != IGNORE_INDEX).sum())
    model.train(was_training)
    return total, count


def bits_per_byte(model, tokenizer, text, max_windows=None, batch_size=32, max_context=1024):
    """Held-out bits per UTF-8 byte of ``text``: total loss in bits over the bytes its predicted tokens spell (notebook 22).

    The text is cut into non-overlapping windows of the model's context, or of ``max_context``
    tokens if that is shorter (a real model's 8,192-token context would need gigabytes of attention
    scores on a CPU): every token but the first of each window is predicted once, from the ones
    before it in its window. ``max_windows`` (evenly spaced) bounds the time.
    """
    if not isinstance(text, str) or not text:
        raise ValueError("bits_per_byte needs a non-empty text")
    lengths = token_byte_lengths(tokenizer)
    ids = torch.tensor(tokenizer.encode(text), dtype=torch.long)
    context = min(model.config.context_length, max_context)
    if len(ids) <= context:
        context = len(ids) - 1
    if context < 1:
        raise ValueError("the text encodes to fewer than 2 tokens: nothing to predict")
    inputs, targets = sequential_windows(ids, context, max_windows)  # (windows, context) each
    nats, _ = sum_nats(model, inputs, targets, batch_size)
    return nats / math.log(2) / int(lengths[targets].sum())


def dialogue_bits_per_byte(model, tokenizer, conversations, batch_size=32):
    """Bits per byte of the assistant's turns in ``conversations``, given everything before them (notebook 22).

    The targets are notebook 14's (the assistant's text and its end-of-turn token); the bytes are
    those of the assistant's text. The end-of-turn token's bits count: knowing when to stop is part
    of the reply.
    """
    inputs, targets = assistant_batch(tokenizer, conversations, model.config.context_length)
    nats, _ = sum_nats(model, inputs, targets, batch_size)
    lengths = token_byte_lengths(tokenizer)
    return nats / math.log(2) / max(1, int(lengths[targets[targets != IGNORE_INDEX]].sum()))


def reply_perplexity(model, tokenizer, conversations, batch_size=32):
    """``exp`` of the mean loss per token of the assistant's turns in held-out ``conversations`` (notebook 14's measure)."""
    nats, count = sum_nats(model, *assistant_batch(tokenizer, conversations, model.config.context_length), batch_size)
    return math.exp(nats / count)


def assistant_batch(tokenizer, conversations, context_length):
    """``dialogue_batch`` of the conversations that keep an assistant turn once fitted to the context (notebook 22).

    A long conversation loses its oldest turns (``fit_turns``); one that ends with the user can
    lose every assistant turn that way, and then has nothing to measure.
    """
    usable, _ = select_trainable(tokenizer, conversations, context_length)
    if usable:
        inputs, targets = dialogue_batch(tokenizer, usable, context_length)
        keep = (targets != IGNORE_INDEX).any(dim=1)
        if keep.any():
            return inputs[keep], targets[keep]
    raise ValueError("no conversation has an assistant turn that fits the model's context")


# --- multiple choice by log-likelihood ------------------------------------------------------------

@torch.no_grad()
def choice_logprobs(model, tokenizer, context, choices):
    """For each choice, ``(log p(choice | context), bytes of the choice)``: the sum over the choice's tokens (notebook 22).

    The context and each choice are encoded separately and joined, so every choice follows the
    same context ids. When they do not fit the model's context, the context loses its oldest tokens.
    """
    if not isinstance(choices, (list, tuple)) or not choices or not all(isinstance(c, str) for c in choices):
        raise ValueError("choice_logprobs needs a non-empty list of choices (strings)")
    if isinstance(tokenizer, WordTokenizer):
        raise TypeError("a word-level tokenizer reads unknown words as <unk>: the likelihood of a choice would not be "
                        "the likelihood of its text (use a char or BPE model)")
    context_ids = list(tokenizer.encode(context))
    if not context_ids:
        raise ValueError("choice_logprobs needs a context of at least one token")
    scores = []
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    for choice in choices:
        choice_ids = list(tokenizer.encode(choice))
        if not choice_ids:
            raise ValueError(f"choice {choice!r} encodes to no tokens")
        keep = model.config.context_length + 1 - len(choice_ids)
        if keep < 1:
            raise ValueError(f"choice {choice[:40]!r} has {len(choice_ids)} tokens: more than the model's context")
        ids = torch.tensor(context_ids[-keep:] + choice_ids, dtype=torch.long, device=device)[None]  # (1, seq)
        logprobs = torch.log_softmax(model(ids[:, :-1]).float(), dim=-1)  # (1, seq - 1, vocab)
        picked = logprobs[0, -len(choice_ids):].gather(-1, ids[0, -len(choice_ids):, None])  # the choice's tokens
        scores.append((float(picked.sum()), len(choice.encode("utf-8"))))
    model.train(was_training)
    return scores


def multiple_choice_accuracy(model, tokenizer, questions):
    """``{"acc": ..., "acc_norm": ..., "questions": n}`` over ``questions`` (notebook 22).

    Each question is ``{"context": str, "choices": [str, ...], "answer": index}``. ``acc``: the
    choice with the highest summed log-probability is the answer. ``acc_norm``: the highest
    log-probability per byte. Ties go to the first choice, as ``max`` gives them.
    """
    if not questions:
        raise ValueError("multiple_choice_accuracy needs at least one question")
    right = right_norm = 0
    for q in questions:
        if len(q["choices"]) < 2:
            raise ValueError(f"a question needs at least 2 choices, got {len(q['choices'])}")
        scores = choice_logprobs(model, tokenizer, q["context"], q["choices"])
        right += max(range(len(scores)), key=lambda i: scores[i][0]) == q["answer"]
        right_norm += max(range(len(scores)), key=lambda i: scores[i][0] / scores[i][1]) == q["answer"]
    return {"acc": right / len(questions), "acc_norm": right_norm / len(questions), "questions": len(questions)}


def _is_verse(line):
    """A line of speech: not a speaker's name in capitals, a stage direction or a heading, and long enough to judge."""
    stripped = line.strip()
    return len(stripped) >= 20 and not stripped.isupper() and not stripped.startswith(("[", "Enter", "Exit", "ACT", "SCENE"))


def shakespeare_choices(text=None, n=CHOICE_QUESTIONS, seed=CHOICE_SEED):
    """The course's multiple-choice set: which of 4 lines follows a held-out Shakespeare line (notebook 22).

    From the held-out tail of ``data/shakespeare.txt`` (``split_text(text, 0.1)[1]``, never trained
    on): each question's context is two consecutive lines of speech, its answer the line that
    follows, and three distractors are other lines of speech from the tail, drawn with ``seed``.
    Every choice starts with the line break, as it would in the text. Chance is 1 in 4.
    """
    text = data_path("shakespeare.txt").read_text(encoding="utf-8") if text is None else text
    lines = split_text(text, 0.1)[1].split("\n")
    verse = [i for i in range(2, len(lines)) if all(_is_verse(lines[j]) for j in (i - 2, i - 1, i))]
    pool = sorted({lines[i] for i in range(len(lines)) if _is_verse(lines[i])})
    rng = random.Random(seed)
    questions = []
    for i in sorted(rng.sample(verse, min(n, len(verse)))):
        distractors = rng.sample([line for line in pool if line != lines[i]], CHOICES - 1)
        answer = rng.randrange(CHOICES)
        choices = distractors[:answer] + [lines[i]] + distractors[answer:]
        questions.append({"context": lines[i - 2] + "\n" + lines[i - 1], "choices": ["\n" + c for c in choices],
                          "answer": answer})
    return questions


# --- the held-out sets and the whole evaluation -----------------------------------------------------

def dialogue_split(conversations=None, held_out_fraction=DIALOGUE_HELD_OUT_FRACTION, seed=DIALOGUE_SPLIT_SEED):
    """``(train, held_out)`` conversations of ``data/dialogues.jsonl``; no held-out one occurs in ``train`` (notebook 22).

    The chatterbot corpus repeats itself (2,026 conversations, 901 distinct): in a plain random tenth
    of the file, 113 of the 203 were also, word for word, in the other nine tenths, so a model that
    memorised them looked brilliant. The split is therefore
    over *distinct* conversations: a fixed shuffle of them, the last ``held_out_fraction`` held out
    (once each), and ``train`` every conversation, repeats included, that is not one of those.
    """
    conversations = read_dialogues(data_path("dialogues.jsonl")) if conversations is None else list(conversations)
    keys = [json.dumps(c, sort_keys=True) for c in conversations]
    distinct = sorted(set(keys))  # sorted: the split depends on what the conversations say, not on the file's order
    random.Random(seed).shuffle(distinct)
    held = set(distinct[len(distinct) - max(1, round(len(distinct) * held_out_fraction)):])
    first = {}
    for conversation, key in zip(conversations, keys):
        first.setdefault(key, conversation)
    train = [c for c, key in zip(conversations, keys) if key not in held]
    return train, [first[key] for key in distinct if key in held]


def memory_accuracy(model, tokenizer, conversations=None):
    """Greedy exact-match accuracy of the last reply of held-out memory conversations (notebook 14's test)."""
    conversations = memory_dialogues()[1] if conversations is None else conversations
    right = sum(chat(model, tokenizer, c[:-2], c[-2]["content"], max_new_tokens=24, temperature=0) == c[-1]["content"]
                for c in conversations)
    return right / len(conversations)


#: What ``evaluate_model`` measures, in the report card's order: key -> (what it is, better when).
METRICS = {
    "shakespeare_bpb": ("held-out Shakespeare, bits per byte", "lower"),
    "dialogue_bpb": ("held-out dialogues (assistant's turns), bits per byte", "lower"),
    "reply_perplexity": ("held-out dialogues, reply perplexity (per token: same tokenizer only)", "lower"),
    "shakespeare_choice_acc": ("next Shakespeare line, 4 choices, acc (chance 0.25)", "higher"),
    "shakespeare_choice_acc_norm": ("next Shakespeare line, 4 choices, acc_norm per byte (chance 0.25)", "higher"),
    "memory_acc": ("memory conversations, exact match", "higher"),
    "arithmetic_acc": ("arithmetic A + B, exact match", "higher"),
}


def evaluate_model(model, tokenizer, limit=None, text=None, progress=None):
    """Every figure the report card shows, for one model: ``(metrics, notes)`` (notebook 22).

    ``metrics`` maps each ``METRICS`` key to its value, or None where it does not apply (a base model
    has no chat template; a tokenizer cannot write a task's characters); ``notes`` says why for each
    None. ``limit`` (a positive int) caps every set at that many items: a quick look, not the card's
    figures. ``progress(name)`` is called before each measurement.
    """
    if limit is not None:
        require_positive_int("limit", limit)
    cap = (lambda items: items[:limit]) if limit else (lambda items: items)
    text = data_path("shakespeare.txt").read_text(encoding="utf-8") if text is None else text
    metrics, notes = dict.fromkeys(METRICS), {}
    try:
        is_chat = template_of(tokenizer) is not None
    except TypeError:
        is_chat = False

    def measure(keys, compute, needs_chat=False):
        keys = [keys] if isinstance(keys, str) else keys
        if progress is not None:
            progress(keys[0])
        if needs_chat and not is_chat:
            for key in keys:
                notes[key] = "not a chat model (no chat template)"
            return
        try:
            values = compute()
        except (TypeError, ValueError, KeyError) as problem:
            for key in keys:
                notes[key] = str(problem).split("\n")[0][:160]
            return
        for key, value in zip(keys, values if len(keys) > 1 else [values]):
            metrics[key] = value

    held_out_text = split_text(text, 0.1)[1]
    measure("shakespeare_bpb", lambda: bits_per_byte(model, tokenizer, held_out_text, max_windows=limit))
    dialogues = cap(dialogue_split()[1])
    measure("dialogue_bpb", lambda: dialogue_bits_per_byte(model, tokenizer, dialogues), needs_chat=True)
    measure("reply_perplexity", lambda: reply_perplexity(model, tokenizer, dialogues), needs_chat=True)

    def choice():
        result = multiple_choice_accuracy(model, tokenizer, cap(shakespeare_choices(text)))
        return result["acc"], result["acc_norm"]

    measure(["shakespeare_choice_acc", "shakespeare_choice_acc_norm"], choice)
    measure("memory_acc", lambda: memory_accuracy(model, tokenizer, cap(memory_dialogues()[1])), needs_chat=True)

    def arithmetic():
        from .tasks import ArithmeticTask, held_out_problems

        task = ArithmeticTask(tokenizer)
        task.prompt(1234567890, 0)  # every character the task uses: a ValueError if one is missing
        return task.accuracy(model, cap(held_out_problems()))

    measure("arithmetic_acc", arithmetic, needs_chat=True)
    return metrics, notes
