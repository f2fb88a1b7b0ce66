"""seed_everything (course_lib/__init__.py)."""
import random

import numpy as np
import pytest
import torch

import course_lib


def test_seed_everything_repeats_all_generators():
    course_lib.seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    course_lib.seed_everything(123)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a
    with pytest.raises(TypeError):
        course_lib.seed_everything("42")

