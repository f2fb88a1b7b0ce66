"""sinusoidal_table against a brute-force double loop; masks against torch.tril."""
import math

import pytest
import torch

from course_lib.masks import causal_mask, padding_mask
from course_lib.positional import sinusoidal_table


@pytest.mark.parametrize("n_positions, d_model", [(1, 2), (50, 16), (20, 7), (128, 64)])
def test_sinusoidal_table_matches_double_loop(n_positions, d_model):
    table = sinusoidal_table(n_positions, d_model, dtype=torch.float64)
    assert table.shape == (n_positions, d_model)
    for pos in range(n_positions):
        for j in range(d_model):
            i = j // 2
            angle = pos / 10000 ** (2 * i / d_model)
            expected = math.sin(angle) if j % 2 == 0 else math.cos(angle)
            assert abs(table[pos, j].item() - expected) < 1e-12


def test_sinusoidal_table_default_dtype_and_relative_position_rotation():
    table = sinusoidal_table(100, 32)
    assert table.dtype == torch.float32
    # PE[p + k] is a fixed rotation of PE[p] in each (sin, cos) pair: check for k = 5
    t = sinusoidal_table(100, 32, dtype=torch.float64)
    k = 5
    for i in range(16):
        w = 1 / 10000 ** (2 * i / 32)
        # row vectors [sin, cos] times R: sin(a+b) = sin a cos b + cos a sin b, cos(a+b) = cos a cos b - sin a sin b
        rot = torch.tensor([[math.cos(k * w), -math.sin(k * w)], [math.sin(k * w), math.cos(k * w)]], dtype=torch.float64)
        pair = t[:, 2 * i : 2 * i + 2]
        torch.testing.assert_close(pair[:-k] @ rot, pair[k:], atol=1e-10, rtol=0)


def test_sinusoidal_table_bad_sizes():
    with pytest.raises(ValueError, match="n_positions must be >= 0, got -1"):
        sinusoidal_table(-1, 8)
    with pytest.raises(ValueError, match="d_model must be > 0, got 0"):
        sinusoidal_table(4, 0)
    with pytest.raises(TypeError, match="d_model must be an int"):
        sinusoidal_table(4, 8.0)
    assert sinusoidal_table(0, 8).shape == (0, 8)


@pytest.mark.parametrize("n", [0, 1, 5, 33])
def test_causal_mask_matches_tril(n):
    mask = causal_mask(n)
    assert mask.dtype == torch.bool and mask.shape == (n, n)
    assert torch.equal(mask, torch.tril(torch.ones(n, n)).bool())


def test_causal_mask_bad_size():
    with pytest.raises(ValueError, match="seq_len must be >= 0, got -3"):
        causal_mask(-3)


def test_padding_mask_shape_values_and_combination():
    ids = torch.tensor([[5, 6, 7, 0, 0], [8, 9, 0, 0, 0]])
    mask = padding_mask(ids, pad_id=0)
    assert mask.shape == (2, 1, 1, 5) and mask.dtype == torch.bool
    assert mask[0, 0, 0].tolist() == [True, True, True, False, False]
    both = causal_mask(5) & mask
    assert both.shape == (2, 1, 5, 5)
    for b in range(2):
        for i in range(5):
            for j in range(5):
                assert both[b, 0, i, j].item() == (j <= i and ids[b, j].item() != 0)


def test_padding_mask_bad_inputs():
    with pytest.raises(ValueError, match=r"token_ids must have 2 dimensions, got shape \(5,\)"):
        padding_mask(torch.tensor([1, 2, 0, 0, 0]), 0)
    with pytest.raises(TypeError, match="integer token ids"):
        padding_mask(torch.zeros(2, 3), 0)
    with pytest.raises(TypeError, match="pad_id must be an int"):
        padding_mask(torch.zeros(2, 3, dtype=torch.long), "<pad>")
