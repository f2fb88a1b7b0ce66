"""Notebook 17's pieces: RMSNorm, RoPE, SwiGLU, grouped-query attention, each against an independent reference."""
import math

import pytest
import torch
from conftest import small_gpt

from course_lib.attention import MultiHeadAttention
from course_lib.gpt import GPT, GPTConfig
from course_lib.kv_cache import KVCache
from course_lib.modern import RMSNorm, SwiGLU, apply_rope, repeat_kv, rope_tables, rotate_half
from course_lib.tokenizer import CharTokenizer
from course_lib.training import load_checkpoint, save_checkpoint

LLAMA_LIKE = dict(positions="rope", norm="rmsnorm", activation="swiglu", bias=False, scale_embeddings=False)


def test_rmsnorm_equals_torch_and_the_formula():
    torch.manual_seed(0)
    x = torch.randn(3, 5, 16, dtype=torch.float64)
    ours = RMSNorm(16, eps=1e-6).double()
    with torch.no_grad():
        ours.weight.copy_(torch.randn(16))
    reference = torch.nn.RMSNorm(16, eps=1e-6).double()
    reference.load_state_dict(ours.state_dict())
    torch.testing.assert_close(ours(x), reference(x))
    by_hand = x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + 1e-6) * ours.weight
    torch.testing.assert_close(ours(x), by_hand)
    # unlike LayerNorm it keeps the mean: a constant vector is not sent to zero
    assert ours(torch.ones(1, 1, 16, dtype=torch.float64)).abs().sum() > 0
    assert RMSNorm(4).bfloat16()(torch.ones(2, 4, dtype=torch.bfloat16)).dtype == torch.bfloat16


def test_rope_equals_the_complex_number_formula():
    torch.manual_seed(1)
    T, head_dim, base = 7, 8, 10000.0
    x = torch.randn(2, 3, T, head_dim, dtype=torch.float64)
    cos, sin = rope_tables(T, head_dim, base, dtype=torch.float64)
    ours = apply_rope(x, cos, sin)
    half = head_dim // 2
    z = torch.complex(x[..., :half], x[..., half:])  # pair i is (x_i, x_{i + head_dim/2})
    theta = base ** (-torch.arange(half, dtype=torch.float64) * 2 / head_dim)
    angle = torch.arange(T, dtype=torch.float64)[:, None] * theta  # (T, half)
    rotated = z * torch.polar(torch.ones_like(angle), angle)  # multiply by e^{i m theta}
    torch.testing.assert_close(ours, torch.cat([rotated.real, rotated.imag], dim=-1))
    assert torch.allclose(ours.norm(dim=-1), x.norm(dim=-1))  # a rotation keeps lengths
    torch.testing.assert_close(rotate_half(rotate_half(x)), -x)  # two quarter turns: a half turn


def test_rope_scores_depend_only_on_the_distance():
    torch.manual_seed(2)
    head_dim = 16
    q, k = torch.randn(head_dim, dtype=torch.float64), torch.randn(head_dim, dtype=torch.float64)
    cos, sin = rope_tables(64, head_dim, dtype=torch.float64)

    def at(v, m):
        return apply_rope(v.view(1, 1, 1, -1), cos[m:m + 1], sin[m:m + 1]).view(-1)

    def score(m, n):
        return float(at(q, m) @ at(k, n))

    assert score(5, 2) == pytest.approx(score(40, 37), abs=1e-10)
    assert score(9, 9) == pytest.approx(score(0, 0), abs=1e-10)
    assert abs(score(5, 2) - score(5, 3)) > 1e-3  # positive control: another distance, another score


def test_rope_tables_reject_bad_sizes():
    with pytest.raises(ValueError, match="even"):
        rope_tables(4, 7)
    with pytest.raises(ValueError, match="base"):
        rope_tables(4, 8, base=1.0)
    with pytest.raises(ValueError, match="rope_tables"):
        apply_rope(torch.randn(1, 1, 3, 8), *rope_tables(4, 8))


def test_swiglu_is_the_gated_formula():
    torch.manual_seed(3)
    ffn = SwiGLU(8, 12).double()
    x = torch.randn(2, 3, 8, dtype=torch.float64)
    gate, up, down = ffn.w_gate.weight, ffn.w_up.weight, ffn.w_down.weight
    by_hand = ((x @ gate.T) * torch.sigmoid(x @ gate.T) * (x @ up.T)) @ down.T
    torch.testing.assert_close(ffn(x), by_hand)


def test_grouped_query_attention_equals_multi_head_with_repeated_keys_and_values():
    torch.manual_seed(4)
    gqa = MultiHeadAttention(24, 6, n_kv_heads=2, bias=False).double().eval()
    mha = MultiHeadAttention(24, 6, bias=False).double().eval()
    head_dim, group = 4, 3
    with torch.no_grad():
        mha.w_q.weight.copy_(gqa.w_q.weight)
        mha.w_o.weight.copy_(gqa.w_o.weight)
        for name in ("w_k", "w_v"):  # each small head's rows, repeated for the query heads of its group
            rows = getattr(gqa, name).weight.view(2, head_dim, 24)
            getattr(mha, name).weight.copy_(rows.repeat_interleave(group, dim=0).reshape(24, 24))
    x = torch.randn(2, 5, 24, dtype=torch.float64)
    torch.testing.assert_close(gqa(x, is_causal=True), mha(x, is_causal=True))
    assert gqa.w_k.weight.shape == (8, 24)  # 2 heads of 4, not 6


def test_repeat_kv_order_and_errors():
    x = torch.arange(2 * 3).float().view(1, 2, 3, 1)
    out = repeat_kv(x, 2)
    assert out.shape == (1, 4, 3, 1)
    assert torch.equal(out[0, 1], x[0, 0]) and torch.equal(out[0, 2], x[0, 1])  # head h reads kv head h // 2
    with pytest.raises(ValueError, match="n_kv_heads"):
        MultiHeadAttention(24, 6, n_kv_heads=4)
    with pytest.raises(ValueError, match="n_kv_heads"):
        GPTConfig(vocab_size=10, d_model=24, n_heads=6, n_kv_heads=4)
    with pytest.raises(ValueError, match="even head size"):
        GPTConfig(vocab_size=10, d_model=12, n_heads=4, positions="rope")
    with pytest.raises(ValueError, match="norm must be"):
        GPTConfig(vocab_size=10, norm="batchnorm")


@pytest.mark.parametrize("n_kv_heads", [1, 2])
def test_modern_gpt_cache_gives_the_uncached_logits_and_stores_small_heads(n_kv_heads):
    model = small_gpt(n_kv_heads=n_kv_heads, **LLAMA_LIKE)
    ids = torch.randint(0, 20, (2, 12), generator=torch.Generator().manual_seed(5))
    full = model(ids)
    cache = KVCache(2)
    pieces = [model(ids[:, :5], cache=cache)] + [model(ids[:, t:t + 1], cache=cache) for t in range(5, 12)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full)
    assert cache.keys[0].shape == (2, n_kv_heads, 12, 8)  # the cache holds n_kv_heads, not n_heads


def test_rope_offset_under_the_cache_is_the_position_not_zero():
    # Positive control of the test above: rotating the new token as if it were at position 0 changes the logits.
    model = small_gpt(**LLAMA_LIKE)
    ids = torch.randint(0, 20, (1, 6), generator=torch.Generator().manual_seed(6))
    cache = KVCache(2)
    model(ids[:, :5], cache=cache)
    right = model(ids[:, 5:], cache=cache)[0, -1]
    wrong = model(ids[:, 5:])[0, -1]  # position 0, no past
    assert (right - model(ids)[0, -1]).abs().max() < 1e-10
    assert (right - wrong).abs().max() > 1e-3


def test_old_gpt_and_checkpoints_unchanged(tmp_path):
    model = small_gpt()
    assert not any("rope" in name for name in model.state_dict())
    assert "position_table" not in model.state_dict()  # a buffer that is not saved, as before
    save_checkpoint(tmp_path / "m.pt", model.float(), _tokenizer())
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    assert loaded.config == model.config


def test_modern_checkpoint_round_trip(tmp_path):
    model = small_gpt(n_kv_heads=1, **LLAMA_LIKE).float()
    save_checkpoint(tmp_path / "m.pt", model, _tokenizer())
    loaded, _ = load_checkpoint(tmp_path / "m.pt")
    ids = torch.randint(0, 20, (1, 8))
    torch.testing.assert_close(loaded(ids), model(ids))
    assert loaded.config.positions == "rope" and loaded.config.n_kv_heads == 1


def test_modern_gpt_trains():
    torch.manual_seed(7)
    model = GPT(GPTConfig(vocab_size=8, context_length=16, d_model=32, n_heads=4, n_kv_heads=2, d_ff=64, **LLAMA_LIKE))
    ids = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7] * 2])
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    for _ in range(60):
        _, loss = model(ids[:, :-1], ids[:, 1:])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.1 * math.log(8)


def test_gqa_uses_fused_attention_the_same_as_the_course_path():
    from course_lib.attention import recording_attention

    model = small_gpt(n_kv_heads=1, **LLAMA_LIKE)
    ids = torch.randint(0, 20, (2, 9))
    fast = model(ids)
    with recording_attention(model):
        slow = model(ids)
    torch.testing.assert_close(fast, slow)
    assert model.attention_weights[0].shape == (2, 2, 9, 9)


def _tokenizer():
    return CharTokenizer("abcdefghijklmnopqrst")
