# %% [markdown]
# # 08 · Sampling: greedy, temperature, top-k, top-p
#
# **Goal.** Turn a trained model's next-token probabilities into text, and control how adventurous
# it is. Check that the sampler draws from exactly the distribution the formula says, play with a
# temperature slider, and see what the samples reveal about the training data.
#
# **You will build** the pieces of `course_lib.sampling.generate(model, token_ids, max_new_tokens,
# temperature, top_k, top_p, eos_id, generator)` and use `course_lib.widgets.temperature_explorer`.

# %%
import matplotlib.pyplot as plt
import torch

import course_lib
from course_lib import checks
from course_lib.data import load_sentences
from course_lib.gpt import GPT, GPTConfig
from course_lib.tokenizer import WordTokenizer, make_batch
from course_lib.training import train

course_lib.seed_everything(0)
torch.set_printoptions(precision=4, sci_mode=False)
device = course_lib.get_device()

# %% [markdown]
# ## 1. A trained model
#
# The same model and training as notebook 07, so this notebook stands on its own (about two seconds
# on a CPU), plus 200 steps at a tenth of the learning rate at the end: a constant learning rate
# keeps AdamW jittering around the optimum, and the probabilities printed below must settle on the
# corpus's own fractions (1/7, 1/3, ...) to four decimals. Otherwise their rounding, and the order of
# words the corpus makes equally likely, would differ from one CPU to the next.

# %% tags=["nbval-ignore-output"]
sentences = load_sentences("lang.txt")
tokenizer = WordTokenizer.from_sentences(sentences)
model = GPT(GPTConfig(vocab_size=len(tokenizer))).to(device)
data = make_batch(tokenizer, sentences)
history = train(model, data, steps=300, pad_id=tokenizer.pad_id, progress=False)
history = train(model, data, steps=200, lr=1e-3, pad_id=tokenizer.pad_id, progress=False)  # settle
model.eval()
print(f"final training loss {history['loss'][-1]:.4f}")


# %% [markdown]
# ## 2. The next-token distribution
#
# Feed `<sos> I` and look at the model's probabilities for the word after "I". In lang.txt, "I" is
# followed by "am" 3 times and by "love", "enjoy", "believe", "think" once each: a model that learned
# the corpus should say roughly 3/7 and 1/7.

# %%
def next_token_logits(prompt):
    ids = torch.tensor([tokenizer.encode(prompt, add_sos=True)], device=device)  # (1, T)
    with torch.no_grad():
        return model(ids)[0, -1].cpu()  # (vocab,): the scores for the token after the prompt


def ranked(probs, n):
    """The n most likely (word, probability) pairs, probabilities rounded to 2 decimals.

    Ties are broken alphabetically: words the corpus makes equally likely ("love", "enjoy", ... each
    1/7 after "I") come out of training a few last bits apart, and which bit is larger depends on the
    CPU's instruction set and the thread count. Sorting the rounded values keeps the table the same on
    every machine."""
    pairs = [(tokenizer.itos[i], round(p, 2)) for i, p in enumerate(probs.tolist())]
    return sorted(pairs, key=lambda pair: (-pair[1], pair[0]))[:n]


logits = next_token_logits("I")
probs = torch.softmax(logits, dim=-1)
for word, p in ranked(probs, 6):
    print(f"{word:>10s}  {p:.2f}")

# %%
assert tokenizer.itos[int(probs.argmax())] == "am" and abs(probs[tokenizer.stoi["am"]].item() - 3 / 7) < 2e-3
# Settled on the corpus's fractions, far from a rounding boundary of the table above (0.145, 0.135):
assert all(abs(probs[tokenizer.stoi[w]].item() - 1 / 7) < 2e-3 for w in ("love", "enjoy", "believe", "think"))

# %% [markdown]
# ## 3. Greedy decoding
#
# Always take the most likely token: $x_{t+1} = \arg\max_w p(w \mid x_{\le t})$. Deterministic: for
# a given model and prompt, always the same sentence. After "Python" every step has one clear winner:

# %%
from course_lib.sampling import generate, generate_text

python_ids = torch.tensor(tokenizer.encode("Python", add_sos=True))
greedy_ids = generate(model, python_ids, max_new_tokens=20, temperature=0, eos_id=tokenizer.eos_id)
print(greedy_ids.tolist())
print(tokenizer.decode(greedy_ids))

# %% [markdown]
# **Ties.** After "I am" the corpus continues with "learning", "fascinated" and "excited", once each:
# the model gives each about 1/3, and greedy picks whichever float came out of training a hair larger.
# That hair is rounding noise: another CPU (or another thread count) can pick another word. Greedy is
# deterministic *on one machine*; where the model is genuinely unsure, the argmax is a coin toss made
# by the floating-point unit. So this cell checks what is certain instead of printing the sentence:

# %%
prompt_ids = torch.tensor(tokenizer.encode("I", add_sos=True))
print(ranked(torch.softmax(next_token_logits("I am"), -1), 3))
greedy_i = tokenizer.decode(generate(model, prompt_ids, 20, temperature=0, eos_id=tokenizer.eos_id))
assert greedy_i.startswith("I am ") and greedy_i in sentences  # one of the three "I am ..." lines, copied

# %% [markdown]
# ## 4. Temperature
#
# Divide the logits by a temperature $T$ before softmax:
#
# $$p_i(T) = \frac{\exp(z_i / T)}{\sum_j \exp(z_j / T)}$$
#
# $T < 1$ sharpens the distribution (towards greedy as $T \to 0$), $T > 1$ flattens it (towards
# uniform as $T \to \infty$). $T = 1$ is the model's own distribution.

# %%
words = [word for word, _ in ranked(probs, 6)]
top_ids = torch.tensor([tokenizer.stoi[w] for w in words])
fig, axes = plt.subplots(1, 4, figsize=(15, 3), sharey=True)
for ax, T in zip(axes, [0.25, 0.5, 1.0, 2.0]):
    p_T = torch.softmax(logits / T, dim=-1)
    ax.bar(words, p_T[top_ids].numpy())
    ax.set_title(f"T = {T}   (p(am) = {p_T[tokenizer.stoi['am']].item():.2f})")
    ax.tick_params(axis="x", rotation=45)
axes[0].set_ylabel("probability of the word after 'I'")
fig.tight_layout()
plt.show()

# %% [markdown]
# ### Check: the sampler draws from exactly $\mathrm{softmax}(z/T)$
#
# Draw the word after "I" 20,000 times at each temperature and compare the frequencies with the
# formula. The total variation distance $\frac12\sum_i |\hat p_i - p_i|$ should be of the order of
# sampling noise ($\approx 0.01$ for 20,000 draws).

# %% tags=["nbval-ignore-output"]
# The distances are sampling noise: their last digits move with the float rounding of the CPU, so
# the assert below checks them instead of the stored output.
batch_prompt = prompt_ids.unsqueeze(0).expand(20_000, -1)  # (20000, 2): the same prompt 20,000 times
for T in (0.5, 1.0, 2.0):
    drawn = generate(model, batch_prompt, 1, temperature=T, generator=torch.Generator().manual_seed(0))[:, -1].cpu()
    empirical = torch.bincount(drawn, minlength=len(tokenizer)).double() / len(drawn)
    expected = torch.softmax(logits.double() / T, dim=-1)
    tv = 0.5 * (empirical - expected).abs().sum().item()
    print(f"T = {T}: total variation distance {tv:.4f}")
    assert tv < 0.02

# %% [markdown]
# ## 5. Top-k and top-p (nucleus) sampling
#
# A high temperature also lifts the long tail of words that make no sense. Two filters cut the tail
# *before* sampling:
#
# - **top-k**: keep the $k$ most likely tokens;
# - **top-p**: keep the smallest set of most likely tokens whose probabilities add up to at least $p$.
#   Its size adapts: one token when the model is sure, many when it is not.
#
# After `<sos>` (the first word of a sentence) the model is unsure, so the filters have something to
# cut:

# %%
from course_lib.sampling import filter_logits

first = next_token_logits("")  # after <sos> alone
first_probs = torch.softmax(first, -1)
print(f"{'word':>12s} {'p':>5s} {'cumulative':>10s}  top-k=3  top-p=0.55")
kept_k = torch.isfinite(filter_logits(first, top_k=3))
kept_p = torch.isfinite(filter_logits(first, top_p=0.55))
cumulative = 0.0
for word, p in ranked(first_probs, 10):  # ties ("Python", "Neural", ... each 1/20) in alphabetical order
    i = tokenizer.stoi[word]
    cumulative += p
    print(f"{word:>12s} {p:5.2f} {cumulative:10.2f}  {'keep' if kept_k[i] else '-':>7s}  {'keep' if kept_p[i] else '-':>9s}")

# %% [markdown]
# Top-p = 0.55 keeps tokens until the cumulative probability first reaches 0.55 ("Data" takes it
# from 0.50 to 0.60), and not one more.
# (`course_lib`'s tests check this against a brute-force search on random distributions.)

# %% [markdown]
# ## 6. Play with it
#
# Move the sliders: the text below is regenerated when you release one. Try temperature 0 (greedy),
# then 1, then 3; then keep temperature 3 and lower top-p to 0.5.

# %% tags=["nbval-ignore-output"]
from course_lib.widgets import temperature_explorer

explorer = temperature_explorer(model, tokenizer, "I", max_new_tokens=20, samples=4)
explorer

# %% [markdown]
# The explorer is an ordinary object too; setting a slider from code regenerates the text:

# %%
explorer.temperature.value = 0.0
greedy_view = explorer.text.value
explorer.temperature.value = 3.0
assert explorer.text.value != greedy_view
explorer.temperature.value = 1.0  # back to the default for you to play with above
greedy_sentence = greedy_view.split("<li>")[1].split("</li>")[0]
assert greedy_sentence in sentences  # one of the "I am ..." lines: which one is the tie of section 3
print("greedy view shows a line of lang.txt:", greedy_sentence.startswith("I am "))

# %% [markdown]
# ## 7. What the samples say about the data: memorisation
#
# Sample 200 sentences at temperature 1, and 200 at temperature 2, and count how many are copies of
# a line of lang.txt.

# %% tags=["nbval-ignore-output"]
generator = torch.Generator().manual_seed(0)
copies = {}
for T in (1.0, 2.0):
    samples = [generate_text(model, tokenizer, "", max_new_tokens=20, temperature=T, generator=generator) for _ in range(200)]
    copies[T] = sum(s in sentences for s in samples)
    print(f"T = {T}: {copies[T]} of 200 samples are verbatim lines of lang.txt")
    for s in sorted(set(samples) - set(sentences) - {""})[:3]:
        print("   new:", s)

# %%
assert copies[1.0] >= 190 and copies[2.0] < copies[1.0]

# %% [markdown]
# At temperature 1 the model samples *sentences of the corpus*, with about their corpus frequency:
# it has learned the training set by heart, which is exactly what the floor of notebook 07 rewards.
# Only by flattening its distribution (temperature 2) do we get new sentences, and they are
# splices and word salad, not new ideas. Twenty sentences cannot teach grammar; they can only be
# memorised. To *generalise*, a model needs far more text than its parameters can store, and a
# held-out set to measure it on (notebook 10).
#
# **Unknown words.** The tokenizer maps words it has never seen to `<unk>` (which the model never saw
# in training either), so a prompt with new words is handled, but badly. `tokenizer.unknown_words`
# names them, and `tokenizer.encode(text, strict=True)` refuses them:

# %%
prompt = "Python rocks"
print("unknown:", tokenizer.unknown_words(prompt), "-> ids", tokenizer.encode(prompt, add_sos=True))
try:
    tokenizer.encode(prompt, strict=True)
except ValueError as error:
    print("ValueError:", str(error).split(" (")[0])

# %% [markdown]
# Bad sampling settings are refused with a message, not a NaN:

# %%
for bad in (dict(temperature=-1.0), dict(top_k=0), dict(top_p=1.5)):
    try:
        generate(model, prompt_ids, 5, **bad)
    except ValueError as error:
        print("ValueError:", error)


# %% [markdown]
# ## Exercises
#
# Each test cell checks the exercise just above it, and nothing else in the notebook uses the
# exercises: skip one and the rest still runs. Silence means pass; otherwise the message says what
# is wrong.
#
# **Exercise 1 (implement, 2 points).** Write `temperature_probs(logits, T)`: the probabilities
# $\mathrm{softmax}(z/T)$ over the last axis for $T > 0$, and a one-hot vector on the argmax for
# $T = 0$ (greedy).

# %% solution="ex08_temperature"
def temperature_probs(logits, T):
    ### BEGIN SOLUTION
    if T == 0:
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    return torch.softmax(logits / T, dim=-1)
    ### END SOLUTION


# %% tests="ex08_temperature_tests" points=2
_z = torch.tensor([1.0, 2.0, 3.0])
_p = temperature_probs(_z, 0.5)
checks.expect_shape(_p, (3,), "temperature_probs(z, 0.5)")
checks.expect_close(_p, torch.softmax(_z / 0.5, -1), "temperature_probs(z, 0.5)", mistakes={
    "divide the logits by T BEFORE the softmax: softmax(z / T), not softmax(z) / T": torch.softmax(_z, -1) / 0.5,
    "the temperature divides the logits, before the softmax: softmax(z / T)": torch.softmax(torch.softmax(_z, -1) / 0.5, -1),
    "divide by T (z / T): multiplying flattens where it should sharpen": torch.softmax(_z * 0.5, -1),
})
assert torch.allclose(_p.sum(), torch.tensor(1.0)), "probabilities must sum to 1"
checks.expect_close(temperature_probs(_z, 0).to(torch.float32), torch.tensor([0.0, 0.0, 1.0]),
                    "temperature_probs(z, 0): greedy, all the probability on the argmax (a one-hot vector)")
_zz = torch.randn(4, 10, generator=torch.Generator().manual_seed(0))
checks.expect_close(temperature_probs(_zz, 2.0), torch.softmax(_zz / 2, -1), "temperature_probs on a (4, 10) batch: softmax over the last axis")
### BEGIN HIDDEN TESTS
checks.expect_close(temperature_probs(_zz, 0).to(torch.float32), torch.nn.functional.one_hot(_zz.argmax(-1), 10).float(),
                    "temperature_probs(batch, 0)")
checks.expect_close(temperature_probs(_zz, 1.0), torch.softmax(_zz, -1), "temperature_probs(z, 1)")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (predict, then run; 1 point).** The probabilities are `[0.4, 0.3, 0.2, 0.1]`. How many
# tokens does top-p keep for `p = 0.5`? And for `p = 0.7`? Set `kept_at_05` and `kept_at_07`, then
# check with `filter_logits(torch.tensor([0.4, 0.3, 0.2, 0.1]).log(), top_p=...)`.

# %% solution="ex08_predict_top_p"
kept_at_05 = None  # your answer
kept_at_07 = None  # your answer
### BEGIN SOLUTION
kept_at_05 = 2
kept_at_07 = 2
### END SOLUTION

# %% tests="ex08_predict_top_p_tests" points=1
checks.answered(kept_at_05=kept_at_05, kept_at_07=kept_at_07)
assert isinstance(kept_at_05, int) and isinstance(kept_at_07, int), "answers must be ints"
### BEGIN HIDDEN TESTS
_lp = torch.tensor([0.4, 0.3, 0.2, 0.1], dtype=torch.float64).log()
assert kept_at_05 == int(torch.isfinite(filter_logits(_lp, top_p=0.5)).sum()) == 2
assert kept_at_07 == int(torch.isfinite(filter_logits(_lp, top_p=0.7)).sum()) == 2
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 3 (spot the bug, 2 points).** This top-k filter runs and keeps the right tokens' logits.
# But sampling from `softmax` of its output still picks tokens outside the top k. Why? Write
# `fixed_top_k(logits, k)`.

# %%
def buggy_top_k(logits, k):
    kth = torch.topk(logits, k).values[..., -1:]
    return torch.where(logits < kth, torch.zeros_like(logits), logits)


# %% solution="ex08_spot_the_bug"
def fixed_top_k(logits, k):
    ### BEGIN SOLUTION
    # A logit of 0 is not "impossible": exp(0) = 1 still gets probability. Use -inf.
    kth = torch.topk(logits, k).values[..., -1:]
    return logits.masked_fill(logits < kth, float("-inf"))
    ### END SOLUTION


# %% tests="ex08_spot_the_bug_tests" points=2
_z = torch.tensor([2.0, -1.0, 0.5, 3.0])
_f = fixed_top_k(_z, 2)
checks.expect_shape(_f, (4,), "fixed_top_k(z, 2)")
checks.expect_equal((torch.softmax(_f, -1) > 1e-9).tolist(), [True, False, False, True],
                    "which tokens softmax(fixed_top_k(z, 2)) can still pick: a logit of 0 still has probability, "
                    "exp(0) = 1; an impossible token needs a logit of -inf")
checks.expect_close(torch.softmax(_f, -1), torch.softmax(filter_logits(_z, top_k=2), -1), "softmax(fixed_top_k(z, 2))")
### BEGIN HIDDEN TESTS
_zz = torch.randn(5, 20)
_ff = fixed_top_k(_zz, 4)
checks.expect_close(torch.softmax(_ff, -1), torch.softmax(filter_logits(_zz, top_k=4), -1), "softmax(fixed_top_k(z, 4))")
_keep = torch.isfinite(filter_logits(_zz, top_k=4))
checks.expect_close(_ff[_keep], _zz[_keep], "the kept logits, unchanged", atol=0)
### END HIDDEN TESTS

# %% [markdown]
# ## Summary
#
# - Greedy takes the argmax; temperature rescales the logits, $\mathrm{softmax}(z/T)$; top-k and top-p
#   cut the tail before sampling. The sampler's frequencies match the formula (checked).
# - A `torch.Generator` makes sampling reproducible; bad settings are refused with clear errors.
# - A model trained on twenty sentences samples them back: memorisation, not language.
#
# **Next:** notebook 09 (tokenization) goes beyond words to sub-word tokens, and notebook 10 measures
# what a model has *learned*, on text it has not seen.
