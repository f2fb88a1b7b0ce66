"""course_lib.checks: the self-study messages say what is wrong."""
import pytest
import torch

from course_lib import checks


def test_answered_names_missing_answers():
    checks.answered(a=1, b="B")
    with pytest.raises(NotImplementedError, match="set b, c"):
        checks.answered(a=1, b=None, c=None)


def test_expect_close_reports_shape_then_values():
    checks.expect_close(torch.tensor([1.0, float("-inf")]), torch.tensor([1.0, float("-inf")]), atol=0)
    with pytest.raises(AssertionError, match=r"has shape \(2,\), expected \(3,\)"):
        checks.expect_close(torch.zeros(2), torch.zeros(3), "w")
    with pytest.raises(AssertionError, match=r"w differs from the reference by up to 0.5 .*index \(1, 0\): got 0.5, expected 0"):
        checks.expect_close(torch.tensor([[0.0], [0.5]]), torch.zeros(2, 1), "w")
    with pytest.raises(AssertionError, match="differs"):
        checks.expect_close(torch.tensor([float("nan")]), torch.tensor([0.0]))
    with pytest.raises(AssertionError, match="should be a torch.Tensor"):
        checks.expect_close([1.0], torch.tensor([1.0]))
    with pytest.raises(AssertionError, match="is 3, expected 4"):
        checks.expect_equal(3, 4)


def test_grading_generator_follows_the_instructors_seed(monkeypatch):
    monkeypatch.setenv("COURSE_GRADING_SEED", "spring-2027")
    a = torch.randn(5, generator=checks.grading_generator("ex01"))
    assert torch.equal(a, torch.randn(5, generator=checks.grading_generator("ex01")))  # one run is repeatable
    assert not torch.equal(a, torch.randn(5, generator=checks.grading_generator("ex02")))  # each test its own inputs
    monkeypatch.setenv("COURSE_GRADING_SEED", "autumn-2027")
    assert not torch.equal(a, torch.randn(5, generator=checks.grading_generator("ex01")))  # another seed, other inputs
    monkeypatch.delenv("COURSE_GRADING_SEED")
    fresh = [torch.randn(5, generator=checks.grading_generator("ex01")) for _ in range(2)]
    assert not torch.equal(*fresh)  # no seed: new inputs every run
