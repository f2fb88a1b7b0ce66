"""generate() against brute force: greedy, temperature, top-k, top-p, reproducibility, errors."""
import pytest
import torch

from course_lib.gpt import GPT, GPTConfig
from course_lib.sampling import filter_logits, generate, generate_text, next_token_distribution
from course_lib.tokenizer import WordTokenizer


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=12, context_length=8, d_model=16, n_heads=2, n_layers=1, d_ff=32)).eval()
    with torch.no_grad():
        m.token_embedding.weight.mul_(10)  # sharper, more varied next-token distributions
    return m


def greedy_by_hand(model, ids, n):
    ids = ids.clone()
    for _ in range(n):
        logits = model(ids[None, -model.config.context_length:])[0, -1]
        ids = torch.cat([ids, logits.argmax().view(1)])
    return ids


def test_temperature_zero_and_top_k_one_are_greedy(model):
    prompt = torch.tensor([1, 4, 7])
    expected = greedy_by_hand(model, prompt, 6)
    assert torch.equal(generate(model, prompt, 6, temperature=0), expected)
    g = torch.Generator().manual_seed(3)
    assert torch.equal(generate(model, prompt, 6, temperature=1.3, top_k=1, generator=g), expected)


def test_samples_follow_softmax_over_temperature(model):
    prompt = torch.tensor([[1, 5]])
    logits = model(prompt)[0, -1]
    n = 20000
    for temperature in (0.5, 1.0, 2.0):
        g = torch.Generator().manual_seed(0)
        drawn = generate(model, prompt.expand(n, 2), 1, temperature=temperature, generator=g)[:, -1]
        empirical = torch.bincount(drawn, minlength=12).double() / n
        expected = torch.softmax(logits.double() / temperature, -1)
        total_variation = 0.5 * (empirical - expected).abs().sum().item()
        assert total_variation < 0.02, f"T={temperature}: total variation {total_variation:.4f}"


def test_top_p_keeps_exactly_the_smallest_set_reaching_p():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        logits = torch.randn(10, generator=g, dtype=torch.float64) * 2
        p = torch.rand(1, generator=g).item() * 0.98 + 0.01
        probs = torch.softmax(logits, -1)
        order = probs.argsort(descending=True)
        k = int((probs[order].cumsum(0) < p).sum()) + 1  # smallest k whose top-k mass reaches p
        kept = set(order[:k].tolist())
        assert set(torch.isfinite(filter_logits(logits, top_p=p)).nonzero().flatten().tolist()) == kept


def test_top_k_keeps_k_tokens_and_distribution_renormalises():
    logits = torch.tensor([[1.0, 3.0, 2.0, 0.5, 2.5]])
    probs = next_token_distribution(logits, temperature=1.0, top_k=2)
    assert (probs > 0).sum() == 2 and probs[0, 1] > 0 and probs[0, 4] > 0
    torch.testing.assert_close(probs.sum(), torch.tensor(1.0))


def test_same_seed_same_text_and_batches(model):
    prompt = torch.tensor([[1, 2], [1, 3]])
    a = generate(model, prompt, 10, temperature=1.5, generator=torch.Generator().manual_seed(7))
    b = generate(model, prompt, 10, temperature=1.5, generator=torch.Generator().manual_seed(7))
    c = generate(model, prompt, 10, temperature=1.5, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c) and a.shape == (2, 12)


def test_long_prompt_keeps_its_last_context_window(model):
    long_prompt = torch.arange(20) % 12  # longer than context_length = 8
    out = generate(model, long_prompt, 5, temperature=0)
    assert out.shape == (25,) and torch.equal(out[:20], long_prompt)
    cropped = generate(model, long_prompt[-8:], 5, temperature=0)
    assert torch.equal(out[20:], cropped[8:])


def test_stops_at_eos(model):
    prompt = torch.tensor([1, 4])
    greedy = generate(model, prompt, 8, temperature=0)
    eos = int(greedy[3])  # pretend the second new token is <eos>
    out = generate(model, prompt, 8, temperature=0, eos_id=eos)
    assert int(out[-1]) == eos and len(out) <= 4


def test_generate_text_maps_unknown_words_to_unk():
    tok = WordTokenizer.from_sentences(["a b c", "b c a"])
    torch.manual_seed(0)
    m = GPT(GPTConfig(vocab_size=len(tok), context_length=6, d_model=8, n_heads=2, n_layers=1, d_ff=16))
    text = generate_text(m, tok, "a zebra", max_new_tokens=3, temperature=0)
    assert text.startswith("a <unk>")


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        (dict(temperature=-0.5), ValueError, "temperature must be >= 0"),
        (dict(temperature="hot"), TypeError, "temperature must be a number"),
        (dict(top_k=0), ValueError, "top_k must be >= 1"),
        (dict(top_k=2.5), TypeError, "top_k must be an int"),
        (dict(top_p=0.0), ValueError, r"top_p must be in \(0, 1\]"),
        (dict(top_p=1.5), ValueError, r"top_p must be in \(0, 1\]"),
        (dict(max_new_tokens=-1), ValueError, "max_new_tokens must be >= 0"),
        (dict(generator=42), TypeError, "generator must be a torch.Generator"),
    ],
)
def test_bad_arguments(model, kwargs, error, message):
    args = dict(max_new_tokens=3)
    args.update(kwargs)
    with pytest.raises(error, match=message):
        generate(model, torch.tensor([1, 2]), **args)


def test_bad_prompts(model):
    with pytest.raises(ValueError, match="non-empty"):
        generate(model, torch.tensor([], dtype=torch.long), 3)
    with pytest.raises(TypeError, match="integer token ids"):
        generate(model, torch.tensor([1.0, 2.0]), 3)
