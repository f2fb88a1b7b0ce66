"""Shared test set-up: a headless matplotlib, time limits that scale with the machine's speed, the
lang.txt corpus and a small GPT (test files import the helpers with ``from conftest import ...``)."""
import os
import time

import matplotlib
import pytest
import torch

from course_lib.data import load_sentences
from course_lib.gpt import GPT, GPTConfig
from course_lib.tokenizer import WordTokenizer, make_batch

matplotlib.use("Agg")  # tests draw figures without a screen

#: Seconds a fixed CPU workload took on the quiet 2-core AMD EPYC the limits were sized on.
REFERENCE_SECONDS = 0.040


def _time_scale():
    """How much slower this machine is right now than the reference (at least 1, at most 20).

    Time limits in tests (subprocess timeouts, nbgrader's cell limit) are multiplied by it, so they
    keep their margin on a slow or busy machine instead of failing there. COURSE_TEST_TIME_SCALE
    overrides the measurement.
    """
    forced = os.environ.get("COURSE_TEST_TIME_SCALE")
    if forced:
        return max(1.0, float(forced))
    a = torch.randn(256, 256, generator=torch.Generator().manual_seed(0))
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(100):
            a = torch.tanh(a @ a.T / 16)
        best = min(best, time.perf_counter() - started)
    return min(20.0, max(1.0, best / REFERENCE_SECONDS))


TIME_SCALE = _time_scale()


@pytest.fixture(scope="session")
def corpus():
    """lang.txt's sentences, its word tokenizer and the whole corpus as one batch (notebook 07)."""
    sentences = load_sentences("lang.txt")
    tokenizer = WordTokenizer.from_sentences(sentences)
    return sentences, tokenizer, make_batch(tokenizer, sentences)


def small_gpt(vocab_size=20, **overrides):
    """A seeded, tiny float64 GPT in eval mode: exact comparisons without training."""
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=vocab_size, context_length=12, d_model=16, n_heads=2, n_layers=2, d_ff=32, **overrides)
    return GPT(config).double().eval()
