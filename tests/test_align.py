"""GRPO, DPO and the arithmetic task (notebook 19), each against its formula, a brute-force loop or TRL."""
import math
import random
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from conftest import small_gpt
from torch import nn

from course_lib.align import (
    DPOConfig,
    GRPOConfig,
    dpo,
    dpo_loss,
    group_advantages,
    grpo,
    grpo_loss,
    pack,
    preference_pairs,
    reply_logprobs,
    sample_replies,
)
from course_lib.gpt import GPT, GPTConfig
from course_lib.tasks import (
    HELD_OUT_SIZE,
    ArithmeticTask,
    arithmetic_tokenizer,
    conversation,
    held_out_problems,
    question,
    reward,
    sample_problems,
)

# --- group advantages -------------------------------------------------------------------------------

def test_group_advantages_is_the_formula_group_by_group():
    rewards = torch.tensor([1.0, 0.0, 0.0, 1.0, 0.5, 0.25, 2.0, 0.0])
    got = group_advantages(rewards, 4)
    for g in range(2):
        r = rewards[4 * g:4 * g + 4]
        mean, std = sum(r.tolist()) / 4, math.sqrt(sum((x - r.mean().item()) ** 2 for x in r.tolist()) / 3)
        expected = [(x - mean) / (std + 1e-4) for x in r.tolist()]
        assert got[4 * g:4 * g + 4].tolist() == pytest.approx(expected, rel=1e-5)


def test_group_advantages_of_equal_rewards_are_zero_and_groups_are_independent():
    assert group_advantages(torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0, 0.0]), 3).tolist() == [0.0] * 6
    a = group_advantages(torch.tensor([1.0, 0.0, 1.0, 1.0]), 2)
    b = group_advantages(torch.tensor([1.0, 0.0, 0.0, 0.0]), 2)
    assert a[:2].tolist() == b[:2].tolist()  # the second group never moves the first
    # positive control: normalising over all rewards at once would make them differ
    whole = lambda r: (r - r.mean()) / (r.std() + 1e-4)  # noqa: E731
    assert whole(torch.tensor([1.0, 0.0, 1.0, 1.0]))[:2].tolist() != whole(torch.tensor([1.0, 0.0, 0.0, 0.0]))[:2].tolist()


@pytest.mark.parametrize("rewards, size", [(torch.ones(5), 2), (torch.ones(4), 1), (torch.ones(2, 2), 2)])
def test_group_advantages_refuses_groups_that_do_not_fit(rewards, size):
    with pytest.raises(ValueError):
        group_advantages(rewards, size)


# --- the GRPO objective -------------------------------------------------------------------------------

def _brute_grpo(logp, old, adv, mask, eps, ref, beta):
    total = 0.0
    for i in range(len(logp)):
        terms = []
        for t in range(len(logp[i])):
            if not mask[i][t]:
                continue
            ratio = math.exp(logp[i][t] - old[i][t])
            term = min(ratio * adv[i], max(min(ratio, 1 + eps), 1 - eps) * adv[i])
            if ref is not None:
                q = math.exp(ref[i][t] - logp[i][t])
                term -= beta * (q - math.log(q) - 1)
            terms.append(term)
        total += sum(terms) / len(terms)
    return -total / len(logp)


def test_grpo_loss_is_deepseekmath_equation_3():
    g = torch.Generator().manual_seed(0)
    logp, old, ref = (-torch.rand(4, 6, generator=g, dtype=torch.float64) for _ in range(3))
    adv = torch.randn(4, generator=g, dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 0, 0, 0], [1, 1, 1, 1, 1, 1], [1, 0, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0]], dtype=torch.bool)
    for reference, beta in ((None, 0.0), (ref, 0.1)):
        got = grpo_loss(logp, old, adv, mask, 0.2, reference, beta)
        assert float(got) == pytest.approx(_brute_grpo(logp.tolist(), old.tolist(), adv.tolist(), mask.tolist(), 0.2,
                                                       None if reference is None else ref.tolist(), beta), rel=1e-9)


def test_grpo_clipping_stops_the_gradient_outside_the_band_only():
    old = torch.zeros(4, 1, dtype=torch.float64)
    logp = torch.tensor([[math.log(1.5)], [math.log(1.5)], [math.log(0.5)], [math.log(1.1)]], dtype=torch.float64,
                        requires_grad=True)
    adv = torch.tensor([1.0, -1.0, -1.0, 1.0], dtype=torch.float64)
    grpo_loss(logp, old, adv, torch.ones(4, 1, dtype=torch.bool), clip_eps=0.2).backward()
    grad = logp.grad[:, 0].tolist()
    assert grad[0] == 0.0  # ratio 1.5 > 1.2 with a positive advantage: clipped, no push further up
    assert grad[1] != 0.0  # ratio 1.5 with a negative advantage: the min keeps the unclipped term, pull back down
    assert grad[2] == 0.0  # ratio 0.5 < 0.8 with a negative advantage: clipped
    assert grad[3] != 0.0  # inside the band


def test_a_reply_with_no_advantage_contributes_nothing():
    logp = -torch.rand(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    logp.requires_grad_(True)
    adv = torch.tensor([0.0, 1.0, -1.0], dtype=torch.float64)
    grpo_loss(logp, logp.detach(), adv, torch.ones(3, 4, dtype=torch.bool)).backward()
    assert logp.grad[0].abs().sum() == 0 and logp.grad[1].abs().sum() > 0
    # at ratio 1 the gradient is -A / (tokens * replies) per token: the policy-gradient estimate
    assert logp.grad[1].tolist() == pytest.approx([-1.0 / 12] * 4)


def test_grpo_kl_term_is_zero_at_the_reference_and_positive_elsewhere():
    logp = torch.full((1, 3), -1.0, dtype=torch.float64)
    mask, zero = torch.ones(1, 3, dtype=torch.bool), torch.zeros(1, dtype=torch.float64)
    assert float(grpo_loss(logp, logp, zero, mask, ref_logprobs=logp, beta=1.0)) == 0.0
    assert float(grpo_loss(logp, logp, zero, mask, ref_logprobs=logp - 0.5, beta=1.0)) > 0.0


# --- reply log-probabilities --------------------------------------------------------------------------

def test_reply_logprobs_equals_a_loop_over_prefixes_and_ignores_the_prompt():
    model = small_gpt(vocab_size=20)
    prompts, replies = [[1, 2, 3], [4, 5]], [[6, 7], [8, 9, 10]]
    ids, mask = pack(prompts, replies, pad_id=0)
    got = reply_logprobs(model, ids, mask)
    assert got.shape == (2, ids.shape[1] - 1)
    for row, (prompt, reply) in enumerate(zip(prompts, replies)):
        expected = 0.0
        for k, token in enumerate(reply):
            prefix = torch.tensor([prompt + reply[:k]])
            expected += float(torch.log_softmax(model(prefix)[0, -1].detach(), -1)[token])
        assert float(got[row].sum().detach()) == pytest.approx(expected, abs=1e-9)
        assert got[row, :len(prompt) - 1].abs().sum() == 0  # the prompt's tokens: not the model's choice


def test_pack_right_pads_and_marks_only_the_replies():
    ids, mask = pack([[1, 2], [3]], [[4], [5, 6, 7]], pad_id=9)
    assert ids.tolist() == [[1, 2, 4, 9], [3, 5, 6, 7]]
    assert mask.tolist() == [[False, False, True, False], [False, True, True, True]]
    with pytest.raises(ValueError):
        pack([[1]], [], pad_id=0)


# --- DPO --------------------------------------------------------------------------------------------

def test_dpo_loss_is_equation_7_and_ln2_at_the_reference():
    g = torch.Generator().manual_seed(2)
    pc, pr, rc, rr = (-5 * torch.rand(6, generator=g, dtype=torch.float64) for _ in range(4))
    expected = sum(-math.log(1 / (1 + math.exp(-0.3 * ((a - c) - (b - d))))) for a, b, c, d in
                   zip(pc.tolist(), pr.tolist(), rc.tolist(), rr.tolist())) / 6
    assert float(dpo_loss(pc, pr, rc, rr, 0.3)) == pytest.approx(expected, rel=1e-12)
    assert float(dpo_loss(pc, pr, pc, pr, 0.3)) == pytest.approx(math.log(2), rel=1e-12)
    with pytest.raises(ValueError):
        dpo_loss(pc, pr[:3], rc, rr, 0.3)
    with pytest.raises(ValueError):
        dpo_loss(pc, pr, rc, rr, 0.0)


def test_dpo_loss_equals_trl():
    trl_dpo = pytest.importorskip("trl.trainer.dpo_trainer")
    g = torch.Generator().manual_seed(3)
    pc, pr, rc, rr = (-5 * torch.rand(5, generator=g) for _ in range(4))
    beta = 0.2
    logps = torch.cat([pc, pr])  # TRL's batch: chosen rows, then rejected rows
    per_token = torch.zeros(10, 3)
    per_token[:, 0] = logps  # TRL sums its per-token log-probabilities: the sum is all that matters
    outputs = SimpleNamespace(log_probs=per_token, entropy=torch.zeros(10, 3), mean_logits=torch.zeros(10, 3),
                              is_top1=torch.zeros(10, 3, dtype=torch.bool))
    accelerator = SimpleNamespace(device="cpu", gather_for_metrics=lambda x: x, gather=lambda x: x)
    trainer = SimpleNamespace(model=SimpleNamespace(training=True), accelerator=accelerator, aux_loss_enabled=False,
                              ld_alpha=None, precompute_ref_logps=True, f_divergence_type="reverse_kl",
                              loss_types=["sigmoid"], loss_weights=[1.0], beta=beta, use_weighting=False,
                              _metrics=defaultdict(lambda: defaultdict(list)), _total_train_tokens=0, _tp_size=1,
                              label_smoothing=0.0)
    inputs = {"input_ids": torch.zeros(10, 4, dtype=torch.long), "attention_mask": torch.ones(10, 4, dtype=torch.long),
              "completion_mask": torch.ones(10, 4, dtype=torch.long), "ref_chosen_logps": rc, "ref_rejected_logps": rr}
    theirs = trl_dpo.DPOTrainer._compute_loss(trainer, lambda **kwargs: outputs, inputs, return_outputs=False)
    assert float(dpo_loss(pc, pr, rc, rr, beta)) == pytest.approx(float(theirs), rel=1e-6)
    # positive control: another beta gives another loss
    assert float(dpo_loss(pc, pr, rc, rr, 2 * beta)) != pytest.approx(float(theirs), rel=1e-3)


# --- the task -----------------------------------------------------------------------------------------

def test_the_task_is_exactly_the_stated_format():
    assert question(12, 345) == "What is 12 + 345?"
    assert conversation(999, 1) == [{"role": "user", "content": "What is 999 + 1?"},
                                    {"role": "assistant", "content": "1000"}]
    assert reward("357", 12, 345) == 1.0
    for near_miss in ("357.", " 357", "357 ", "The answer is 357", "0357", "358", "", None):
        assert reward(near_miss, 12, 345) == 0.0, near_miss


def test_held_out_problems_are_fixed_and_never_trained_on():
    held = held_out_problems()
    assert len(held) == len(set(held)) == HELD_OUT_SIZE and held == held_out_problems()
    assert all(0 <= a <= 999 and 0 <= b <= 999 for a, b in held)
    drawn = set(sample_problems(random.Random(0), 200_000))
    assert not drawn & set(held)
    assert len(drawn) > 150_000  # and the training problems are varied


class Oracle(nn.Module):
    """A stand-in model that writes ``a + b + error`` after any arithmetic prompt: a positive control."""

    def __init__(self, tokenizer, error=0, alternate=False):
        super().__init__()
        self.tokenizer, self.error, self.alternate = tokenizer, error, alternate
        self.config = GPTConfig(vocab_size=len(tokenizer), context_length=64)
        self.blocks = [None]
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, token_ids, cache=None):
        if cache is not None:  # generate() feeds one new token at a time once the prompt is cached
            seen = getattr(cache, "seen", None)
            token_ids = token_ids if seen is None else torch.cat([seen, token_ids], dim=1)
            cache.seen = token_ids
        end, asking = self.tokenizer.id_of("<|end|>"), self.tokenizer.id_of("<|assistant|>")
        logits = torch.full((*token_ids.shape, len(self.tokenizer)), -30.0)
        for row, ids in enumerate(token_ids.tolist()):
            text = self.tokenizer.decode(ids[:ids.index(asking)])
            a, b = (int(x) for x in text.removeprefix("What is ").removesuffix("?").split(" + "))
            error = row % 2 if self.alternate else self.error  # alternate: every other row is off by one
            answer = self.tokenizer.encode(str(a + b + error)) + [end]
            written = len(ids) - ids.index(asking) - 1
            logits[row, -1, answer[min(written, len(answer) - 1)]] = 30.0
        return logits


def test_accuracy_is_one_for_the_oracle_and_zero_when_off_by_one():
    task = ArithmeticTask(arithmetic_tokenizer())
    problems = held_out_problems()[:40]
    assert task.accuracy(Oracle(task.tokenizer), problems) == 1.0
    assert task.accuracy(Oracle(task.tokenizer, error=1), problems) == 0.0
    assert task.replies(Oracle(task.tokenizer), [(12, 345)]) == ["357"]


def test_task_reward_needs_the_end_of_turn():
    task = ArithmeticTask(arithmetic_tokenizer())
    digits = task.tokenizer.encode("357")
    assert task.reward(digits + [task.stop_id], (12, 345)) == 1.0
    assert task.reward(digits, (12, 345)) == 0.0  # cut off by max_new_tokens: not an answer


def test_sampled_groups_are_neighbours_and_end_at_the_stop():
    task = ArithmeticTask(arithmetic_tokenizer())
    prompts = [task.prompt(1, 2), task.prompt(100, 200), task.prompt(3, 4)]
    replies = sample_replies(Oracle(task.tokenizer), prompts, 3, 6, task.stop_id, temperature=1.0,
                             generator=torch.Generator().manual_seed(0))
    texts = [task.reply_text(r) for r in replies]
    assert texts == ["3"] * 3 + ["300"] * 3 + ["7"] * 3
    assert all(r[-1] == task.stop_id for r in replies)


# --- the loops, on a tiny model (they must run and move the model; the figures are in notebook 19) ---------

def _tiny_task_model():
    task = ArithmeticTask(arithmetic_tokenizer())
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=len(task.tokenizer), context_length=32, d_model=16, n_heads=2, n_layers=1, d_ff=32)
    return task, GPT(config)


def test_grpo_loop_runs_changes_the_model_and_reports():
    task, model = _tiny_task_model()
    before = [p.detach().clone() for p in model.parameters()]
    config = GRPOConfig(steps=2, prompts_per_step=2, group_size=4, max_new_tokens=4, temperature=3.0)
    history = grpo(model, task, config, evaluate=lambda m: 0.5, eval_every=1)
    assert history["step"] == [1, 2] and len(history["reward"]) == 2 and history["eval"] == [0.5, 0.5, 0.5]
    assert not history["interrupted"]
    # the untrained model's rewards are all 0: every group agrees, so nothing moved
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters())) == (sum(history["reward"]) == 0)


def test_dpo_loop_moves_the_margin_up():
    task, model = _tiny_task_model()
    prompt = task.prompt(1, 2)
    right, wrong = task.tokenizer.encode("3") + [task.stop_id], task.tokenizer.encode("4") + [task.stop_id]
    history = dpo(model, task, DPOConfig(epochs=8, batch_size=4, lr=1e-2), pairs=[(prompt, right, wrong)] * 4)
    assert history["loss"][0] == pytest.approx(math.log(2), abs=1e-6)  # the policy starts as its reference
    assert history["margin"][-1] > history["margin"][0] and history["loss"][-1] < history["loss"][0]


def test_preference_pairs_pair_a_right_reply_with_a_wrong_one():
    task = ArithmeticTask(arithmetic_tokenizer())

    pairs = preference_pairs(Oracle(task.tokenizer, alternate=True), task, DPOConfig(pairs=5, samples_per_prompt=4, max_new_tokens=6),
                             random.Random(0), torch.Generator().manual_seed(0))
    assert len(pairs) == 5
    for prompt, chosen, rejected in pairs:
        text = task.tokenizer.decode(prompt)
        a, b = (int(x) for x in text.removeprefix("What is ").removesuffix("?").split(" + "))
        assert task.reward(chosen, (a, b)) == 1.0 and task.reward(rejected, (a, b)) == 0.0


@pytest.mark.parametrize("bad", [dict(group_size=1), dict(steps=0), dict(clip_eps=0.0), dict(beta=-1.0), dict(lr=0.0)])
def test_grpo_config_refuses_bad_values(bad):
    with pytest.raises(ValueError):
        GRPOConfig(**bad)
