"""LoRA: fine-tune a large model by training two thin matrices beside each frozen weight (introduced in notebook 20).

Hu et al. 2021. A linear layer's weight ``W`` (``out x in``) stays frozen; beside it sit ``A``
(``rank x in``) and ``B`` (``out x rank``) with ``rank`` far below ``in`` and ``out``, and the layer
computes::

    y = x W^T + b  +  (alpha / rank) * x A^T B^T

``B`` starts at zero, so the wrapped model starts exactly equal to the original; ``A`` starts
random (Kaiming-uniform, as in the paper's code and ``peft``), so the gradient of ``B`` is not
zero. Training updates ``rank * (in + out)`` numbers per layer instead of ``in * out``, and
AdamW's two moments exist only for those. Afterwards ``merge_lora`` folds ``(alpha / rank) B A``
into ``W``: the same function, no extra cost at inference. Equal to ``peft``'s LoRA (tested).
"""
import math

import torch
from torch import nn

from ._validate import require_finite_number, require_positive_int


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` plus a trainable low-rank update ``(alpha / rank) * B @ A`` (notebook 20)."""

    def __init__(self, base, rank, alpha):
        super().__init__()
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        require_positive_int("rank", rank)
        require_finite_number("alpha", alpha, low=0.0, low_open=True)
        if rank > min(base.in_features, base.out_features):
            raise ValueError(f"rank={rank} is larger than the layer ({base.out_features} x {base.in_features}): "
                             "a low-rank update needs rank <= min(in_features, out_features)")
        self.base, self.rank, self.alpha = base, rank, float(alpha)
        self.scaling = self.alpha / rank
        for p in base.parameters():
            p.requires_grad_(False)
        weight = base.weight
        self.lora_A = nn.Parameter(torch.empty(rank, base.in_features, dtype=weight.dtype, device=weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, rank, dtype=weight.dtype, device=weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))  # nn.Linear's own initialisation, as peft does

    def forward(self, x):  # (..., in_features) -> (..., out_features)
        return self.base(x) + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling

    def delta_weight(self):
        """The update this adapter adds to the base weight: ``(alpha / rank) * B @ A``, ``(out, in)``."""
        return (self.lora_B @ self.lora_A) * self.scaling

    def extra_repr(self):
        return f"rank={self.rank}, alpha={self.alpha:g}"


def add_lora(model, rank, alpha, targets=None):
    """Wrap ``model``'s linear layers in ``LoRALinear`` in place and freeze everything else; return ``model`` (notebook 20).

    ``targets``: the names (last part) of the layers to wrap, e.g. ``("q_proj", "v_proj")``;
    default: every ``nn.Linear`` except the output layer ``lm_head`` (tied to the embedding in
    most small models, and as large as the vocabulary). Only the adapters' ``lora_A`` and
    ``lora_B`` are left trainable.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"add_lora adapts a torch.nn.Module, got {type(model).__name__}")
    require_positive_int("rank", rank)
    require_finite_number("alpha", alpha, low=0.0, low_open=True)
    if any(isinstance(m, LoRALinear) for m in model.modules()):
        raise ValueError("this model already has LoRA adapters: merge them (merge_lora) before adding new ones")
    chosen = [(name, module) for name, module in model.named_modules()
              if isinstance(module, nn.Linear) and _is_target(name, targets)]
    if not chosen:
        raise ValueError(f"no linear layer of the model matches targets={targets!r}")
    for p in model.parameters():
        p.requires_grad_(False)
    for name, module in chosen:
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, LoRALinear(module, rank, alpha))
    return model


def _is_target(name, targets):
    last = name.rpartition(".")[2]
    if targets is None:
        return last != "lm_head"
    return last in targets


@torch.no_grad()
def merge_lora(model):
    """Fold every adapter into its base weight, ``W += (alpha / rank) B A``, and put the plain ``nn.Linear`` back (notebook 20).

    The model computes the same function (up to rounding) with no adapter left; its parameters
    stay frozen as ``add_lora`` left them (call ``requires_grad_(True)`` to train it fully). Returns ``model``.
    """
    adapted = [(name, module) for name, module in model.named_modules() if isinstance(module, LoRALinear)]
    if not adapted:
        raise ValueError("this model has no LoRA adapters to merge (add them with add_lora)")
    for name, module in adapted:
        module.base.weight += module.delta_weight().to(module.base.weight.dtype)
        parent, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent) if parent else model, child, module.base)
    return model


def trainable_parameters(model):
    """``(trainable, total)`` parameter counts, each tensor counted once (notebook 20)."""
    seen, trainable, total = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel()
        trainable += p.numel() if p.requires_grad else 0
    return trainable, total
