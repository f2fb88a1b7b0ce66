"""Batched generation and continuous batching (notebook 21): every row exactly as it would be alone.

The reference is the course's one-sequence path (``GPT.forward`` on one row, ``generate``), itself
checked against PyTorch and ``transformers`` elsewhere. Each detector has a positive control: the
same check fails on a batch built the wrong way (positions by column, no key mask).
"""
import threading
import time

import pytest
import torch

from course_lib.batching import Batch, QueueFull, Request, Scheduler, left_pad
from course_lib.gpt import GPT, GPTConfig
from course_lib.sampling import generate, generate_batch

ARCHITECTURES = {
    "gpt2-like": {},
    "learned positions": {"positions": "learned"},
    "llama-like (RMSNorm, RoPE, SwiGLU, GQA)": {"positions": "rope", "norm": "rmsnorm", "activation": "swiglu",
                                                "n_kv_heads": 2, "bias": False, "tie_weights": False},
}


def model_of(kind, context_length=24, vocab_size=50, seed=0):
    torch.manual_seed(seed)
    return GPT(GPTConfig(vocab_size=vocab_size, context_length=context_length, **ARCHITECTURES[kind])).eval()


def prompts_of(lengths, vocab_size=50, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(0, vocab_size, (n,), generator=g).tolist() for n in lengths]


def alone(model, prompt, max_new_tokens, stop_id=None):
    out = generate(model, torch.tensor(prompt), max_new_tokens, temperature=0, eos_id=stop_id)[len(prompt):].tolist()
    return out[:out.index(stop_id) + 1] if stop_id is not None and stop_id in out else out


def test_left_pad_puts_every_row_at_the_right_edge_with_its_own_positions():
    ids, key_mask, positions = left_pad([[5, 6, 7], [8], [1, 2]], pad_id=0)
    assert ids.tolist() == [[5, 6, 7], [0, 0, 8], [0, 1, 2]]
    assert key_mask.tolist() == [[True] * 3, [False, False, True], [False, True, True]]
    assert positions.tolist() == [[0, 1, 2], [0, 0, 0], [0, 0, 1]] and positions.dtype == torch.long


@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_a_left_padded_batch_gives_each_row_its_logits_alone(kind):
    model = model_of(kind)
    prompts = prompts_of([1, 4, 9, 13])
    ids, key_mask, positions = left_pad(prompts)
    with torch.no_grad():
        batched = model(ids, positions=positions, key_mask=key_mask)
        for row, prompt in enumerate(prompts):
            own = model(torch.tensor([prompt]))[0]
            torch.testing.assert_close(batched[row, -len(prompt):], own, atol=1e-5, rtol=1e-5)
        # positive controls: positions counted by column, or padding left visible, change the padded rows
        by_column = model(ids, key_mask=key_mask)[:, -1]
        unmasked = model(ids, positions=positions)[:, -1]
    assert (unmasked[:3] - batched[:3, -1]).abs().max() > 1e-3
    if ARCHITECTURES[kind].get("positions") == "rope":
        # rotary scores depend on the distance between query and key only: a shift of the whole row changes nothing
        torch.testing.assert_close(by_column, batched[:, -1], atol=1e-4, rtol=1e-4)
    else:  # an absolute position table gives a shifted row another input
        assert (by_column[:3] - batched[:3, -1]).abs().max() > 1e-3
    torch.testing.assert_close(by_column[3], batched[3, -1], atol=1e-5, rtol=1e-5)  # the unpadded row is untouched


@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_decoding_through_the_batch_cache_equals_each_row_alone(kind):
    model = model_of(kind)
    prompts = prompts_of([2, 7, 11])
    with torch.no_grad():
        batch, logits = Batch.prefill(model, prompts, rows=[0, 1, 2])
        tokens = [list(p) for p in prompts]
        for _ in range(5):
            next_ids = logits.argmax(-1)
            for row, token in enumerate(next_ids.tolist()):
                tokens[row].append(token)
            logits = batch.decode(model, next_ids)
        for row, sequence in enumerate(tokens):
            torch.testing.assert_close(logits[row], model(torch.tensor([sequence]))[0, -1], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("kind", ARCHITECTURES)
def test_generate_batch_gives_the_greedy_replies_of_generate(kind):
    model = model_of(kind)
    # lengths 1..30 with a context of 24: prompts cropped, and rows whose window fills up mid-reply
    prompts = prompts_of([1, 5, 12, 3, 20, 24, 30])
    out = generate_batch(model, prompts, 15, temperature=0, stop_id=7)
    assert out == [alone(model, p, 15, stop_id=7) for p in prompts]
    assert any(o and o[-1] == 7 for o in out) or all(len(o) == 15 for o in out)


def test_each_row_stops_at_its_own_stop_id():
    model = model_of("gpt2-like")
    prompts = prompts_of([3, 6, 9, 2, 4], seed=3)
    first = [alone(model, p, 1)[0] for p in prompts]
    stop = first[1]  # one row's very first token: that row stops at once, the others need not
    out = generate_batch(model, prompts, 10, temperature=0, stop_id=stop)
    assert out[1] == [stop]
    assert out == [alone(model, p, 10, stop_id=stop) for p in prompts]
    assert any(len(o) > 1 for o in out)


def test_sampled_batches_are_reproducible_and_zero_tokens_is_empty():
    model = model_of("gpt2-like")
    prompts = prompts_of([2, 5, 8])
    a = generate_batch(model, prompts, 6, temperature=1.0, top_k=10, generator=torch.Generator().manual_seed(4))
    b = generate_batch(model, prompts, 6, temperature=1.0, top_k=10, generator=torch.Generator().manual_seed(4))
    c = generate_batch(model, prompts, 6, temperature=1.0, top_k=10, generator=torch.Generator().manual_seed(5))
    assert a == b != c and all(len(row) == 6 for row in a)
    assert generate_batch(model, prompts, 0) == [[], [], []]


def test_generate_batch_refuses_bad_prompts_with_the_reason():
    model = model_of("gpt2-like")
    for prompts, words in [([], "non-empty list"), ([[1], []], "prompts\\[1\\]"), ([[1, 99]], r"\[0, 50\)"),
                           ([torch.tensor([1, 2])], "tolist"), ([[1, 2.0]], "ints"), ("abc", "non-empty list")]:
        with pytest.raises((ValueError, TypeError), match=words):
            generate_batch(model, prompts, 3)
    with pytest.raises(ValueError, match="stop_id"):
        generate_batch(model, [[1]], 3, stop_id=50)
    with pytest.raises(ValueError, match="temperature"):
        generate_batch(model, [[1]], 3, temperature=-1)


def test_forward_checks_positions_and_key_mask():
    model = model_of("gpt2-like")
    ids = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match="shape of token_ids"):
        model(ids, positions=torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"positions must be in \[0, 24\)"):
        model(ids, positions=torch.full((2, 3), 24))
    with pytest.raises(TypeError, match="bool"):
        model(ids, key_mask=torch.ones(2, 3))
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        model(ids, key_mask=torch.ones(2, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="either pad_id or key_mask"):
        model(ids, pad_id=0, key_mask=torch.ones(2, 3, dtype=torch.bool))


# --- the scheduler: rows join and leave between steps ---------------------------------------------------------------

def test_requests_that_join_a_running_batch_get_their_tokens_alone():
    model = model_of("llama-like (RMSNorm, RoPE, SwiGLU, GQA)", context_length=32)
    prompts = prompts_of([3, 9, 1, 14, 6, 2], seed=7)
    lengths = [4, 10, 2, 7, 12, 5]
    scheduler = Scheduler(model, max_batch=3, max_waiting=10)
    requests = [Request(p, n, temperature=0) for p, n in zip(prompts, lengths)]
    rows_per_step = []
    for step in range(200):
        if step % 2 == 0 and requests[step // 2:step // 2 + 1]:
            scheduler.submit(requests[step // 2])  # one arrives every other step
        if not scheduler.step() and step > 12:
            break
        rows_per_step.append(scheduler.active)
    assert max(rows_per_step) == 3  # never more than max_batch rows
    assert all(r.finish_reason == "length" for r in requests)
    assert [r.tokens for r in requests] == [alone(model, p, n) for p, n in zip(prompts, lengths)]
    assert scheduler.active == 0 and not scheduler.waiting


def test_leaving_rows_free_their_cache_columns():
    model = model_of("gpt2-like")
    batch, _ = Batch.prefill(model, prompts_of([10, 2, 3]), rows=["long", "a", "b"])
    assert batch.key_mask.shape == (3, 10)
    kept = batch.select([1, 2])
    assert kept.rows == ["a", "b"] and kept.key_mask.shape == (2, 3) and kept.cache.keys[0].shape[2] == 3
    assert batch.select([0, 1, 2]) is batch  # nobody left, nothing to trim: no copy
    joined = Batch.concat(kept, batch.select([0]))
    assert joined.rows == ["a", "b", "long"] and joined.key_mask.shape == (3, 10)
    assert joined.key_mask.sum(dim=1).tolist() == [2, 3, 10]


def test_cancelled_requests_leave_and_a_stop_function_ends_a_row():
    model = model_of("gpt2-like")
    prompts = prompts_of([4, 5, 6])
    stop_token = alone(model, prompts[2], 3)[2]
    scheduler = Scheduler(model, max_batch=4)
    kept = scheduler.submit(Request(prompts[0], 8, temperature=0))
    gone = scheduler.submit(Request(prompts[1], 8, temperature=0))
    stopping = scheduler.submit(Request(prompts[2], 8, temperature=0, stop=lambda t: t == stop_token))
    never = Request(prompts[1], 8, temperature=0)
    scheduler.submit(never)
    never.cancel()  # cancelled while waiting: never prefilled
    scheduler.step()
    gone.cancel()
    while scheduler.step():
        pass
    assert (kept.finish_reason, gone.finish_reason, never.finish_reason) == ("length", "cancelled", "cancelled")
    assert len(gone.tokens) == 1 and never.tokens == []
    assert stopping.finish_reason == "stop" and stopping.tokens == alone(model, prompts[2], 2)
    assert kept.tokens == alone(model, prompts[0], 8)
    assert [kind for kind, _ in gone.events(timeout=1)] == ["token", "end"]


def test_a_full_waiting_line_is_refused_and_a_broken_model_fails_only_its_requests():
    model = model_of("gpt2-like")
    scheduler = Scheduler(model, max_batch=1, max_waiting=2)
    scheduler.submit(Request([1], 2))
    scheduler.submit(Request([2], 2))
    with pytest.raises(QueueFull, match="at most 2"):
        scheduler.submit(Request([3], 2))
    broken = model_of("gpt2-like")
    with torch.no_grad():
        broken.lm_head.weight.fill_(float("nan"))
    failing = Scheduler(broken, max_batch=2)
    request = failing.submit(Request([1, 2], 3, temperature=0))
    while failing.step():
        pass
    assert request.finish_reason == "error" and "NaN" in request.error


def test_the_scheduler_thread_serves_requests_from_many_threads():
    model = model_of("gpt2-like")
    scheduler = Scheduler(model, max_batch=8).start()
    prompts = prompts_of([2, 4, 6, 8, 3, 5, 7, 9, 1, 10], seed=9)
    results = [None] * len(prompts)

    def ask(i):
        request = scheduler.submit(Request(prompts[i], 6, temperature=0))
        results[i] = [value for kind, value in request.events(timeout=30) if kind == "token"]

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(prompts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    scheduler.stop()
    assert results == [alone(model, p, 6) for p in prompts]
    late = Request([1], 3)
    scheduler.waiting.append(late)
    scheduler.start().stop()  # stopping ends what still waits
    deadline = time.monotonic() + 5
    while late.finish_reason is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert late.finish_reason in ("cancelled", "length", "error")  # ended, whichever step the stop came at


def test_request_and_scheduler_refuse_bad_arguments():
    model = model_of("gpt2-like")
    for args, words in [(([], 3), "non-empty list"), (([1, True], 3), "int token ids"), (([1], -1), "max_new_tokens")]:
        with pytest.raises((ValueError, TypeError), match=words):
            Request(*args)
    with pytest.raises(ValueError, match="top_p"):
        Request([1], 3, top_p=0)
    with pytest.raises(TypeError, match="Request"):
        Scheduler(model).submit([1, 2])
    with pytest.raises(ValueError, match="max_batch"):
        Scheduler(model, max_batch=0)
