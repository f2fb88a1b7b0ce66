"""KV-cached generation gives exactly the tokens of uncached generation, within and past the window."""
import pytest
import torch

from course_lib.gpt import GPT, GPTConfig
from course_lib.kv_cache import KVCache
from course_lib.masks import causal_mask
from course_lib.sampling import generate


def make_model(positions="sinusoidal", context_length=16, dtype=torch.float64):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=30, context_length=context_length, d_model=32, n_heads=4, n_layers=3,
                          d_ff=64, positions=positions)).to(dtype).eval()
    with torch.no_grad():
        model.token_embedding.weight.mul_(30)  # varied, confident predictions
    return model


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_incremental_forward_matches_full_forward(positions):
    model = make_model(positions)
    ids = torch.randint(0, 30, (2, 12), generator=torch.Generator().manual_seed(1))
    full = model(ids)
    cache = KVCache(len(model.blocks))
    pieces = [model(ids[:, :5], cache=cache)]  # a prompt of 5, then one token at a time
    for t in range(5, 12):
        pieces.append(model(ids[:, t:t + 1], cache=cache))
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-10, rtol=0)
    assert len(cache) == 12 and cache.keys[2].shape == (2, 4, 12, 8)


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_greedy_cached_equals_uncached_past_the_window(positions):
    model = make_model(positions)
    prompt = torch.tensor([[1, 2, 3], [4, 5, 6]])
    cached = generate(model, prompt, 40, temperature=0, use_cache=True)  # 43 tokens > context 16
    uncached = generate(model, prompt, 40, temperature=0, use_cache=False)
    assert torch.equal(cached, uncached) and cached.shape == (2, 43)


def test_seeded_sampling_cached_equals_uncached():
    model = make_model()
    prompt = torch.tensor([7, 8])
    for seed in range(3):
        a = generate(model, prompt, 30, temperature=1.2, top_k=10, top_p=0.9,
                     generator=torch.Generator().manual_seed(seed), use_cache=True)
        b = generate(model, prompt, 30, temperature=1.2, top_k=10, top_p=0.9,
                     generator=torch.Generator().manual_seed(seed), use_cache=False)
        assert torch.equal(a, b)


def test_long_prompt_and_eos_with_cache():
    model = make_model()
    long_prompt = torch.arange(25) % 30  # longer than the context
    assert torch.equal(generate(model, long_prompt, 5, temperature=0),
                       generate(model, long_prompt, 5, temperature=0, use_cache=False))
    greedy = generate(model, torch.tensor([1, 2]), 6, temperature=0, use_cache=False)
    eos = int(greedy[4])
    out = generate(model, torch.tensor([1, 2]), 6, temperature=0, eos_id=eos)
    assert int(out[-1]) == eos and len(out) <= 5


def test_cache_errors_and_mask_with_past():
    model = make_model(context_length=8)
    cache = KVCache(len(model.blocks))
    model(torch.zeros(1, 6, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="6 cached \\+ 3 positions but the model's context_length is 8"):
        model(torch.zeros(1, 3, dtype=torch.long), cache=cache)
    with pytest.raises(ValueError, match="padding_mask is not supported"):
        model(torch.zeros(1, 1, dtype=torch.long), pad_id=0, cache=cache)
    assert causal_mask(2, past=3).tolist() == [[True, True, True, True, False], [True, True, True, True, True]]
    assert torch.equal(causal_mask(4, past=0), causal_mask(4))
