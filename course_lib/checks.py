"""Self-check helpers for the exercises: run them in a notebook, they say what is wrong.

The visible test cell under each exercise calls these, so a student working alone (without
nbgrader) gets a message naming the problem, not a bare ``AssertionError``. An unanswered
exercise raises ``NotImplementedError``, the same error nbgrader's student release raises.
"""
import torch


def answered(**answers):
    """Raise NotImplementedError naming every answer still set to None (notebook 01)."""
    missing = [name for name, value in answers.items() if value is None]
    if missing:
        raise NotImplementedError(
            f"not answered yet: set {', '.join(missing)} in the exercise cell above, then run it")


def expect_shape(tensor, expected, name="the result"):
    """Assert that ``tensor`` is a tensor of shape ``expected`` (notebook 11)."""
    if not isinstance(tensor, torch.Tensor):
        raise AssertionError(f"{name} should be a torch.Tensor, got {type(tensor).__name__}")
    if tuple(tensor.shape) != tuple(expected):
        raise AssertionError(f"{name} has shape {tuple(tensor.shape)}, expected {tuple(expected)}")


def expect_close(actual, expected, name="the result", atol=1e-6, mistakes=None):
    """Assert that ``actual`` matches ``expected`` in shape, kind of dtype (integer, floating-point,
    boolean) and, within ``atol``, in value (notebook 01).

    ``mistakes`` maps a hint to what a common mistake would give (e.g. ``{"divide by sqrt(d_k), not
    d_k": softmax(scores / d_k)}``): when ``actual`` matches one of them instead of ``expected``,
    the message names that mistake instead of only saying how far off the numbers are.
    """
    expected = torch.as_tensor(expected)
    expect_shape(actual, expected.shape, name)
    if _kind(actual.dtype) != _kind(expected.dtype):
        raise AssertionError(f"{name} has dtype {actual.dtype}, expected {_kind(expected.dtype)} values "
                             f"like {expected.dtype}")
    worst, where = _largest_difference(actual, expected)
    if worst <= atol:
        return
    for hint, wrong in (mistakes or {}).items():
        wrong = torch.as_tensor(wrong)
        if tuple(wrong.shape) == tuple(actual.shape) and _largest_difference(actual, wrong)[0] <= max(atol, 1e-6):
            raise AssertionError(f"{name} is not right: {hint}")
    a, e = actual.detach().cpu().to(torch.float64), expected.detach().cpu().to(torch.float64)
    raise AssertionError(
        f"{name} differs from the reference by up to {worst:.3g} (allowed {atol:g}), "
        f"first at index {where}: got {a[where].item():.6g}, expected {e[where].item():.6g}")


def _largest_difference(actual, expected):
    a = actual.detach().cpu().to(torch.float64)
    e = expected.detach().cpu().to(torch.float64)
    same = (a == e) | (a.isnan() & e.isnan())  # equal infinities (masked logits) count as exact
    diff = torch.where(same, torch.zeros_like(a), (a - e).abs().nan_to_num(nan=float("inf")))
    if not diff.numel():
        return 0.0, ()
    return diff.max().item(), tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))


def expect_equal(actual, expected, name="the answer"):
    """Assert ``actual == expected`` for plain values (ints, strings, tuples) (notebook 01)."""
    if actual != expected:
        raise AssertionError(f"{name} is {actual!r}, expected {expected!r}")


def _kind(dtype):
    if dtype == torch.bool:
        return "boolean"
    if dtype.is_floating_point:
        return "floating-point"
    if dtype.is_complex:
        return "complex"
    return "integer"


def grading_generator(name):
    """A ``torch.Generator`` for the inputs of a hidden test (notebook 01).

    Seeded from the instructor's ``COURSE_GRADING_SEED`` and the test's ``name``: one grading run
    can be repeated exactly, and reading the hidden tests' source tells nothing of the inputs they
    will draw. Without the variable the seed is fresh each run.
    """
    import hashlib
    import os
    import secrets

    seed = os.environ.get("COURSE_GRADING_SEED") or str(secrets.randbits(64))
    digest = hashlib.sha256(f"{seed}/{name}".encode()).digest()
    return torch.Generator().manual_seed(int.from_bytes(digest[:8], "little"))
