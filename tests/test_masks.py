"""Causal and padding masks against torch.tril and by hand (course_lib.masks)."""
import pytest
import torch

from course_lib.masks import causal_mask, padding_mask


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

