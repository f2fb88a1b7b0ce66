"""A key/value cache for fast generation (introduced in notebook 11).

Generating token n+1 needs the keys and values of tokens 0..n in every layer. Without a cache the
model recomputes all of them at every step; with one it computes them once and appends the new
token's, so each step costs one token's worth of work (plus attention over the cache).
"""
import torch

from ._validate import require_positive_int, require_tensor


class KVCache:
    """Per-layer keys and values, each ``(batch, heads, positions, head_dim)``, grown step by step (notebook 11)."""

    def __init__(self, n_layers):
        require_positive_int("n_layers", n_layers)
        self.keys = [None] * n_layers
        self.values = [None] * n_layers

    def __len__(self):
        """How many positions are cached (the same in every layer)."""
        return 0 if self.keys[0] is None else self.keys[0].shape[-2]

    def cached(self, layer):
        """How many positions ``layer`` holds (during a forward pass, lower layers are ahead)."""
        self._check_layer(layer)
        return 0 if self.keys[layer] is None else self.keys[layer].shape[-2]

    def update(self, layer, k, v):
        """Append this step's ``k``, ``v`` for ``layer``; return all keys and values so far."""
        self._check_update(layer, k, v)
        if self.keys[layer] is None:
            self.keys[layer], self.values[layer] = k, v
        else:
            self.keys[layer] = torch.cat([self.keys[layer], k], dim=-2)  # (batch, heads, past + T, head_dim)
            self.values[layer] = torch.cat([self.values[layer], v], dim=-2)
        return self.keys[layer], self.values[layer]

    def _check_layer(self, layer):
        if isinstance(layer, bool) or not isinstance(layer, int) or not 0 <= layer < len(self.keys):
            raise ValueError(f"layer must be an int in [0, {len(self.keys)}) for a KVCache of "
                             f"{len(self.keys)} layers, got {layer!r}: build KVCache(model.config.n_layers)")

    def _check_update(self, layer, k, v):
        self._check_layer(layer)
        require_tensor("k", k, dim=4, floating=True)
        require_tensor("v", v, dim=4, floating=True)
        if k.shape[:-1] != v.shape[:-1]:
            raise ValueError(f"k and v must agree on (batch, heads, positions), got {tuple(k.shape)} and {tuple(v.shape)}")
        held = self.keys[layer]
        if held is not None and (held.shape[:2] != k.shape[:2] or held.shape[-1] != k.shape[-1]):
            raise ValueError(f"this cache holds (batch, heads, ., head_dim) = {tuple(held.shape)} in layer {layer}, "
                             f"got k of shape {tuple(k.shape)}: use a new KVCache for a new batch")
