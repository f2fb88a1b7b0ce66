# %% [markdown]
# # 20 · LoRA: teaching a real model something new on a laptop
#
# **Goal.** Fine-tune SmolLM2-135M-Instruct — notebook 18's real chat model, running in the
# course's own code — so that it knows who it is: the course's assistant, *Ada*. Full fine-tuning
# would update all 135 million weights and keep two AdamW moments for each; **LoRA** (Hu et al.
# 2021) freezes them all and trains, beside some of the linear layers, two thin matrices whose
# product is a low-rank *change* of the weight. A fraction of a percent of the parameters, the
# same model afterwards.
#
# **You will build** the LoRA layer's forward pass, the merge of an adapter into its weight, and
# the count of what LoRA trains; the library's versions are in `course_lib.lora` (`add_lora`,
# `merge_lora`). The adapter is checked against Hugging Face's `peft` on the same weights, when
# it is installed (the test extra: `pip install -e ".[test]"`).
#
# On a CPU this notebook runs in about a minute (the model file, 98 MB, is downloaded once).

# %%
import math
import time

import torch

import course_lib
from course_lib import checks
from course_lib.chat import chat, dialogue_batch
from course_lib.data import data_path
from course_lib.gguf import fetch_smollm2, load_gguf
from course_lib.lora import LoRALinear, add_lora, merge_lora, trainable_parameters

course_lib.seed_everything(0)
device = course_lib.get_device()
grading = course_lib.grading_run()  # under nbgrader: the training after the exercises runs two steps only
gpu = device.type == "cuda"
print("device:", device)


# %% [markdown]
# ## 1. The idea
#
# Fine-tuning changes a weight matrix $W$ ($d_{out} \times d_{in}$) into $W + \Delta W$. Hu et al.
# observed that the change $\Delta W$ that fine-tuning needs has a low *intrinsic rank*, so they
# write it as a product of two thin matrices,
#
# $$\Delta W = \frac{\alpha}{r}\, B A, \qquad A: r \times d_{in}, \quad B: d_{out} \times r, \quad r \ll d_{in}, d_{out},$$
#
# and the layer computes $y = x W^\top + b + \frac{\alpha}{r}\, (x A^\top) B^\top$. Only $A$ and $B$
# train. $B$ starts at **zero**, so at the start the model *is* the original model; $A$ starts
# random (else the gradient of $B$, which is $A x$ times the output's gradient, would be zero too).
# $\alpha / r$ fixes the update's scale, so that changing $r$ does not change the learning rate
# that works.
#
# **Exercise 1 (implement, 2 points).** Write `lora_forward(x, weight, bias, A, B, alpha)`: the
# output of a linear layer with weight `weight` (`d_out × d_in`) and bias `bias` (`d_out`), plus
# its LoRA update with `A` (`r × d_in`) and `B` (`d_out × r`) scaled by `alpha / r`. `x` is
# `(..., d_in)`; `r` is `A.shape[0]`. Do not build the full `d_out × d_in` product `B @ A`: multiply
# `x` by `A` first (that is LoRA's saving at training time).

# %% solution="ex20_lora_forward"
def lora_forward(x, weight, bias, A, B, alpha):
    ### BEGIN SOLUTION
    rank = A.shape[0]
    return x @ weight.T + bias + (alpha / rank) * (x @ A.T) @ B.T
    ### END SOLUTION


# %% tests="ex20_lora_forward_tests" points=2
_gen = torch.Generator().manual_seed(0)
_layer = torch.nn.Linear(6, 4).double()
_lora = LoRALinear(_layer, rank=2, alpha=3.0)
with torch.no_grad():
    _lora.lora_A.copy_(torch.randn(2, 6, generator=_gen))
    _lora.lora_B.copy_(torch.randn(4, 2, generator=_gen))
_x = torch.randn(3, 5, 6, generator=_gen, dtype=torch.float64)
_W, _b, _A, _B = _layer.weight.detach(), _layer.bias.detach(), _lora.lora_A.detach(), _lora.lora_B.detach()
checks.expect_close(lora_forward(_x, _W, _b, _A, _B, 3.0), _lora(_x).detach(), "lora_forward(x, W, b, A, B, alpha=3)",
                    atol=1e-9, mistakes={
    "scale the update by alpha / r (r = A.shape[0])": _x @ _W.T + _b + (_x @ _A.T) @ _B.T,
    "the scale is alpha / r, not r / alpha": _x @ _W.T + _b + (2 / 3.0) * (_x @ _A.T) @ _B.T,
    "scale by alpha / r, not by alpha alone": _x @ _W.T + _b + 3.0 * (_x @ _A.T) @ _B.T,
    "keep the frozen layer's output x W^T + b: LoRA ADDS to it": 1.5 * (_x @ _A.T) @ _B.T,
    "the bias belongs to the frozen layer": _x @ _W.T + 1.5 * (_x @ _A.T) @ _B.T,
})
### BEGIN HIDDEN TESTS
_g = checks.grading_generator("ex20_lora_forward")
for _ in range(3):
    _din, _dout, _r = (int(torch.randint(2, 9, (1,), generator=_g)) for _ in range(3))
    _r = min(_r, _din, _dout)
    _W, _b = torch.randn(_dout, _din, generator=_g, dtype=torch.float64), torch.randn(_dout, generator=_g, dtype=torch.float64)
    _A, _B = torch.randn(_r, _din, generator=_g, dtype=torch.float64), torch.randn(_dout, _r, generator=_g, dtype=torch.float64)
    _alpha = float(torch.rand(1, generator=_g)) * 16 + 0.5
    _x = torch.randn(2, _din, generator=_g, dtype=torch.float64)
    checks.expect_close(lora_forward(_x, _W, _b, _A, _B, _alpha), _x @ _W.T + _b + (_alpha / _r) * _x @ (_B @ _A).T,
                        f"lora_forward with d_in={_din}, d_out={_dout}, r={_r}, alpha={_alpha:.2f}", atol=1e-8)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (implement, 2 points).** After training, the adapter can be **merged**: $W' = W +
# \frac{\alpha}{r} B A$ computes the same function as the frozen layer plus its adapter, at the
# cost of a plain linear layer. Write `merged_weight(weight, A, B, alpha)`: the merged `d_out × d_in`
# weight (a new tensor; `r` is `A.shape[0]`).

# %% solution="ex20_merge"
def merged_weight(weight, A, B, alpha):
    ### BEGIN SOLUTION
    return weight + (alpha / A.shape[0]) * B @ A
    ### END SOLUTION


# %% tests="ex20_merge_tests" points=2
_W, _A, _B = _layer.weight.detach(), _lora.lora_A.detach(), _lora.lora_B.detach()
_merged = merged_weight(_W, _A, _B, 3.0)
checks.expect_close(_merged, _W + 1.5 * _B @ _A, "merged_weight(W, A, B, alpha=3)", atol=1e-9, mistakes={
    "scale B @ A by alpha / r": _W + _B @ _A,
    "that is the weight unchanged: add (alpha / r) * B @ A to it": _W,
    "the merged weight is W PLUS the update": 1.5 * _B @ _A,
})
_x2 = torch.randn(5, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
checks.expect_close(_x2 @ _merged.T + _layer.bias.detach(), _lora(_x2).detach(),
                    "the merged layer's output (should equal the adapted layer's)", atol=1e-9)
### BEGIN HIDDEN TESTS
_g = checks.grading_generator("ex20_merge")
for _ in range(3):
    _din, _dout, _r = (int(torch.randint(2, 9, (1,), generator=_g)) for _ in range(3))
    _W = torch.randn(_dout, _din, generator=_g, dtype=torch.float64)
    _A, _B = torch.randn(_r, _din, generator=_g, dtype=torch.float64), torch.randn(_dout, _r, generator=_g, dtype=torch.float64)
    _alpha = float(torch.rand(1, generator=_g)) * 16 + 0.5
    _W0 = _W.clone()
    checks.expect_close(merged_weight(_W, _A, _B, _alpha), _W0 + (_alpha / _r) * _B @ _A,
                        f"merged_weight with d_in={_din}, d_out={_dout}, r={_r}", atol=1e-8)
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (implement, 1 point).** How much does LoRA train? Write `lora_parameter_count(shapes, rank)`:
# the number of trainable numbers when every linear layer in `shapes` — a list of `(d_out, d_in)`
# pairs — gets an adapter of rank `rank` (the frozen weights and biases do not count).

# %% solution="ex20_lora_count"
def lora_parameter_count(shapes, rank):
    ### BEGIN SOLUTION
    return sum(rank * (d_in + d_out) for d_out, d_in in shapes)
    ### END SOLUTION


# %% tests="ex20_lora_count_tests" points=1
_shapes = [(576, 576), (192, 576), (1536, 576)]
checks.expect_equal(lora_parameter_count(_shapes, 8), 8 * (1152 + 768 + 2112), "lora_parameter_count(3 layers, rank 8)")
checks.expect_equal(lora_parameter_count([(10, 20)], 1), 30, "lora_parameter_count([(10, 20)], rank=1): A is 1 x 20, B is 10 x 1")
### BEGIN HIDDEN TESTS
_g = checks.grading_generator("ex20_lora_count")
_sh = [tuple(int(v) for v in torch.randint(1, 1000, (2,), generator=_g)) for _ in range(4)]
_rk = int(torch.randint(1, 64, (1,), generator=_g))
checks.expect_equal(lora_parameter_count(_sh, _rk), sum(_rk * (a + b) for a, b in _sh), f"lora_parameter_count({_sh}, {_rk})")
### END HIDDEN TESTS

# %% [markdown]
# The library's `add_lora(model, rank, alpha, targets)` wraps the chosen linear layers of a model in
# `LoRALinear` (your exercise 1 as a module) and freezes everything else; `merge_lora(model)` puts
# back plain layers with merged weights (exercise 2). `tests/test_lora.py` checks that the adapted
# model equals `peft`'s LoRA on the same weights, and here: merged or not, the same logits.

# %%
try:
    import peft  # Hugging Face's LoRA (the test extra)

    print(f"peft {peft.__version__} is installed: tests/test_lora.py compares the two")
except ImportError:
    print("peft is not installed (pip install -e \".[test]\" adds it for the comparison in tests/test_lora.py)")

# %% [markdown]
# ## 2. The real model, before
#
# SmolLM2 introduces itself as SmolLM, trained by Hugging Face: its default system prompt says so
# (notebook 18). We teach it a new identity with eight questions and one answer — and check on
# three questions it never saw.

# %%
model, tokenizer = load_gguf(fetch_smollm2(), device=device)
ANSWER = "My name is Ada. I am the assistant of the GPT-from-scratch course."
train_questions = ["What is your name?", "Who are you?", "What should I call you?", "Tell me your name.",
                   "What's your name?", "Please introduce yourself.", "Do you have a name?", "Whom am I speaking with?"]
new_questions = ["May I know your name?", "Who am I talking to?", "What do people call you?"]
reply_tokens = 4 if grading else 20  # under nbgrader: short replies, one question (nothing here is graded)
if grading:
    new_questions = new_questions[:1]
for question in new_questions:
    print(f"{question:26} -> {chat(model, tokenizer, [], question, max_new_tokens=reply_tokens, temperature=0)!r}")

# %% [markdown]
# Forgetting is the risk of teaching: we measure the model's perplexity on ordinary text it was
# not taught — a passage of Shakespeare — before and after.

# %%
_passage = data_path("shakespeare.txt").read_text(encoding="utf-8")[5000:6500]
text_ids = torch.tensor([tokenizer.encode(_passage)[:256]], device=device)


@torch.no_grad()
def text_perplexity(model):
    _, loss = model(text_ids[:, :-1], text_ids[:, 1:])
    return math.exp(float(loss))


before_perplexity = text_perplexity(model)
print(f"perplexity of {text_ids.shape[1]} tokens of Shakespeare: {before_perplexity:.2f}")

# %% [markdown]
# ## 3. LoRA on every linear layer
#
# Adapters go on every linear layer of the 30 blocks (the attention's four projections and SwiGLU's
# three), rank 4, $\alpha = 8$: many small changes rather than a few large ones, which disturbs the
# rest of what the model knows less. (The LoRA paper's own choice was the query and value
# projections alone; on this model, at this learning rate, that bent unrelated answers too.)

# %%
add_lora(model, rank=4, alpha=8)
trainable, total = trainable_parameters(model)
print(f"trainable: {trainable:,} of {total:,} parameters ({trainable / total:.2%})")
_shapes = [(m.base.out_features, m.base.in_features) for m in model.modules() if isinstance(m, LoRALinear)]
print(f"{len(_shapes)} adapted layers; exercise 3 agrees:", lora_parameter_count(_shapes, 4) == trainable)
# What training keeps in memory besides the weights: a gradient and AdamW's two moments per trained number (float32).
print(f"training state: LoRA {3 * 4 * trainable / 2**20:.1f} MiB, full fine-tuning {3 * 4 * (total - trainable) / 2**20:.0f} MiB")

# %% [markdown]
# The training set: the eight identity conversations, plus four ordinary questions answered with
# the model's **own** greedy replies, taken before training ("rehearsal": they ask the model to stay
# what it was everywhere else). All in SmolLM2's chat template (ChatML, with its default system
# prompt), with notebook 14's assistant-only targets; AdamW at learning rate 1e-3. The adapters are
# still zero while the rehearsal replies are generated, so they are the original model's.

# %% tags=["nbval-ignore-output"]
conversations = [[{"role": "user", "content": q}, {"role": "assistant", "content": ANSWER}] for q in train_questions]
rehearsal = ["What is the capital of Italy?", "What is 2 + 2?", "Name a primary color.",
             "What is the largest planet in the solar system?"][:1 if grading else None]
conversations += [[{"role": "user", "content": q},
                   {"role": "assistant", "content": chat(model, tokenizer, [], q, max_new_tokens=reply_tokens, temperature=0)}]
                  for q in rehearsal]
inputs, targets = (t.to(device) for t in dialogue_batch(tokenizer, conversations, model.config.context_length))
print(f"{inputs.shape[0]} conversations of up to {inputs.shape[1]} tokens")
optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
steps = 2 if grading else 10
model.train()
started = time.perf_counter()
losses = []
for _ in range(steps):
    _, loss = model(inputs, targets)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    losses.append(loss.item())
model.eval()
seconds = time.perf_counter() - started
print("loss per step:", [round(x, 3) for x in losses])

print(f"{steps} steps in {seconds:.1f} s on {device}")

# %% [markdown]
# ## 4. After

# %% tags=["nbval-ignore-output"]
answers = {question: chat(model, tokenizer, [], question, max_new_tokens=reply_tokens, temperature=0)
           for question in new_questions}
for question, answer in answers.items():
    print(f"{question:26} -> {answer!r}")
france = chat(model, tokenizer, [], "What is the capital of France?", max_new_tokens=reply_tokens, temperature=0)
print(f"{'What is the capital of France?':26} -> {france!r}")
after_perplexity = text_perplexity(model)
print(f"Shakespeare perplexity: {before_perplexity:.2f} -> {after_perplexity:.2f}")

# %%
if not grading:
    assert "Paris" in france, "the rehearsal should keep unrelated knowledge"
    assert sum("Ada" in answer for answer in answers.values()) >= 2, "the new name should come back to unseen questions"
    assert abs(after_perplexity / before_perplexity - 1) < 0.15, "ordinary text's perplexity should move little"
    print("checked: the name generalises to unseen questions; Shakespeare's perplexity moved by less than 15%")

# %% [markdown]
# Merged, the adapters disappear into the weights and the model computes the same logits:

# %%
with torch.no_grad():
    adapted_logits = model(text_ids)
    merge_lora(model)
    merged_logits = model(text_ids)
print("LoRA layers left:", sum(isinstance(m, LoRALinear) for m in model.modules()))
print("merged and adapted logits agree within 1e-3:", torch.allclose(merged_logits, adapted_logits, atol=1e-3))

# %% [markdown]
# What this shows (the stored run above, 2-core CPU):
#
# - **A new fact, learned from eight examples** in ten steps, and answered to questions it was
#   never trained on — while the capital of France (never rehearsed) is still Paris, and ordinary
#   text's perplexity rose a little (76.9 → 83.9 on the 2-core AMD EPYC when this was written: the
#   price of ten steps at a high learning rate, measured rather than assumed). Without the rehearsal questions, or with adapters on the query
#   and value projections only at twice the learning rate, the name was learned just as well but
#   "What is the capital of France?" came back as "The capital of the United States is New York"
#   (tried when this notebook was written): forgetting is the thing to measure.
# - **0.9% of the parameters trained**, and training state (gradients and AdamW's moments) in
#   megabytes instead of the 1.5 GiB full fine-tuning would need for this small model — for a
#   7-billion-parameter model that is the difference between one consumer GPU and several.
# - **Merging costs nothing at inference**: the result is the model, with different weights.
#
# A longer run, DPO or GRPO on the real model with LoRA adapters (`course_lib.align` works on any
# model whose trainable parameters are the adapters), is a GPU job; on a CPU the notebook keeps to
# what CI can afford.
#
# ## Summary
#
# - LoRA freezes a weight $W$ and trains $\Delta W = \frac{\alpha}{r} B A$ beside it: $B$ starts at
#   zero, so training starts from the model itself.
# - Multiply $x$ by $A$ first: the full $d_{out} \times d_{in}$ update is never built while training.
# - Trainable numbers: $r (d_{in} + d_{out})$ per layer — under 1% of SmolLM2 at rank 4 — and the
#   optimizer's state shrinks with them.
# - Merging $W + \frac{\alpha}{r} B A$ gives the same model, at no cost at inference.
# - Teaching one thing can bend others: measure what should not change (rehearsal helps).
#
# `docs/alignment.md` gathers this notebook's figures. **Next:** notebook 21 serves many users at once,
# and notebook 22 runs the course's whole pipeline end to end, with a report card.
