# %% [markdown]
# # 21 · Serving many users: batched generation and continuous batching
#
# **Goal.** Notebook 16's server shares one model between requests by taking turns: one forward
# pass per token *per request*. That is correct, and slow in a way that is easy to miss: at batch
# size one, a decoding step reads **every weight** of the model from memory to produce a single
# token, so the processor mostly waits on memory. Real servers (vLLM, Hugging Face TGI, llama.cpp's
# server with parallel slots) run **one forward pass for all active conversations** at each step,
# and let requests join and leave that batch between steps: **continuous batching**.
#
# **You will build** the two pieces that make a batch of different-length prompts exact — the
# padding mask and each row's positions — and the scheduler's join/leave step. The library's
# versions are `course_lib.batching` (the batch and the scheduler),
# `course_lib.sampling.generate_batch`, and the server's `batching="continuous"` (now its default).
# Each is checked against generating every prompt alone.
#
# On a CPU this notebook runs in about ten seconds, on the stored arithmetic model of notebook 19
# (0.8 M parameters) and a random model of 10 M parameters for the timings. On a GPU it picks the
# same models (the point here is the shape of the curves, not the scale); GPU figures: not measured.

# %%
import threading
import time

import httpx
import matplotlib.pyplot as plt
import torch

import course_lib
from course_lib import checks
from course_lib.batching import Request, Scheduler, left_pad
from course_lib.data import data_path
from course_lib.gpt import GPT, GPTConfig
from course_lib.kv_cache import KVCache
from course_lib.sampling import generate, generate_batch
from course_lib.tasks import ArithmeticTask, held_out_problems
from course_lib.training import load_checkpoint

course_lib.seed_everything(0)
device = course_lib.get_device()
print("device:", device)


# %% [markdown]
# ## 1. Why batch: one step's cost against the batch size
#
# A decoding step multiplies a `(batch, d_model)` activation by every weight matrix. Its cost has
# two parts: **reading the weights** (the same bytes whatever the batch) and **arithmetic**
# (proportional to the batch). At batch 1 the first dominates: the model's bytes divided by the
# memory bandwidth is a floor no kernel beats. As the batch grows, the same bytes serve more tokens,
# until arithmetic catches up — the **roofline**: tokens/s rises about linearly with the batch,
# then flattens at the matmul peak.
#
# We measure the three numbers on this machine: the memory bandwidth (copying a large tensor), the
# matmul peak (a large square product), and one decoding step of a 10 M-parameter model with a
# KV cache of 64 positions, for batch sizes 1 to 64.

# %% tags=["nbval-ignore-output"]
def best_of(fn, repeats=5):
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


big, copy = torch.ones(128 * 2**20 // 4), torch.empty(128 * 2**20 // 4)  # 128 MiB each: larger than the caches
bandwidth = 2 * big.numel() * 4 / best_of(lambda: copy.copy_(big))  # bytes read + written per second
n = 512
a, b = torch.randn(n, n), torch.randn(n, n)
peak = 2 * n**3 / best_of(lambda: a @ b)  # FLOP/s
print(f"memory bandwidth ≈ {bandwidth / 1e9:.1f} GB/s, float32 matmul ≈ {peak / 1e9:.1f} GFLOP/s")

timing_model = GPT(GPTConfig(vocab_size=2048, context_length=128, d_model=384, n_heads=6, n_layers=6, d_ff=1536)).eval()
weight_bytes = sum(p.numel() * p.element_size() for p in timing_model.parameters())
print(f"timing model: {timing_model.num_parameters():,} parameters, {weight_bytes / 2**20:.0f} MiB of weights")


def step_time(batch_size, past=64):
    ids = torch.randint(0, 2048, (batch_size, past))
    with torch.inference_mode():
        cache = KVCache(len(timing_model.blocks))
        timing_model(ids, cache=cache)  # fill the cache once
        keys, values = list(cache.keys), list(cache.values)

        def one_step():
            cache.keys, cache.values = list(keys), list(values)  # the same 64 cached positions every time
            timing_model(ids[:, -1:], cache=cache)
        return best_of(one_step, repeats=3)


sizes = [1, 2, 4, 8, 16, 32, 64]
per_step = {size: step_time(size) for size in sizes}
flops_per_token = 2 * timing_model.num_parameters()
print(f"{'batch':>5} {'step ms':>8} {'tokens/s':>9} {'GFLOP/s':>8}")
for size in sizes:
    print(f"{size:5} {per_step[size] * 1e3:8.2f} {size / per_step[size]:9.0f} {size * flops_per_token / per_step[size] / 1e9:8.1f}")
floor = weight_bytes / bandwidth
print(f"reading the weights once takes ≥ {floor * 1e3:.2f} ms: at batch 1 at most {1 / floor:.0f} tokens/s")
speedup = (32 / per_step[32]) / (1 / per_step[1])
print(f"batch 32 makes {speedup:.1f}x the tokens per second of batch 1 (timings: measured now, on this machine)")

# %% tags=["nbval-ignore-output"]
fig, ax = plt.subplots(figsize=(6, 3.5))
ax.loglog(sizes, [s / per_step[s] for s in sizes], "o-", label="measured")
ax.loglog(sizes, [min(s / floor, peak / flops_per_token) for s in sizes], "--", label="roofline: min(bandwidth, peak)")
ax.set_xlabel("batch size (sequences decoded together)")
ax.set_ylabel("tokens per second")
ax.set_title("One decoding step against the batch size")
ax.legend()
plt.show()


# %% [markdown]
# (When the model's weights fit in the processor's last-level cache, batch 1 can beat the memory
# floor printed above: the bandwidth was measured on 128 MiB, far larger than any cache.)
#
# The measured curve rises with the batch and then bends: once the product of the batch and the
# weights is arithmetic-bound, more rows cost more time each. On a CPU the bend comes early (its
# matmul peak is low compared with its bandwidth); on a GPU, whose peak is hundreds of times
# higher, it comes at batches of hundreds. Either way, the rows of a small batch are nearly free.
# (The roofline line is drawn from the two machine figures above, not fitted.)
#
# ## 2. A batch of prompts of different lengths
#
# Prompts have different lengths, and a tensor is a rectangle. We pad. *Where* matters:
#
# - **Right padding** (notebook 14's training batches) puts each row's last real token in a
#   different column: the next token of each row would go in a different place, and the KV cache
#   could no longer grow by one column for all rows.
# - **Left padding** puts every row's newest token in the **last** column. Each step appends one
#   column to every row. This is what Hugging Face's `generate` asks for (`padding_side="left"`).
#
# Two things keep the padding from changing any row's result:
#
# 1. a **key mask**: True where a key is a real token; attention never looks at padding;
# 2. **per-row positions**: a row padded by 3 starts at position 0 in column 3. Without them, the
#    row's tokens would sit at positions 3, 4, ..., and with a position *table* (learned or
#    sinusoidal, as in this notebook's model) that is a different input. Rotary positions
#    (notebook 17) are forgiving here: a query's score with a key depends only on their distance,
#    so shifting a whole row changes nothing in exact arithmetic (`tests/test_batching.py` checks
#    both cases). Per-row positions are right for every kind, and keep positions within the context.
#
# **Exercise 1 (implement, 2 points).** Write `left_pad_mask(lengths, width)`: a `torch.bool`
# tensor of shape `(len(lengths), width)` where row `i` is True exactly at its last `lengths[i]`
# positions (the real tokens, padded on the left) and False before them.

# %% solution="ex21_left_pad_mask"
def left_pad_mask(lengths, width):
    ### BEGIN SOLUTION
    columns = torch.arange(width)[None, :]  # (1, width)
    return columns >= width - torch.tensor(lengths)[:, None]  # (batch, width)
    ### END SOLUTION


# %% tests="ex21_left_pad_mask_tests" points=2
_lengths = [3, 1, 5, 2]
_, _want, _ = left_pad([[7] * n for n in _lengths])
_cols = torch.arange(5)[None, :]
_len = torch.tensor(_lengths)[:, None]
checks.expect_close(left_pad_mask(_lengths, 5), _want, "left_pad_mask([3, 1, 5, 2], 5)", mistakes={
    "that is RIGHT padding: the real tokens come last, after the padding": _cols < _len,
    "the padding and the tokens are swapped: True marks the real tokens": _cols < 5 - _len,
    "one column off: row i holds exactly lengths[i] real tokens, the last ones": _cols > 5 - _len,
})
checks.expect_close(left_pad_mask([2, 2], 4), torch.tensor([[False, False, True, True]] * 2),
                    "left_pad_mask([2, 2], 4)")
### BEGIN HIDDEN TESTS
_g = checks.grading_generator("ex21_left_pad_mask")
for _ in range(3):
    _n = int(torch.randint(1, 6, (1,), generator=_g))
    _ls = torch.randint(1, 9, (_n,), generator=_g).tolist()
    _w = max(_ls) + int(torch.randint(0, 3, (1,), generator=_g))
    _m = torch.zeros(_n, _w, dtype=torch.bool)
    for _i, _l in enumerate(_ls):
        _m[_i, _w - _l:] = True
    checks.expect_close(left_pad_mask(_ls, _w), _m, f"left_pad_mask({_ls}, {_w})")
### END HIDDEN TESTS

# %% [markdown]
# **Exercise 2 (implement, 2 points).** Write `row_positions(key_mask)`: from a left-padded
# `key_mask` `(batch, width)` (True at real tokens), the `torch.long` positions `(batch, width)`
# of each row's tokens, counted from 0 at the row's first real token. Padding columns get
# position 0 (they are never attended, so any valid position would do; 0 is always valid).

# %% solution="ex21_row_positions"
def row_positions(key_mask):
    ### BEGIN SOLUTION
    return (key_mask.long().cumsum(dim=1) - 1).clamp(min=0)  # (batch, width)
    ### END SOLUTION


# %% tests="ex21_row_positions_tests" points=2
_mask = _want  # the right mask of lengths [3, 1, 5, 2], whatever exercise 1 returned
_, _, _right = left_pad([[7] * n for n in [3, 1, 5, 2]])
_cols = torch.arange(5).expand(4, 5)
checks.expect_close(row_positions(_mask), _right, "row_positions(left_pad_mask([3, 1, 5, 2], 5))", mistakes={
    "those are the columns: a row padded by p starts at position 0 in column p": _cols,
    "count from 0: the first real token is at position 0": _mask.long().cumsum(1),
    "padding must get a valid position (0), not a negative one": _mask.long().cumsum(1) - 1,
})
checks.expect_equal(row_positions(_mask).dtype, torch.long, "the positions' dtype")
### BEGIN HIDDEN TESTS
_g = checks.grading_generator("ex21_row_positions")
for _ in range(3):
    _n = int(torch.randint(1, 6, (1,), generator=_g))
    _ls = torch.randint(1, 9, (_n,), generator=_g).tolist()
    _, _m, _p = left_pad([[1] * _l for _l in _ls])
    checks.expect_close(row_positions(_m), _p, f"row_positions for lengths {_ls}")
### END HIDDEN TESTS

# %% [markdown]
# With the mask and the positions, `GPT.forward` takes two more arguments: `positions` (each
# token's position in its row) and `key_mask` (which keys are real, the cached ones included).
# `course_lib.batching.Batch` keeps them together with the KV cache. Here is the check that
# matters: the stored arithmetic model of notebook 19, held-out problems whose prompts have five
# different lengths, answered **greedily in one batch** and **one at a time** — the same tokens.
# (The model is notebook 19's deliberately imperfect start, and worst at one-digit numbers, which
# it rarely saw: a wrong sum here is the model's, and the batch reproduces it exactly.)

# %% tags=["nbval-ignore-output"]
model, tokenizer = load_checkpoint(data_path("arithmetic_sft.pt"), device=device)
task = ArithmeticTask(tokenizer)
_by_length = {}
for a, b in held_out_problems():  # four problems of each prompt length, so that rows need different padding
    _by_length.setdefault(len(task.prompt(a, b)), []).append((a, b))
problems = [p for length in sorted(_by_length) for p in _by_length[length][:4]][-16:]
prompts = [task.prompt(a, b) for a, b in problems]
print("prompt lengths:", sorted({len(p) for p in prompts}))

started = time.perf_counter()
together = generate_batch(model, prompts, 8, temperature=0, stop_id=task.stop_id)
batched_seconds = time.perf_counter() - started
started = time.perf_counter()
alone = []
for prompt in prompts:
    out = generate(model, torch.tensor(prompt, device=device), 8, temperature=0, eos_id=task.stop_id)[len(prompt):].tolist()
    alone.append(out[:out.index(task.stop_id) + 1] if task.stop_id in out else out)
alone_seconds = time.perf_counter() - started
for (a, b), reply in list(zip(problems, together))[::3]:
    text = task.reply_text(reply[:-1] if reply[-1] == task.stop_id else reply)
    print(f"{a:3} + {b:3}: model {text:5} {'right' if text == str(a + b) else 'wrong'}")
print(f"one batch: {batched_seconds * 1e3:.0f} ms; one at a time: {alone_seconds * 1e3:.0f} ms")
assert together == alone, "batched greedy replies must be the ones each prompt gets alone"
print("identical greedy replies:", together == alone)

# %% [markdown]
# What the padding would do without the two fixes, on the same model (it has a sinusoidal position
# table): positions counted from the first *column*, and no key mask (the padded rows attend to
# padding). Both change the padded rows' logits, and the first fix alone changes their answers:

# %% tags=["nbval-ignore-output"]
ids, key_mask, positions = left_pad(prompts, pad_id=task.pad_id, device=device)
with torch.no_grad():
    right_logits = model(ids, positions=positions, key_mask=key_mask)[:, -1]
    by_column_logits = model(ids, key_mask=key_mask)[:, -1]  # positions 0..width-1 for every row
    unmasked_logits = model(ids, positions=positions)[:, -1]  # attends to padding
right = right_logits.argmax(-1)
padded = (~key_mask).any(dim=1)
print(f"{int(padded.sum())} of {len(prompts)} rows are padded")
for name, wrong in (("by-column positions", by_column_logits), ("no key mask", unmasked_logits)):
    print(f"{name:20}: largest logit change {float((wrong - right_logits)[padded].abs().max()):.3f} on padded rows, "
          f"{float((wrong - right_logits)[~padded].abs().max()):.3f} on the others; first tokens changed: "
          f"{int((wrong.argmax(-1) != right)[padded].sum())}")
assert [r[0] for r in alone] == right.tolist()


# %% [markdown]
# (How many answers change depends on the model; that the logits of the padded rows change at all
# is the point: those rows are then answering a different input. The rows without padding are
# untouched either way.)
#
# ## 3. Continuous batching: rows join and leave between steps
#
# A *static* batch starts together and ends when its longest reply ends: a request that needs 3
# tokens waits for one that needs 200, and a request that arrives meanwhile waits for the whole
# batch. **Continuous batching** (Yu et al. 2022, "Orca"; vLLM, TGI) decides the batch anew at
# every step:
#
# 1. rows that finished (end of turn, token limit, client gone) **leave** at once;
# 2. waiting requests **join**, oldest first, while the batch has room; each is *prefilled* (its
#    prompt read in one forward pass) and its KV cache left-padded to the batch's length;
# 3. one forward pass decodes one token for every row.
#
# **Exercise 3 (implement, 2 points).** Write the join/leave rule,
# `next_rows(running, finished, waiting, max_batch)`. `running` is the list of request names in the
# batch (in batch order), `finished` a set of names that just finished, `waiting` the list of waiting
# names (oldest first). Return `(rows, still_waiting)`: the running requests that did not finish (in
# their order), followed by as many waiting requests, oldest first, as fit in `max_batch` rows; and
# the waiting requests that did not get in (in their order).

# %% solution="ex21_next_rows"
def next_rows(running, finished, waiting, max_batch):
    ### BEGIN SOLUTION
    rows = [name for name in running if name not in finished]
    room = max(max_batch - len(rows), 0)
    return rows + waiting[:room], waiting[room:]
    ### END SOLUTION


# %% tests="ex21_next_rows_tests" points=2
_got = next_rows(["a", "b", "c"], {"b"}, ["d", "e", "f"], 4)
checks.expect_equal(_got, (["a", "c", "d", "e"], ["f"]), "next_rows(['a', 'b', 'c'], {'b'}, ['d', 'e', 'f'], 4)")
checks.expect_equal(next_rows(["a"], set(), ["b", "c"], 1), (["a"], ["b", "c"]),
                    "next_rows(['a'], set(), ['b', 'c'], 1): a full batch takes no one")
checks.expect_equal(next_rows(["a", "b"], {"a", "b"}, [], 4), ([], []), "next_rows when every row finished")
checks.expect_equal(next_rows(["c", "a", "b"], {"a"}, ["d"], 3), (["c", "b", "d"], []),
                    "next_rows(['c', 'a', 'b'], {'a'}, ['d'], 3): the rows keep their batch order")
### BEGIN HIDDEN TESTS
_g = checks.grading_generator("ex21_next_rows")
for _ in range(5):
    _run = [f"r{i}" for i in range(int(torch.randint(0, 6, (1,), generator=_g)))]
    _fin = {r for r in _run if int(torch.randint(0, 2, (1,), generator=_g))}
    _wait = [f"w{i}" for i in range(int(torch.randint(0, 6, (1,), generator=_g)))]
    _mb = int(torch.randint(max(len(_run), 1), 9, (1,), generator=_g))
    _kept = [r for r in _run if r not in _fin]
    _room = _mb - len(_kept)
    checks.expect_equal(next_rows(list(_run), set(_fin), list(_wait), _mb), (_kept + _wait[:_room], _wait[_room:]),
                        f"next_rows({_run}, {sorted(_fin)}, {_wait}, {_mb})")
### END HIDDEN TESTS

# %% [markdown]
# The library's `Scheduler` is that rule around the model. Here it runs by hand: 12 requests with
# different reply lengths (`max_new_tokens`), 4 rows at most, three new requests arriving every
# other step. We record the batch at every step, and compare with static batches of 4.

# %%
scheduler = Scheduler(model, max_batch=4, max_waiting=64)
lengths = [3, 12, 5, 8, 2, 10, 4, 6, 9, 3, 7, 5]
requests = [Request(task.prompt(a, b), n, temperature=0) for (a, b), n in zip(problems, lengths)]  # no stop: n tokens each
arrivals = {2 * i: requests[3 * i:3 * i + 3] for i in range(4)}
sizes_per_step = []  # how many rows decoded a token at each step
step, produced = 0, 0
while True:
    for request in arrivals.get(step, []):
        scheduler.submit(request)
    if not scheduler.step() and step > max(arrivals):
        break
    now = sum(len(r.tokens) for r in requests)
    sizes_per_step.append(now - produced)
    produced, step = now, step + 1
static_steps = sum(max(lengths[i:i + 4]) for i in range(0, len(lengths), 4))
print("rows in the batch after each step:", sizes_per_step)
print(f"continuous: {len(sizes_per_step)} steps for {sum(lengths)} tokens; static batches of 4: {static_steps} steps")
assert all(r.finish_reason == "length" and len(r.tokens) == n for r, n in zip(requests, lengths))
alone_tokens = [generate(model, torch.tensor(r.prompt, device=device), n, temperature=0)[len(r.prompt):].tolist()
                for r, n in zip(requests, lengths)]
assert [r.tokens for r in requests] == alone_tokens, "joining and leaving must not change any row's tokens"
print("every request's tokens equal its tokens alone:", True)

# %% [markdown]
# Rows join a batch already under way (their caches padded on the left), leave the moment they are
# done, and no row's tokens change. What the library leaves out, and real servers add: **paged
# attention** (vLLM keeps each sequence's cache in fixed-size pages instead of one padded tensor,
# so no memory is spent on padding and joining copies nothing), **chunked prefill** (a long prompt
# is read in pieces between decoding steps, so it does not stall everyone else's next token), and
# **prefix caching** (requests that share a system prompt share its cache).
#
# ## 4. The server, both ways
#
# `create_app(model, tokenizer, batching="continuous")` (the default now) gives the model to one
# `Scheduler` thread; each HTTP request becomes a `Request` whose tokens arrive on the request's
# own asyncio queue, so waiting costs no thread. `batching="none"` is notebook 16's turn-taking.
# The same 16 requests, 16 clients at once, against each:

# %% tags=["nbval-ignore-output"]
from course_lib.server import BackgroundServer, create_app


def load(url, questions):
    replies, threads = [None] * len(questions), []

    def ask(i, question):
        body = {"model": "arithmetic", "messages": [{"role": "user", "content": question}], "temperature": 0,
                "max_tokens": 8}
        replies[i] = httpx.post(url + "/v1/chat/completions", json=body, timeout=120).json()["choices"][0]["message"]["content"]

    started = time.perf_counter()
    for i, question in enumerate(questions):
        threads.append(threading.Thread(target=ask, args=(i, question)))
        threads[-1].start()
    for thread in threads:
        thread.join()
    return replies, time.perf_counter() - started


questions = [f"What is {a} + {b}?" for a, b in problems]
results = {}
for mode in ("none", "continuous"):
    with BackgroundServer(create_app(model, tokenizer, "arithmetic", batching=mode)) as url:
        load(url, questions[:2])  # warm-up
        results[mode] = load(url, questions)
    print(f"batching={mode!r:13} {len(questions) / results[mode][1]:6.1f} requests/s")
assert results["none"][0] == results["continuous"][0], "both modes must give the same greedy replies"
print("same replies:", results["none"][0][:4], "...")

# %% [markdown]
# Here the two are about as fast, and that is a lesson too: this model's forward pass takes well
# under a millisecond and its replies are a few tokens, so the time goes to HTTP and Python, and the
# clients share the server's interpreter. Batching pays when the forward pass dominates. Measured
# with the server in a process of its own (`benchmarks/serve_load.py`, 2-core AMD EPYC), at 32
# clients continuous batching served 3.7 × the requests per second of one-at-a-time with SmolLM2
# (5.5 against 1.5) and with notebook 14's model (381 against 102), with identical greedy replies.
#
# The measured comparison at 1, 8, 32 and 64 clients, with latency percentiles, time to first
# token and a soak of 2,000 mixed requests, is `benchmarks/serve_load.py` (both modes in one run);
# its figures, and the machine, are in [docs/performance.md](../docs/performance.md). From a
# terminal:
#
# ```
# python -m course_lib serve --gguf smollm2 --batching continuous --max-batch 32
# python -m course_lib serve --gguf smollm2 --batching none      # notebook 16's way, to compare
# ```
#
# ## Summary
#
# - At batch 1 a decoding step is bound by reading the weights; rows added to the batch share that
#   read, so tokens/s grows with the batch until the arithmetic peak (measured above).
# - Left padding keeps every row's newest token in the last column; a **key mask** and **per-row
#   positions** make each row's result exactly its result alone (checked, greedy, token for token).
# - **Continuous batching**: finished rows leave and waiting requests join between steps; the
#   batch never waits for its longest member.
# - The course's server does it by default; `--batching none` keeps the old path for comparison.
