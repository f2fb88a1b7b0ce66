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


def expect_close(actual, expected, name="the result", atol=1e-6):
    """Assert that ``actual`` matches ``expected`` in shape, kind of dtype (integer, floating-point,
    boolean) and, within ``atol``, in value (notebook 01)."""
    expected = torch.as_tensor(expected)
    expect_shape(actual, expected.shape, name)
    if _kind(actual.dtype) != _kind(expected.dtype):
        raise AssertionError(f"{name} has dtype {actual.dtype}, expected {_kind(expected.dtype)} values "
                             f"like {expected.dtype}")
    a = actual.detach().cpu().to(torch.float64)
    e = expected.detach().cpu().to(torch.float64)
    same = (a == e) | (a.isnan() & e.isnan())  # equal infinities (masked logits) count as exact
    diff = torch.where(same, torch.zeros_like(a), (a - e).abs().nan_to_num(nan=float("inf")))
    if diff.numel() and diff.max().item() > atol:
        where = tuple(int(i) for i in torch.unravel_index(diff.argmax(), diff.shape))
        raise AssertionError(
            f"{name} differs from the reference by up to {diff.max().item():.3g} (allowed {atol:g}), "
            f"first at index {where}: got {a[where].item():.6g}, expected {e[where].item():.6g}")


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
