"""After supervised fine-tuning: rewards instead of examples, GRPO and DPO (introduced in notebook 19).

Supervised fine-tuning shows the model *what* to write. Alignment tells it *how good* what it wrote
was, which needs no example answer, only a judgement:

- **GRPO** (group relative policy optimisation, Shao et al. 2024, DeepSeekMath section 4.1): for
  each prompt, sample a *group* of replies from the model, score each with a reward (here a
  program that checks the answer), and push up the replies that scored above their group's mean,
  push down those below it. The group's mean replaces PPO's learned value function.
- **DPO** (direct preference optimisation, Rafailov et al. 2023): from pairs of replies to one
  prompt, one preferred ("chosen") and one not ("rejected"), raise the chosen reply's probability
  relative to a frozen reference model and lower the rejected one's, in one classification-like
  loss (the paper's equation 7). No sampling during training.

Both work on the log-probability the model gives each token of a *reply*: ``reply_logprobs``
computes them, and the prompt's tokens are never counted (the model did not choose them).
"""
import math
import random
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F

from ._validate import require_finite_number, require_positive_int, require_tensor
from .sampling import generate

# --- the pieces: each one a formula, checked in tests/test_align.py ------------------------------

def group_advantages(rewards, group_size, eps=1e-4):
    """Each reward minus its group's mean, divided by the group's standard deviation plus ``eps`` (notebook 19).

    ``rewards`` is a 1-D tensor of consecutive groups of ``group_size`` (the replies to one prompt
    are neighbours). The standard deviation is ``torch.std``'s default (Bessel-corrected), as in
    DeepSeekMath's outcome supervision and TRL's ``GRPOTrainer``; ``eps`` keeps a group of equal
    rewards at advantage 0 (nothing to learn from it) instead of 0/0.
    """
    require_tensor("rewards", rewards, dim=1)
    require_positive_int("group_size", group_size)
    if group_size < 2 or rewards.numel() % group_size:
        raise ValueError(f"group_size={group_size} must be at least 2 and divide the {rewards.numel()} rewards "
                         "(the rewards of consecutive groups of replies to one prompt)")
    groups = rewards.float().view(-1, group_size)  # (prompts, group_size)
    advantages = (groups - groups.mean(dim=1, keepdim=True)) / (groups.std(dim=1, keepdim=True) + eps)
    return advantages.view(-1)  # (prompts * group_size,)


def reply_logprobs(model, token_ids, reply_mask):
    """Log-probability of each token of ``token_ids`` given the ones before it, 0 outside the reply (notebook 19).

    ``token_ids`` is ``(batch, seq)`` (prompt, reply, then any padding); ``reply_mask`` is
    ``(batch, seq)``, True at the reply's tokens (its end-of-turn token included: ending there was
    the model's choice too). Returns ``(batch, seq - 1)``: entry ``t`` is ``log p(token[t+1] | token[:t+1])``
    where ``token[t+1]`` is a reply token, else 0. Sum over the last axis for a reply's log-probability.
    """
    require_tensor("token_ids", token_ids, dim=2, integer=True)
    require_tensor("reply_mask", reply_mask, dim=2)
    if reply_mask.shape != token_ids.shape:
        raise ValueError(f"reply_mask must have the shape of token_ids {tuple(token_ids.shape)}, "
                         f"got {tuple(reply_mask.shape)}")
    logits = model(token_ids[:, :-1])  # (batch, seq - 1, vocab): position t predicts token t + 1
    logits = logits.to(torch.promote_types(logits.dtype, torch.float32))  # half precision: softmax in float32
    logprobs = torch.log_softmax(logits, dim=-1).gather(-1, token_ids[:, 1:, None]).squeeze(-1)  # (batch, seq - 1)
    return logprobs * reply_mask[:, 1:].to(logprobs.dtype)


def grpo_loss(logprobs, old_logprobs, advantages, reply_mask, clip_eps=0.2, ref_logprobs=None, beta=0.0):
    """The negative of DeepSeekMath's GRPO objective (their equation 3), to minimise (notebook 19).

    Per reply token: ``min(ratio * A, clip(ratio, 1 - clip_eps, 1 + clip_eps) * A)`` with ``ratio =
    exp(logprobs - old_logprobs)`` (the policy now against the policy that sampled the reply) and
    ``A`` the reply's group advantage; minus ``beta`` times the KL estimate ``ref/p - log(ref/p) - 1``
    to the reference model (their equation 4; unbiased and never negative). Averaged over each
    reply's tokens, then over the replies.

    ``logprobs``, ``old_logprobs``, ``ref_logprobs`` and ``reply_mask``: ``(batch, seq)``, as
    ``reply_logprobs`` gives them (the mask shifted alike); ``advantages``: ``(batch,)``.
    """
    require_finite_number("clip_eps", clip_eps, low=0.0, high=1.0, low_open=True)
    require_finite_number("beta", beta, low=0.0)
    mask = reply_mask.to(logprobs.dtype)  # (batch, seq)
    ratio = torch.exp(logprobs - old_logprobs.detach())  # 1 at the first update of a fresh sample
    advantage = advantages.detach()[:, None]  # (batch, 1): one value for every token of a reply
    per_token = torch.minimum(ratio * advantage, ratio.clamp(1 - clip_eps, 1 + clip_eps) * advantage)
    if ref_logprobs is not None and beta > 0:
        log_ratio = ref_logprobs.detach() - logprobs  # log(ref / p)
        per_token = per_token - beta * (torch.exp(log_ratio) - log_ratio - 1)
    per_reply = (per_token * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1)  # (batch,)
    return -per_reply.mean()


def dpo_loss(policy_chosen_logps, policy_rejected_logps, ref_chosen_logps, ref_rejected_logps, beta):
    """DPO's loss (Rafailov et al. 2023, equation 7), the mean over a batch of pairs (notebook 19).

    Each argument is ``(batch,)``: the log-probability of a whole reply (summed over its tokens) under
    the policy or the frozen reference. The loss is ``-log sigmoid(beta * ((pc - rc) - (pr - rr)))``:
    ``beta * (p - r)`` is the reply's *implicit reward*, and the loss asks the chosen reply's to
    exceed the rejected one's. Equal to ``ln 2`` while the policy is the reference.
    """
    require_finite_number("beta", beta, low=0.0, low_open=True)
    for name, value in (("policy_chosen_logps", policy_chosen_logps), ("policy_rejected_logps", policy_rejected_logps),
                        ("ref_chosen_logps", ref_chosen_logps), ("ref_rejected_logps", ref_rejected_logps)):
        require_tensor(name, value, dim=1)
        if value.shape != policy_chosen_logps.shape:
            raise ValueError(f"{name} has shape {tuple(value.shape)}, policy_chosen_logps {tuple(policy_chosen_logps.shape)}: "
                             "one log-probability per pair in each")
    margin = (policy_chosen_logps - ref_chosen_logps) - (policy_rejected_logps - ref_rejected_logps)  # (batch,)
    return -F.logsigmoid(beta * margin).mean()


# --- sequences of prompts and replies -------------------------------------------------------------

def pack(prompts, replies, pad_id):
    """``(token_ids, reply_mask)``: each prompt followed by its reply, right-padded with ``pad_id`` (notebook 19).

    Right padding is harmless here: a causal model's position never sees the positions after it,
    and the mask leaves the padding out of every sum.
    """
    if len(prompts) != len(replies) or not prompts:
        raise ValueError(f"pack needs as many replies as prompts, at least one: got {len(prompts)} and {len(replies)}")
    width = max(len(p) + len(r) for p, r in zip(prompts, replies))
    token_ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    reply_mask = torch.zeros((len(prompts), width), dtype=torch.bool)
    for row, (prompt, reply) in enumerate(zip(prompts, replies)):
        token_ids[row, :len(prompt) + len(reply)] = torch.tensor(list(prompt) + list(reply), dtype=torch.long)
        reply_mask[row, len(prompt):len(prompt) + len(reply)] = True
    return token_ids, reply_mask


@torch.no_grad()
def sample_replies(model, prompts, n, max_new_tokens, stop_id, temperature=1.0, generator=None):
    """``n`` sampled replies to each prompt, prompt by prompt (a group is ``n`` neighbours) (notebook 19).

    Each reply is a list of token ids ending with ``stop_id`` if the model ended its turn within
    ``max_new_tokens``. Prompts of one length share a batch (``sampling.generate``), so there is no padding.
    """
    replies = [None] * (len(prompts) * n)
    by_length = {}
    for index, prompt in enumerate(prompts):
        by_length.setdefault(len(prompt), []).append(index)
    for indices in by_length.values():
        rows = torch.tensor([prompts[i] for i in indices for _ in range(n)], dtype=torch.long)  # (len(indices) * n, seq)
        out = generate(model, rows, max_new_tokens, temperature=temperature, eos_id=stop_id, generator=generator)
        new = out[:, rows.shape[1]:].tolist()
        for row, index in enumerate(i for i in indices for _ in range(n)):
            reply = new[row]
            if stop_id in reply:
                reply = reply[:reply.index(stop_id) + 1]
            replies[index * n + row % n] = reply
    return replies


# --- the training loops ----------------------------------------------------------------------------

def _knob(default, help):
    return field(default=default, metadata={"help": help})


@dataclass
class GRPOConfig:
    """GRPO's settings (notebook 19); the defaults are the CLI's CPU run."""

    steps: int = _knob(300, "optimisation steps, each on a fresh sample")
    prompts_per_step: int = _knob(32, "training prompts sampled at each step")
    group_size: int = _knob(8, "replies sampled per prompt (the group)")
    lr: float = _knob(1e-4, "AdamW learning rate")
    clip_eps: float = _knob(0.2, "the policy ratio's clipping band: [1 - clip_eps, 1 + clip_eps]")
    beta: float = _knob(0.02, "weight of the KL penalty to the starting model (0: none)")
    updates_per_sample: int = _knob(1, "gradient steps on each sample (the ratio moves away from 1 after the first)")
    temperature: float = _knob(1.0, "sampling temperature of the replies")
    max_new_tokens: int = _knob(8, "longest reply, in tokens")
    seed: int = _knob(0, "random seed")

    def __post_init__(self):
        for name in ("steps", "prompts_per_step", "group_size", "updates_per_sample", "max_new_tokens"):
            require_positive_int(name, getattr(self, name))
        if self.group_size < 2:
            raise ValueError("group_size must be at least 2: an advantage compares a reply with its group")
        require_finite_number("lr", self.lr, low=0.0, low_open=True)
        require_finite_number("clip_eps", self.clip_eps, low=0.0, high=1.0, low_open=True)
        require_finite_number("beta", self.beta, low=0.0)
        require_finite_number("temperature", self.temperature, low=0.0, low_open=True)
        require_positive_int("seed", self.seed, allow_zero=True)


def _frozen_copy(model):
    import copy

    reference = copy.deepcopy(model).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    return reference


def grpo(model, task, config=None, evaluate=None, eval_every=10, progress=False):
    """Train ``model`` with GRPO on ``task``'s training prompts; returns the history (notebook 19).

    ``task`` gives ``sample_prompts(rng, n) -> [(prompt_ids, answer)]``, ``reward(reply_ids,
    answer) -> float``, ``stop_id`` and ``pad_id`` (``course_lib.tasks.ArithmeticTask`` is one).
    Each step: sample ``group_size`` replies per prompt from the current model, reward them,
    compute group advantages, then take ``updates_per_sample`` AdamW steps on ``grpo_loss``
    (the first at ratio 1, the later ones clipped). ``evaluate(model) -> float`` (e.g. held-out
    accuracy) is called every ``eval_every`` steps and at the end. Ctrl-C stops after the current
    step and returns the history so far with ``interrupted=True``.
    """
    import time

    config = config or GRPOConfig()
    if not isinstance(config, GRPOConfig):
        raise TypeError(f"config must be a GRPOConfig, got {type(config).__name__}")
    rng, generator = random.Random(config.seed), torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    reference = _frozen_copy(model) if config.beta > 0 else None
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=0.0)
    history = {"step": [], "reward": [], "eval_step": [], "eval": [], "interrupted": False, "seconds": 0.0,
               "config": asdict(config)}
    bar = _progress(config.steps, "GRPO") if progress else None
    start = time.perf_counter()
    try:
        for step in range(1, config.steps + 1):
            if evaluate is not None and (step - 1) % eval_every == 0:
                history["eval_step"].append(step - 1)
                history["eval"].append(evaluate(model))
            problems = task.sample_prompts(rng, config.prompts_per_step)
            prompts = [p for p, _ in problems]
            model.eval()  # sampling: no dropout
            replies = sample_replies(model, prompts, config.group_size, config.max_new_tokens, task.stop_id,
                                     config.temperature, generator)
            answers = [a for _, a in problems for _ in range(config.group_size)]
            rewards = torch.tensor([task.reward(r, a) for r, a in zip(replies, answers)])
            advantages = group_advantages(rewards, config.group_size)  # (prompts * group_size,)
            token_ids, mask = pack([p for p in prompts for _ in range(config.group_size)], replies, task.pad_id)
            model.train()
            with torch.no_grad():
                old = reply_logprobs(model, token_ids, mask)
                ref = reply_logprobs(reference, token_ids, mask) if reference is not None else None
            if bool(advantages.abs().sum() > 0):  # a batch where every group agreed teaches nothing
                for _ in range(config.updates_per_sample):
                    loss = grpo_loss(reply_logprobs(model, token_ids, mask), old, advantages, mask[:, 1:],
                                     config.clip_eps, ref, config.beta)
                    optimizer.zero_grad(set_to_none=True)
                    loss.backward()
                    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                    optimizer.step()
            history["step"].append(step)
            history["reward"].append(float(rewards.mean()))
            if bar is not None:
                bar.update(1)
                bar.set_postfix(reward=f"{history['reward'][-1]:.2f}")
    except KeyboardInterrupt:
        history["interrupted"] = True
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    if evaluate is not None and not history["interrupted"]:
        history["eval_step"].append(len(history["step"]))
        history["eval"].append(evaluate(model))
    history["seconds"] = time.perf_counter() - start
    return history


@dataclass
class DPOConfig:
    """DPO's settings (notebook 19); the defaults are the CLI's CPU run."""

    pairs: int = _knob(2048, "preference pairs built from the model's own samples on training prompts")
    samples_per_prompt: int = _knob(8, "replies sampled per prompt to find a correct and a wrong one")
    epochs: int = _knob(1, "passes over the pairs")
    batch_size: int = _knob(32, "pairs per step")
    lr: float = _knob(5e-5, "AdamW learning rate")
    beta: float = _knob(0.5, "DPO's beta: how far the policy may move from the reference")
    temperature: float = _knob(1.0, "sampling temperature used to build the pairs")
    max_new_tokens: int = _knob(8, "longest sampled reply, in tokens")
    seed: int = _knob(0, "random seed")

    def __post_init__(self):
        for name in ("pairs", "samples_per_prompt", "epochs", "batch_size", "max_new_tokens"):
            require_positive_int(name, getattr(self, name))
        if self.samples_per_prompt < 2:
            raise ValueError("samples_per_prompt must be at least 2: a pair needs two different replies")
        for name in ("lr", "beta", "temperature"):
            require_finite_number(name, getattr(self, name), low=0.0, low_open=True)
        require_positive_int("seed", self.seed, allow_zero=True)


def preference_pairs(model, task, config, rng, generator):
    """``[(prompt, chosen, rejected)]`` from the model's own samples: chosen rewarded 1, rejected 0 (notebook 19).

    Prompts whose samples are all right or all wrong give no pair. Sampling stops once
    ``config.pairs`` pairs are found (or after ``max(50, pairs // 8)`` rounds of 64 prompts).
    """
    pairs = []
    for _ in range(max(50, config.pairs // 8)):
        problems = task.sample_prompts(rng, 64)
        prompts = [p for p, _ in problems]
        replies = sample_replies(model, prompts, config.samples_per_prompt, config.max_new_tokens, task.stop_id,
                                 config.temperature, generator)
        for index, (prompt, answer) in enumerate(problems):
            group = replies[index * config.samples_per_prompt:(index + 1) * config.samples_per_prompt]
            right = [r for r in group if task.reward(r, answer) == 1]
            wrong = [r for r in group if task.reward(r, answer) == 0]
            if right and wrong:
                pairs.append((prompt, right[0], wrong[0]))
            if len(pairs) == config.pairs:
                return pairs
    return pairs


def _pair_logps(model, pairs, pad_id):
    prompts = [p for p, _, _ in pairs] * 2
    replies = [c for _, c, _ in pairs] + [r for _, _, r in pairs]
    token_ids, mask = pack(prompts, replies, pad_id)
    logps = reply_logprobs(model, token_ids, mask).sum(dim=1)  # (2 * pairs,): chosen first, then rejected
    return logps[:len(pairs)], logps[len(pairs):]


def dpo(model, task, config=None, pairs=None, evaluate=None, progress=False):
    """Train ``model`` with DPO on preference pairs from its own samples; returns the history (notebook 19).

    ``pairs`` (from ``preference_pairs``) may be given; otherwise they are sampled first. The
    reference is a frozen copy of ``model`` as it was. The history holds the loss, the implicit
    reward margin ``beta * ((pc - rc) - (pr - rr))`` per step, and ``evaluate(model)`` before and after.
    """
    import time

    config = config or DPOConfig()
    if not isinstance(config, DPOConfig):
        raise TypeError(f"config must be a DPOConfig, got {type(config).__name__}")
    rng, generator = random.Random(config.seed), torch.Generator().manual_seed(config.seed)
    torch.manual_seed(config.seed)
    start = time.perf_counter()
    model.eval()
    if pairs is None:
        pairs = preference_pairs(model, task, config, rng, generator)
    if not pairs:
        raise ValueError("no preference pairs: the model's samples were all right or all wrong on every prompt")
    reference = _frozen_copy(model)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=config.lr, weight_decay=0.0)
    history = {"step": [], "loss": [], "margin": [], "pairs": len(pairs), "eval": [], "interrupted": False,
               "config": asdict(config)}
    if evaluate is not None:
        history["eval"].append(evaluate(model))
    steps = config.epochs * math.ceil(len(pairs) / config.batch_size)
    bar = _progress(steps, "DPO") if progress else None
    try:
        for _ in range(config.epochs):
            order = list(range(len(pairs)))
            rng.shuffle(order)
            for first in range(0, len(order), config.batch_size):
                batch = [pairs[i] for i in order[first:first + config.batch_size]]
                with torch.no_grad():
                    ref_chosen, ref_rejected = _pair_logps(reference, batch, task.pad_id)
                model.train()
                chosen, rejected = _pair_logps(model, batch, task.pad_id)
                loss = dpo_loss(chosen, rejected, ref_chosen, ref_rejected, config.beta)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                margin = config.beta * ((chosen - ref_chosen) - (rejected - ref_rejected)).detach().mean()
                history["step"].append(len(history["step"]) + 1)
                history["loss"].append(loss.item())
                history["margin"].append(float(margin))
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{float(loss):.3f}")
    except KeyboardInterrupt:
        history["interrupted"] = True
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    if evaluate is not None and not history["interrupted"]:
        history["eval"].append(evaluate(model))
    history["seconds"] = time.perf_counter() - start
    return history


def _progress(total, desc):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=True, mininterval=0.2)
