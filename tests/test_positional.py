"""The sinusoidal table against a brute-force loop (course_lib.positional)."""
import math

import pytest
import torch

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

