"""scaled_dot_product_attention and MultiHeadAttention against PyTorch's own implementations."""
import math

import pytest
import torch
import torch.nn.functional as F

from course_lib.attention import MultiHeadAttention, fused_attention, recording_attention, scaled_dot_product_attention


def rand(*shape, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


@pytest.mark.parametrize("seed", range(5))
def test_matches_pytorch_with_random_masks(seed):
    g = torch.Generator().manual_seed(seed)
    q, k, v = rand(2, 3, 5, 8, seed=seed), rand(2, 3, 7, 8, seed=seed + 10), rand(2, 3, 7, 4, seed=seed + 20)
    mask = torch.rand(2, 1, 5, 7, generator=g) > 0.4
    mask[..., 0] = True  # PyTorch's reference returns NaN-free rows only when something is allowed
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert out.shape == (2, 3, 5, 4) and weights.shape == (2, 3, 5, 7)
    torch.testing.assert_close(out, ref, atol=1e-10, rtol=0)
    assert torch.all(weights[~mask.expand_as(weights)] == 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 5, dtype=torch.float64))


def test_without_mask_matches_pytorch_and_formula():
    q, k, v = rand(4, 6, 16), rand(4, 9, 16, seed=1), rand(4, 9, 5, seed=2)
    out, weights = scaled_dot_product_attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), atol=1e-10, rtol=0)
    # the formula on paper, one query at a time
    for b in range(4):
        for i in range(6):
            scores = torch.stack([q[b, i] @ k[b, j] / math.sqrt(16) for j in range(9)])
            w = torch.exp(scores) / torch.exp(scores).sum()
            torch.testing.assert_close(weights[b, i], w, atol=1e-12, rtol=0)


def test_causal_mask_matches_is_causal():
    q, k, v = rand(2, 2, 6, 8), rand(2, 2, 6, 8, seed=1), rand(2, 2, 6, 8, seed=2)
    mask = torch.ones(6, 6, dtype=torch.bool).tril()
    out, _ = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v, is_causal=True), atol=1e-10, rtol=0)


def test_row_that_attends_to_nothing_is_zero_not_nan():
    q, k, v = rand(1, 3, 4), rand(1, 5, 4, seed=1), rand(1, 5, 2, seed=2)
    mask = torch.ones(1, 3, 5, dtype=torch.bool)
    mask[0, 1] = False
    q.requires_grad_(True)
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.all(weights[0, 1] == 0) and torch.all(out[0, 1] == 0)
    out.sum().backward()
    assert torch.isfinite(q.grad).all(), "a fully masked row must not poison gradients with NaN"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_low_precision_with_mask(dtype):
    q, k, v = (rand(2, 6, 8, seed=s).to(dtype) for s in range(3))
    mask = torch.ones(6, 6, dtype=torch.bool).tril()
    mask[2] = False
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert out.dtype == dtype and weights.dtype == dtype
    assert torch.isfinite(out).all() and torch.isfinite(weights).all()
    ref, _ = scaled_dot_product_attention(*(t.double() for t in (q, k, v)), mask)
    tol = {torch.float32: 1e-5, torch.float16: 5e-3, torch.bfloat16: 3e-2}[dtype]
    torch.testing.assert_close(out.double(), ref, atol=tol, rtol=tol)
    assert torch.all(out[:, 2] == 0)


def test_large_scores_in_float16_do_not_overflow():
    # Scores near float16's limit: a -1e9 fill would be -inf already, finfo.min must stay finite.
    q = torch.full((1, 2, 4), 100.0, dtype=torch.float16)
    k = torch.full((1, 3, 4), 100.0, dtype=torch.float16)
    v = torch.ones(1, 3, 2, dtype=torch.float16)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    out, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(weights[0, 0].float(), torch.tensor([0.5, 0.0, 0.5]))


@pytest.mark.parametrize(
    "args, error, words",
    [
        ((torch.randn(3, 4), torch.randn(5, 3), torch.randn(5, 2)), ValueError, ["d_k", "(3, 4)", "(5, 3)"]),
        ((torch.randn(3, 4), torch.randn(5, 4), torch.randn(6, 2)), ValueError, ["T_k", "(6, 2)"]),
        ((torch.randn(4), torch.randn(5, 4), torch.randn(5, 2)), ValueError, ["q", "at least 2"]),
        (([[1.0]], torch.randn(5, 4), torch.randn(5, 2)), TypeError, ["q", "Tensor"]),
        ((torch.randn(3, 4), torch.randn(5, 4).double(), torch.randn(5, 2)), TypeError, ["dtype"]),
        ((torch.ones(3, 4, dtype=torch.long), torch.randn(5, 4), torch.randn(5, 2)), TypeError, ["q", "floating"]),
        ((torch.randn(2, 3, 4), torch.randn(3, 5, 4), torch.randn(3, 5, 2)), ValueError, ["broadcast"]),
    ],
)
def test_bad_inputs_are_named(args, error, words):
    with pytest.raises(error) as info:
        scaled_dot_product_attention(*args)
    for word in words:
        assert word in str(info.value)


def test_bad_masks_are_refused():
    q, k, v = torch.randn(2, 3, 4), torch.randn(2, 5, 4), torch.randn(2, 5, 2)
    with pytest.raises(TypeError, match="torch.bool"):
        scaled_dot_product_attention(q, k, v, torch.ones(3, 5, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"\(3, 4\).*\(2, 3, 5\)"):
        scaled_dot_product_attention(q, k, v, torch.ones(3, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not broadcast"):
        # broadcasting would *grow* the scores: refused, not silently expanded
        scaled_dot_product_attention(q, k, v, torch.ones(4, 2, 3, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask"):
        scaled_dot_product_attention(q, k, v, [[True] * 5] * 3)


def copy_into_torch_mha(mha: MultiHeadAttention) -> torch.nn.MultiheadAttention:
    ref = torch.nn.MultiheadAttention(mha.d_model, mha.n_heads, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([mha.w_q.weight, mha.w_k.weight, mha.w_v.weight]))
        ref.in_proj_bias.copy_(torch.cat([mha.w_q.bias, mha.w_k.bias, mha.w_v.bias]))
        ref.out_proj.weight.copy_(mha.w_o.weight)
        ref.out_proj.bias.copy_(mha.w_o.bias)
    return ref


def test_multi_head_matches_nn_multiheadattention():
    torch.manual_seed(0)
    mha = MultiHeadAttention(32, 4).double()
    ref = copy_into_torch_mha(mha)
    x = rand(3, 7, 32)
    mask = torch.ones(7, 7, dtype=torch.bool).tril()
    with recording_attention(mha):
        out = mha(x, mask=mask)
    # PyTorch's attn_mask uses the opposite convention: True = NOT allowed
    ref_out, ref_w = ref(x, x, x, attn_mask=~mask, average_attn_weights=False)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
    torch.testing.assert_close(mha.attention_weights, ref_w, atol=1e-6, rtol=0)
    assert mha.attention_weights.shape == (3, 4, 7, 7)
    torch.testing.assert_close(mha(x, mask=mask), out, atol=1e-10, rtol=0)  # the fast path: same output
    with pytest.raises(RuntimeError, match="recording_attention"):
        mha.attention_weights  # noqa: B018 - a fast call leaves no stale weights of an earlier call


def test_cross_attention_matches_nn_multiheadattention():
    torch.manual_seed(1)
    mha = MultiHeadAttention(24, 3).double()
    ref = copy_into_torch_mha(mha)
    x, ctx = rand(2, 5, 24), rand(2, 9, 24, seed=1)
    pad = torch.ones(2, 9, dtype=torch.bool)
    pad[1, 6:] = False
    out = mha(x, context=ctx, mask=pad[:, None, None, :])  # the fused kernel
    ref_out, _ = ref(x, ctx, ctx, key_padding_mask=~pad)
    torch.testing.assert_close(out, ref_out, atol=1e-6, rtol=0)
    with pytest.raises(RuntimeError, match="recording_attention"):
        mha.attention_weights  # noqa: B018 - the fast path keeps no weights, and says how to get them
    with recording_attention(mha):
        torch.testing.assert_close(mha(x, context=ctx, mask=pad[:, None, None, :]), ref_out, atol=1e-6, rtol=0)
    assert mha.attention_weights.shape == (2, 3, 5, 9)
    assert mha.record_weights is False  # the block restored the fast path


def test_multi_head_without_bias_and_dropout_in_eval():
    mha = MultiHeadAttention(16, 2, dropout=0.5, bias=False).eval()
    assert mha.w_q.bias is None
    x = torch.randn(1, 4, 16)
    torch.testing.assert_close(mha(x), mha(x))  # dropout is off in eval mode
    mha.train()
    torch.manual_seed(0)
    a = mha(x)
    torch.manual_seed(1)
    assert not torch.allclose(a, mha(x)), "dropout should act in training mode"


def test_multi_head_bad_arguments():
    with pytest.raises(ValueError, match="n_heads=3 does not divide d_model=32"):
        MultiHeadAttention(32, 3)
    with pytest.raises(ValueError, match="d_model must be > 0"):
        MultiHeadAttention(0, 1)
    with pytest.raises(TypeError, match="n_heads must be an int"):
        MultiHeadAttention(32, 4.0)
    with pytest.raises(ValueError, match="dropout"):
        MultiHeadAttention(32, 4, dropout=1.5)
    mha = MultiHeadAttention(32, 4)
    with pytest.raises(ValueError, match=r"\(batch, seq, d_model=32\), got \(2, 5, 16\)"):
        mha(torch.randn(2, 5, 16))
    with pytest.raises(ValueError, match=r"got \(5, 32\)"):
        mha(torch.randn(5, 32))
    with pytest.raises(ValueError, match="context has batch size 3"):
        mha(torch.randn(2, 5, 32), context=torch.randn(3, 5, 32))


def _fused_and_course(module, *args, **kwargs):
    """(output, gradients) of ``module`` on the fused path and on the recording (course) path."""
    results = []
    for record in (False, True):
        module.zero_grad()
        for m in module.modules():
            if isinstance(m, MultiHeadAttention):
                m.record_weights = record
        out = module(*args, **kwargs)
        out = out[1] if isinstance(out, tuple) else out
        out.float().square().sum().backward()
        results.append((out.detach(), {n: p.grad.clone() for n, p in module.named_parameters() if p.grad is not None}))
    for m in module.modules():
        if isinstance(m, MultiHeadAttention):
            m.record_weights = False
    return results


@pytest.mark.parametrize("case", ["causal", "padding with hidden rows", "cross", "no mask"])
def test_fused_attention_equals_the_course_attention_outputs_and_gradients(case):
    """The fast path (PyTorch's fused kernel) and the course's own attention agree in float32 (issue: 1e-5)."""
    torch.manual_seed(3)
    mha = MultiHeadAttention(32, 4)
    x = torch.randn(3, 9, 32)
    kwargs = {"causal": dict(is_causal=True), "cross": dict(context=torch.randn(3, 5, 32)), "no mask": {}}.get(case)
    if case == "padding with hidden rows":
        keys = torch.ones(3, 9, dtype=torch.bool)
        keys[1, 4:] = False
        keys[2, :] = False  # row 2 may attend nowhere: zero output on both paths, never NaN
        kwargs = dict(mask=torch.ones(9, 9, dtype=torch.bool).tril() & keys[:, None, None, :])
    (fast, fast_grads), (course, course_grads) = _fused_and_course(mha, x, **kwargs)
    assert torch.isfinite(fast).all()
    torch.testing.assert_close(fast, course, atol=1e-5, rtol=0)
    assert fast_grads.keys() == course_grads.keys() and len(fast_grads) == 8
    for name in fast_grads:
        torch.testing.assert_close(fast_grads[name], course_grads[name], atol=1e-5, rtol=1e-4, msg=name)


def test_fused_attention_is_causal_equals_the_explicit_causal_mask():
    q, k, v = (torch.randn(2, 3, 6, 8, generator=torch.Generator().manual_seed(i)) for i in range(3))
    explicit = fused_attention(q, k, v, mask=torch.ones(6, 6, dtype=torch.bool).tril())
    torch.testing.assert_close(fused_attention(q, k, v, is_causal=True), explicit, atol=1e-6, rtol=0)
    torch.testing.assert_close(explicit, scaled_dot_product_attention(q, k, v, torch.ones(6, 6, dtype=torch.bool).tril())[0],
                               atol=1e-6, rtol=0)


def test_is_causal_refuses_what_it_cannot_mean():
    mha = MultiHeadAttention(8, 2)
    x = torch.randn(1, 3, 8)
    with pytest.raises(ValueError, match="pass mask=None and context=None"):
        mha(x, mask=torch.ones(3, 3, dtype=torch.bool), is_causal=True)
    with pytest.raises(TypeError, match="mask must have dtype torch.bool"):
        mha(x, mask=torch.ones(3, 3))  # the fast path checks the mask as the course's function does
    with pytest.raises(TypeError, match="no MultiHeadAttention"):
        with recording_attention(torch.nn.Linear(2, 2)):
            pass
