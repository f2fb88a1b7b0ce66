"""A task whose answers a program can check: adding two numbers in the chat format (introduced in notebook 19).

Every problem is one exchange of exactly this form::

    user:      What is A + B?
    assistant: C

with A and B integers from 0 to 999 and C = A + B written in digits, nothing else (no spaces, no
words, no full stop). The reward is 1 for exactly that reply and 0 for anything else, including a
reply that merely *contains* the sum ("579 is the answer" earns 0).

The 1,000,000 problems are split once, by a fixed seed: ``HELD_OUT_SIZE`` held-out problems that
training never sees (``held_out_problems()``), and every other one for training. Anyone can test a
checkpoint on fresh problems, since the format is all there is to know.
"""
import random

import torch

from .chat import chat_tokenizer, dialogue_batch, template_of
from .sampling import generate
from .tokenizer import CharTokenizer

#: How many problems are held out, and the seed that picks them (fixed: changing it changes every figure).
HELD_OUT_SIZE, HELD_OUT_SEED = 500, 19
LARGEST = 999


def question(a, b):
    """The user's turn for ``a + b`` (notebook 19)."""
    return f"What is {a} + {b}?"


def conversation(a, b):
    """The exchange the model learns from: the question and its exact answer (notebook 19)."""
    return [{"role": "user", "content": question(a, b)}, {"role": "assistant", "content": str(a + b)}]


def reward(reply, a, b):
    """1.0 when ``reply`` is exactly the sum in digits, else 0.0 (notebook 19)."""
    return 1.0 if isinstance(reply, str) and reply == str(a + b) else 0.0


def held_out_problems():
    """The ``HELD_OUT_SIZE`` fixed held-out problems ``[(a, b), ...]`` (notebook 19)."""
    codes = random.Random(HELD_OUT_SEED).sample(range((LARGEST + 1) ** 2), HELD_OUT_SIZE)
    return [divmod(code, LARGEST + 1) for code in codes]


_HELD_OUT = frozenset(held_out_problems())


def sample_problems(rng, n):
    """``n`` training problems ``[(a, b), ...]`` drawn with ``rng`` (a ``random.Random``), never a held-out one (notebook 19)."""
    problems = []
    while len(problems) < n:
        a, b = rng.randint(0, LARGEST), rng.randint(0, LARGEST)
        if (a, b) not in _HELD_OUT:
            problems.append((a, b))
    return problems


def arithmetic_tokenizer():
    """A character tokenizer for the task's text plus the chat markers (notebook 19): 19 + 4 tokens."""
    return chat_tokenizer(CharTokenizer("".join(sorted(set(question(1234567890, 0) + "Whatis")))))


class ArithmeticTask:
    """The task bound to one chat tokenizer: prompts as token ids, the reward of a reply's ids (notebook 19).

    ``course_lib.align.grpo`` and ``dpo`` use ``sample_prompts``, ``reward``, ``stop_id`` and
    ``pad_id``; ``accuracy`` measures greedy exact-match on problems.
    """

    name = "arithmetic"

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.template = template_of(tokenizer)
        end = getattr(self.template, "end_id", None)  # ChatML's <|im_end|>
        self.stop_id = end if end is not None else tokenizer.id_of("<|end|>")
        self.pad_id = self.stop_id  # any id: padding is masked out

    def prompt(self, a, b):
        """The token ids the model continues to answer ``a + b``: the question's turn, then the reply's start."""
        turns = self.template.with_default_system([{"role": "user", "content": question(a, b)}])
        return self.template.encode(self.tokenizer, turns)[0] + self.template.generation_prompt(self.tokenizer)

    def sample_prompts(self, rng, n):
        """``n`` training prompts ``[(prompt_ids, (a, b)), ...]``."""
        return [(self.prompt(a, b), (a, b)) for a, b in sample_problems(rng, n)]

    def reply_text(self, reply_ids):
        return self.tokenizer.decode([t for t in reply_ids if t != self.stop_id])

    def reward(self, reply_ids, problem):
        """1.0 when the reply ended its turn and its text is exactly the sum; else 0.0."""
        finished = bool(reply_ids) and reply_ids[-1] == self.stop_id
        return reward(self.reply_text(reply_ids), *problem) if finished else 0.0

    def training_data(self, problems, context_length):
        """``(inputs, targets)`` for supervised fine-tuning: the assistant's answer (and end) are the targets."""
        return dialogue_batch(self.tokenizer, [conversation(a, b) for a, b in problems], context_length)

    @torch.no_grad()
    def replies(self, model, problems, max_new_tokens=8):
        """The model's greedy reply text to each problem; prompts of one length share a batch."""
        prompts = [self.prompt(a, b) for a, b in problems]
        texts = [None] * len(problems)
        by_length = {}
        for index, prompt in enumerate(prompts):
            by_length.setdefault(len(prompt), []).append(index)
        for indices in by_length.values():
            rows = torch.tensor([prompts[i] for i in indices], dtype=torch.long)  # (rows, seq)
            out = generate(model, rows, max_new_tokens, temperature=0, eos_id=self.stop_id)[:, rows.shape[1]:]
            for index, reply in zip(indices, out.tolist()):
                finished = self.stop_id in reply
                text = self.reply_text(reply[:reply.index(self.stop_id)] if finished else reply)
                texts[index] = text if finished else text + "..."  # no end of turn: never exact
        return texts

    def accuracy(self, model, problems=None, max_new_tokens=8):
        """Greedy exact-match accuracy on ``problems`` (default: the held-out ones), in [0, 1]."""
        problems = held_out_problems() if problems is None else problems
        texts = self.replies(model, problems, max_new_tokens)
        return sum(reward(text, a, b) for text, (a, b) in zip(texts, problems)) / len(problems)
