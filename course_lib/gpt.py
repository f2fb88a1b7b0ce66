"""The GPT model and its configuration (introduced in notebook 06)."""
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import require_positive_int, require_tensor
from .decoder import DecoderBlock
from .masks import padding_mask
from .positional import sinusoidal_table


@dataclass
class GPTConfig:
    """Everything that fixes a GPT's shape. The defaults are the course's small model (notebook 07)."""

    vocab_size: int
    context_length: int = 32
    d_model: int = 64
    n_heads: int = 4
    n_layers: int = 2
    d_ff: int = 256
    dropout: float = 0.0
    positions: str = "sinusoidal"  # or "learned"
    tie_weights: bool = True  # the output layer shares the token embedding matrix

    def __post_init__(self):
        for name in ("vocab_size", "context_length", "d_model", "n_heads", "n_layers", "d_ff"):
            require_positive_int(name, getattr(self, name))
        if self.d_model % self.n_heads != 0:
            raise ValueError(f"n_heads={self.n_heads} does not divide d_model={self.d_model}")
        if self.positions not in ("sinusoidal", "learned"):
            raise ValueError(f"positions must be 'sinusoidal' or 'learned', got {self.positions!r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")

    def to_dict(self):
        return asdict(self)


class GPT(nn.Module):
    """A decoder-only Transformer language model.

    Introduced in notebook 06. ``forward(token_ids)`` returns logits ``(batch, seq, vocab)``;
    ``forward(token_ids, targets, pad_id=...)`` returns ``(logits, loss)`` where the loss is the
    mean next-token cross-entropy over the targets that are not padding.

    ``forward(token_ids, cache=KVCache(n_layers))`` (notebook 11) treats ``token_ids`` as the
    continuation of the positions already in the cache and appends their keys and values to it.
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise TypeError(f"config must be a GPTConfig, got {type(config).__name__}")
        self.config = config
        c = config
        self.token_embedding = nn.Embedding(c.vocab_size, c.d_model)
        if c.positions == "learned":
            self.position_embedding = nn.Embedding(c.context_length, c.d_model)
        else:
            # A buffer, not a parameter: it moves with .to(device) but is never trained or saved.
            self.register_buffer("position_table", sinusoidal_table(c.context_length, c.d_model), persistent=False)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(DecoderBlock(c.d_model, c.n_heads, c.d_ff, c.dropout) for _ in range(c.n_layers))
        self.ln_f = nn.LayerNorm(c.d_model)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        self.apply(self._init_weights)
        if c.tie_weights:
            self.lm_head.weight = self.token_embedding.weight  # one matrix reads and writes words

    @staticmethod
    def _init_weights(module):
        # GPT-2's initialisation: small normal weights, zero biases.
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, token_ids, targets=None, pad_id=None, cache=None):
        c = self.config
        require_tensor("token_ids", token_ids, dim=2, integer=True)
        batch, T = token_ids.shape
        past = len(cache) if cache is not None else 0
        if past + T > c.context_length:
            cached = f"{past} cached + " if past else ""
            raise ValueError(
                f"token_ids has {cached}{T} positions but the model's context_length is {c.context_length}; "
                f"pass at most the last {c.context_length} tokens (generate() crops for you)"
            )
        if T == 0:
            raise ValueError("token_ids is empty: give at least one token, e.g. the <sos> id")
        low, high = (int(v) for v in torch.aminmax(token_ids))  # one pass, one sync
        if low < 0 or high >= c.vocab_size:
            raise ValueError(
                f"token ids must lie in [0, {c.vocab_size}) (vocab_size), got values from {low} to {high}"
            )
        positions = torch.arange(past, past + T, device=token_ids.device)  # along the SEQUENCE, whatever the batch size
        if c.positions == "learned":
            pos = self.position_embedding(positions)  # (T, d_model)
        else:
            pos = self.position_table[past:past + T]  # (T, d_model)
        x = self.dropout(self.token_embedding(token_ids) + pos)  # (batch, T, d_model)
        mask = padding_mask(token_ids, pad_id) if pad_id is not None else None  # (batch, 1, 1, T)
        for layer, block in enumerate(self.blocks):
            x = block(x, padding_mask=mask, cache=cache, layer=layer)  # (batch, T, d_model)
        logits = self.lm_head(self.ln_f(x))  # (batch, T, vocab_size)
        if targets is None:
            return logits
        require_tensor("targets", targets, integer=True)
        if targets.shape != token_ids.shape:
            raise ValueError(f"targets must have the shape of token_ids {tuple(token_ids.shape)}, got {tuple(targets.shape)}")
        loss = F.cross_entropy(
            logits.reshape(-1, c.vocab_size),
            targets.reshape(-1),
            ignore_index=pad_id if pad_id is not None else -100,  # padding never counts
        )
        return logits, loss

    @property
    def attention_weights(self):
        """The last forward pass's attention weights: one ``(batch, heads, T, T)`` tensor per layer."""
        return [block.attn.attention_weights for block in self.blocks]

    def num_parameters(self):
        """Trainable parameters, each counted once (a tied matrix is one matrix)."""
        return sum(p.numel() for p in self.parameters())
