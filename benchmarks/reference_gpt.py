"""An independent small GPT in the style of nanoGPT's model.py, for side-by-side measurements.

Written separately from course_lib (fused q/k/v projection, learned positions, PyTorch's own
scaled_dot_product_attention, GPT-2's initialisation with the scaled residual projections, tied
head), so that a benchmark compares the course's model with a well-made reference rather than with
itself. Same call signature as ``course_lib.gpt.GPT``: ``model(ids)`` gives logits and
``model(ids, targets, pad_id=...)`` gives ``(logits, loss)``.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


class Block(nn.Module):
    def __init__(self, d_model, n_heads, d_ff):
        super().__init__()
        self.n_heads = n_heads
        self.ln_1, self.ln_2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
        self.c_attn = nn.Linear(d_model, 3 * d_model)
        self.c_proj = nn.Linear(d_model, d_model)
        self.c_fc, self.mlp_proj = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.c_attn(self.ln_1(x)).split(C, dim=2)
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(B, T, C)
        x = x + self.c_proj(y)
        return x + self.mlp_proj(F.gelu(self.c_fc(self.ln_2(x))))


class ReferenceGPT(nn.Module):
    def __init__(self, vocab_size, context_length=32, d_model=64, n_heads=4, n_layers=2, d_ff=256):
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab_size, d_model), nn.Embedding(context_length, d_model)
        self.h = nn.ModuleList(Block(d_model, n_heads, d_ff) for _ in range(n_layers))
        self.ln_f = nn.LayerNorm(d_model)
        self.lm_head = nn.Linear(d_model, vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight
        for name, p in self.named_parameters():
            if p.dim() == 2:
                nn.init.normal_(p, 0.0, 0.02)
            elif name.endswith("bias"):
                nn.init.zeros_(p)
        for block in self.h:  # GPT-2: residual projections scaled by 1/sqrt(2 n_layers)
            nn.init.normal_(block.c_proj.weight, 0.0, 0.02 / math.sqrt(2 * n_layers))
            nn.init.normal_(block.mlp_proj.weight, 0.0, 0.02 / math.sqrt(2 * n_layers))

    def forward(self, idx, targets=None, pad_id=None):
        x = self.wte(idx) + self.wpe(torch.arange(idx.shape[1], device=idx.device))
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        if targets is None:
            return logits
        loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100 if pad_id is None else pad_id)
        return logits, loss
