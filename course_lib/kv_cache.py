"""A key/value cache for fast generation (introduced in notebook 11).

Generating token n+1 needs the keys and values of tokens 0..n in every layer. Without a cache the
model recomputes all of them at every step; with one it computes them once and appends the new
token's, so each step costs one token's worth of work (plus attention over the cache).
"""
import torch


class KVCache:
    """Per-layer keys and values, each ``(batch, heads, positions, head_dim)``, grown step by step."""

    def __init__(self, n_layers):
        self.keys = [None] * n_layers
        self.values = [None] * n_layers

    def __len__(self):
        """How many positions are cached (the same in every layer)."""
        return 0 if self.keys[0] is None else self.keys[0].shape[-2]

    def cached(self, layer):
        """How many positions ``layer`` holds (during a forward pass, lower layers are ahead)."""
        return 0 if self.keys[layer] is None else self.keys[layer].shape[-2]

    def update(self, layer, k, v):
        """Append this step's ``k``, ``v`` for ``layer``; return all keys and values so far."""
        if self.keys[layer] is None:
            self.keys[layer], self.values[layer] = k, v
        else:
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=-2)  # (batch, heads, past + T, head_dim)
            self.values[layer] = torch.cat([self.values[layer], v], dim=-2)
        return self.keys[layer], self.values[layer]
