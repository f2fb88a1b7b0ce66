"""Perplexity on a hand-computed case; validation curves and early stopping."""
import math

import pytest
import torch
from torch import nn

import course_lib
from course_lib.data import load_sentences
from course_lib.gpt import GPT, GPTConfig
from course_lib.tokenizer import WordTokenizer, make_batch
from course_lib.training import evaluate, perplexity, train


class FixedProbabilities(nn.Module):
    """A stand-in model whose next-token probabilities are given: 0.5, then 0.25, for the targets."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, token_ids, pad_id=None):
        probs = torch.tensor([[[0.5, 0.25, 0.25], [0.25, 0.25, 0.5]]])  # (1, 2, vocab 3)
        return probs.log().expand(token_ids.shape[0], -1, -1)


def test_perplexity_is_exp_of_mean_loss_by_hand():
    inputs = torch.tensor([[1, 2]])
    targets = torch.tensor([[0, 1]])  # p = 0.5, then p = 0.25
    model = FixedProbabilities()
    expected_loss = (math.log(2) + math.log(4)) / 2  # 1.5 ln 2
    assert evaluate(model, (inputs, targets)) == pytest.approx(expected_loss, abs=1e-6)
    assert perplexity(model, (inputs, targets)) == pytest.approx(2 ** 1.5, abs=1e-5)
    padded = (torch.tensor([[1, 2]]), torch.tensor([[0, 2]]))  # second target is padding (id 2)
    assert perplexity(model, padded, pad_id=2) == pytest.approx(2.0, abs=1e-5)


def test_validation_curve_and_early_stopping_restore_the_best_weights():
    sentences = load_sentences("lang.txt")
    tokenizer = WordTokenizer.from_sentences(sentences[:16])
    train_data, val_data = make_batch(tokenizer, sentences[:16]), make_batch(tokenizer, sentences[16:])
    course_lib.seed_everything(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer)))
    history = train(model, train_data, steps=200, pad_id=0, eval_every=10, progress=False,
                    val_data=val_data, restore_best=True)
    assert len(history["val_loss"]) == len(history["eval_step"]) == 20
    best = history["eval_step"].index(history["best_step"])
    assert history["val_loss"][best] == min(history["val_loss"])
    assert history["val_loss"][-1] > min(history["val_loss"])  # memorising 16 sentences: held-out loss rises
    assert evaluate(model, val_data, pad_id=0) == pytest.approx(min(history["val_loss"]), abs=1e-5)
    with pytest.raises(ValueError, match="restore_best=True needs val_data"):
        train(model, train_data, steps=1, restore_best=True, progress=False)
