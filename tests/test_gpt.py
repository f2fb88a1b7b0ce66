"""The GPT: causality, positions, the loss, tying, initial loss and bad inputs (course_lib.gpt)."""
import math

import pytest
import torch
import torch.nn.functional as F
from conftest import small_gpt

import course_lib
from course_lib.attention import recording_attention
from course_lib.gpt import GPT, GPTConfig
from course_lib.training import evaluate


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_gpt_is_causal_by_perturbation(positions):
    model = small_gpt(positions=positions)
    ids = torch.randint(0, 20, (3, 10), generator=torch.Generator().manual_seed(1))
    for t in (0, 4, 9):
        changed = ids.clone()
        changed[:, t] = (changed[:, t] + 1) % 20
        diff = (model(ids) - model(changed)).abs().amax(dim=(0, 2))
        assert torch.all(diff[:t] == 0) and diff[t] > 0



def test_gpt_positions_follow_the_sequence_not_the_batch():
    # The seed built positions from len(batch): a batch larger than the context crashed, and a
    # row's logits depended on the batch size. Here each row is the same alone or in a batch of 30.
    model = small_gpt()
    ids = torch.randint(0, 20, (30, 8), generator=torch.Generator().manual_seed(2))
    batched = model(ids)
    assert batched.shape == (30, 8, 20)
    torch.testing.assert_close(batched[17:18], model(ids[17:18]))



def test_loss_ignores_padding_exactly():
    model = small_gpt()
    pad = 0
    inputs = torch.tensor([[1, 5, 6, 7, 0, 0], [1, 8, 9, 0, 0, 0]])
    targets = torch.tensor([[5, 6, 7, 2, 0, 0], [8, 9, 2, 0, 0, 0]])
    logits, loss = model(inputs, targets, pad_id=pad)
    real = targets != pad
    expected = F.cross_entropy(logits[real], targets[real])  # only the 7 real targets
    torch.testing.assert_close(loss, expected)
    counted_padding = F.cross_entropy(logits.reshape(-1, 20), targets.reshape(-1))
    assert not torch.allclose(loss, counted_padding)
    # more padding columns leave the loss unchanged
    wider_in = torch.cat([inputs, torch.zeros(2, 3, dtype=torch.long)], 1)
    wider_t = torch.cat([targets, torch.zeros(2, 3, dtype=torch.long)], 1)
    torch.testing.assert_close(model(wider_in, wider_t, pad_id=pad)[1], loss)



def test_untrained_loss_is_close_to_log_vocab(corpus):
    _, tokenizer, data = corpus
    course_lib.seed_everything(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer)))
    assert abs(evaluate(model, data, pad_id=tokenizer.pad_id) - math.log(len(tokenizer))) < 0.1



def test_weight_tying_and_attention_weights():
    model = small_gpt()
    assert model.lm_head.weight is model.token_embedding.weight
    untied = small_gpt(tie_weights=False)
    assert untied.num_parameters() == model.num_parameters() + 20 * 16
    ids = torch.randint(0, 20, (2, 5))
    with recording_attention(model):
        recorded = model(ids)
    assert len(model.attention_weights) == 2 and model.attention_weights[0].shape == (2, 2, 5, 5)
    torch.testing.assert_close(model.attention_weights[0].tril(), model.attention_weights[0])  # causal
    torch.testing.assert_close(model(ids), recorded, atol=1e-6, rtol=0)  # the fused path: same logits


def test_gpt_fused_and_recorded_attention_agree_with_padding_and_dropout_off():
    from test_attention import _fused_and_course

    model = small_gpt()
    ids = torch.randint(1, 20, (3, 7))
    ids[1, 4:] = 0  # padding
    model.train()
    (fast, fast_grads), (course, course_grads) = _fused_and_course(model, ids, ids, pad_id=0)
    torch.testing.assert_close(fast, course, atol=1e-5, rtol=0)
    for name in fast_grads:
        torch.testing.assert_close(fast_grads[name], course_grads[name], atol=1e-5, rtol=1e-4, msg=name)



def test_gpt_bad_inputs():
    model = small_gpt()
    with pytest.raises(ValueError, match="13 positions but the model's context_length is 12"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token_ids must lie in \[0, 20\)"):
        model(torch.tensor([[3, 20]]))
    with pytest.raises(ValueError, match="2 dimensions"):
        model(torch.tensor([3, 4]))
    with pytest.raises(TypeError, match="integer token ids"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="targets must have the shape"):
        model(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_heads=3 does not divide d_model=64"):
        GPTConfig(vocab_size=10, n_heads=3)
    with pytest.raises(ValueError, match="positions must be"):
        GPTConfig(vocab_size=10, positions="rotary")
    with pytest.raises(ValueError, match="vocab_size must be > 0"):
        GPTConfig(vocab_size=0)

