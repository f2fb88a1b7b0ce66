"""The GPT model and its configuration (introduced in notebook 06)."""
import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ._validate import (
    check_dropout,
    is_compiling,
    require_finite_number,
    require_positive_int,
    require_tensor,
    require_token_ids,
)
from .decoder import FEED_FORWARDS, NORMS, DecoderBlock, block_mask, make_norm
from .masks import padding_mask
from .modern import rope_tables
from .positional import sinusoidal_table

POSITIONS = ("sinusoidal", "learned", "rope")
#: the longest context a GPTConfig accepts: its position tables are allocated whole (1 M positions x d_model)
MAX_CONTEXT = 1 << 20


def _field(default, help):
    return field(default=default, metadata={"help": help})


@dataclass
class GPTConfig:
    """Everything that fixes a GPT's shape (notebook 06). The defaults are the course's small model (notebook 07).

    Each field's ``help`` (in its metadata) is also the command line's help for its flag.
    """

    vocab_size: int = field(metadata={"help": "number of distinct tokens (from the tokenizer)"})
    context_length: int = _field(32, "longest sequence the model reads, in tokens")
    d_model: int = _field(64, "model width: the size of every token's vector")
    n_heads: int = _field(4, "attention heads; must divide d_model")
    n_layers: int = _field(2, "decoder blocks")
    d_ff: int = _field(256, "feed-forward width inside each block")
    dropout: float = _field(0.0, "dropout probability, in [0, 1)")
    positions: str = _field("sinusoidal", "position embeddings: 'sinusoidal' (a fixed table), 'learned', or 'rope' "
                                          "(rotary, notebook 17)")
    tie_weights: bool = _field(True, "the output layer shares the token embedding matrix")
    scale_embeddings: bool = _field(True, "multiply token vectors by sqrt(d_model) (Vaswani et al. 3.4; notebook 06)")
    activation: str = _field("gelu", "the feed-forward: 'gelu' (exact), 'gelu_tanh' (GPT-2's approximation, notebook 13) "
                                     "or 'swiglu' (Llama's gated network, notebook 17)")
    bias: bool = _field(True, "biases in the linear layers and LayerNorms (GPT-2 has them)")
    norm: str = _field("layernorm", "normalisation: 'layernorm' (GPT-2) or 'rmsnorm' (Llama, notebook 17)")
    norm_eps: float = _field(1e-5, "the normalisation's epsilon")
    n_kv_heads: int = _field(None, "key/value heads (grouped-query attention, notebook 17), dividing n_heads; "
                                   "None: as many as n_heads")
    rope_base: float = _field(10000.0, "RoPE's base: the slowest pair turns by position * base**(-1 + 2/head_dim)")

    def __post_init__(self):
        for name in ("vocab_size", "context_length", "d_model", "n_heads", "n_layers", "d_ff"):
            require_positive_int(name, getattr(self, name))
        if self.context_length > MAX_CONTEXT:  # checked before a position table of that many rows is allocated
            raise ValueError(f"context_length={self.context_length:,} is more than the course's models hold "
                             f"(at most {MAX_CONTEXT:,}; SmolLM2's is 8,192)")
        if self.d_model % self.n_heads != 0:
            raise ValueError(f"n_heads={self.n_heads} does not divide d_model={self.d_model}")
        if self.positions not in POSITIONS:
            raise ValueError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        if self.activation not in FEED_FORWARDS:
            raise ValueError(f"activation must be one of {sorted(FEED_FORWARDS)}, got {self.activation!r}")
        if self.norm not in NORMS:
            raise ValueError(f"norm must be one of {NORMS}, got {self.norm!r}")
        check_dropout(self.dropout)
        for name in ("tie_weights", "scale_embeddings", "bias"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")
        require_finite_number("norm_eps", self.norm_eps, low=0.0, low_open=True)
        if self.n_kv_heads is not None:
            require_positive_int("n_kv_heads", self.n_kv_heads)
            if self.n_heads % self.n_kv_heads:
                raise ValueError(f"n_kv_heads={self.n_kv_heads} must divide n_heads={self.n_heads}: each key/value "
                                 "head serves a whole group of query heads")
        if self.positions == "rope":
            require_finite_number("rope_base", self.rope_base, low=1.0, low_open=True)
            if (self.d_model // self.n_heads) % 2:
                raise ValueError(f"positions='rope' needs an even head size, got d_model / n_heads = "
                                 f"{self.d_model // self.n_heads}")

    def to_dict(self):
        return asdict(self)


class GPT(nn.Module):
    """A decoder-only Transformer language model.

    Introduced in notebook 06. ``forward(token_ids)`` returns logits ``(batch, seq, vocab)``;
    ``forward(token_ids, targets, pad_id=...)`` returns ``(logits, loss)`` where the loss is the
    mean next-token cross-entropy over the targets that are not padding.

    ``forward(token_ids, cache=KVCache(n_layers))`` (notebook 11) treats ``token_ids`` as the
    continuation of the positions already in the cache and appends their keys and values to it.

    With ``positions="rope"`` (notebook 17) nothing is added to the token vectors: every block
    rotates its queries and keys by their positions (``course_lib.modern.apply_rope``).

    Batched generation (notebook 21) passes two more: ``positions`` ``(batch, T)``, each token's
    position in its own row (a left-padded row starts later), and ``key_mask`` ``(batch, past + T)``,
    True where a key is a real token and False at padding, for the cached keys too.
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
        elif c.positions == "rope":
            cos, sin = rope_tables(c.context_length, c.d_model // c.n_heads, c.rope_base)  # (context, head_dim) each
            self.register_buffer("rope_cos", cos, persistent=False)  # computed, never trained or saved
            self.register_buffer("rope_sin", sin, persistent=False)
        else:
            # A buffer, not a parameter: it moves with .to(device) but is never trained or saved.
            self.register_buffer("position_table", sinusoidal_table(c.context_length, c.d_model), persistent=False)
        self.embedding_scale = math.sqrt(c.d_model)
        self.dropout = nn.Dropout(c.dropout)
        self.blocks = nn.ModuleList(DecoderBlock(c.d_model, c.n_heads, c.d_ff, c.dropout, c.activation, c.bias,
                                                 c.norm, c.norm_eps, c.n_kv_heads) for _ in range(c.n_layers))
        self.ln_f = make_norm(c.norm, c.d_model, c.norm_eps, c.bias)
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

    def forward(self, token_ids, targets=None, pad_id=None, cache=None, positions=None, key_mask=None):
        c = self.config
        self._check_inputs(token_ids, targets, pad_id, cache)
        self._check_rows(token_ids, cache, positions, key_mask, pad_id)
        batch, T = token_ids.shape
        past = len(cache) if cache is not None else 0
        if positions is None:  # along the SEQUENCE, whatever the batch size: (T,)
            positions = torch.arange(past, past + T, device=token_ids.device)
        rope = None
        if c.positions == "learned":
            pos = self.position_embedding(positions)  # (T, d_model), or (batch, T, d_model) with a position per row
        elif c.positions == "rope":
            pos = 0  # nothing added: the blocks rotate queries and keys instead
            if positions.dim() == 1:
                rope = (self.rope_cos[past:past + T], self.rope_sin[past:past + T])  # (T, head_dim) each
            else:  # a position per row: (batch, 1, T, head_dim), broadcast over the heads
                rope = (self.rope_cos[positions][:, None], self.rope_sin[positions][:, None])
        else:
            pos = self.position_table[positions]  # (T, d_model), or (batch, T, d_model)
        tokens = self.token_embedding(token_ids)  # (batch, T, d_model)
        if c.scale_embeddings:
            tokens = tokens * self.embedding_scale  # so the small N(0, 0.02) word vectors are not drowned by positions
        x = self.dropout(tokens + pos)  # (batch, T, d_model)
        padding = padding_mask(token_ids, pad_id) if pad_id is not None else None  # (batch, 1, 1, T)
        mask = block_mask(T, padding, cache, device=token_ids.device, key_mask=key_mask)  # built once, for every block
        for layer, block in enumerate(self.blocks):
            x = block(x, cache=cache, layer=layer, attn_mask=mask, rope=rope)  # (batch, T, d_model)
        logits = self.lm_head(self.ln_f(x))  # (batch, T, vocab_size)
        if targets is None:
            return logits
        loss = F.cross_entropy(
            logits.reshape(-1, c.vocab_size),
            targets.reshape(-1),
            ignore_index=pad_id if pad_id is not None else -100,  # padding never counts
        )
        return logits, loss

    def _check_inputs(self, token_ids, targets, pad_id, cache):
        c = self.config
        require_tensor("token_ids", token_ids, dim=2, integer=True)
        batch, T = token_ids.shape
        past = len(cache) if cache is not None else 0
        if batch == 0 or T == 0:
            raise ValueError(f"token_ids is empty (shape {tuple(token_ids.shape)}): give at least one row of "
                             "at least one token, e.g. the <sos> id")
        if past + T > c.context_length:
            cached = f"{past} cached + " if past else ""
            raise ValueError(
                f"token_ids has {cached}{T} positions but the model's context_length is {c.context_length}; "
                f"pass at most the last {c.context_length} tokens (generate() crops for you)")
        checking_values = not is_compiling()  # reading values syncs and breaks torch.compile's graph (notebook 12)
        if checking_values:
            require_token_ids("token_ids", token_ids, c.vocab_size)
        if pad_id is not None and (isinstance(pad_id, bool) or not isinstance(pad_id, int)):
            raise TypeError(f"pad_id must be an int token id or None, got {type(pad_id).__name__}")
        if targets is not None:
            require_tensor("targets", targets, integer=True)
            if targets.shape != token_ids.shape:
                raise ValueError(f"targets must have the shape of token_ids {tuple(token_ids.shape)}, got {tuple(targets.shape)}")
            if checking_values:
                require_token_ids("targets", targets, c.vocab_size, ignore_index=pad_id if pad_id is not None else -100)

    def _check_rows(self, token_ids, cache, positions, key_mask, pad_id):
        batch, T = token_ids.shape
        past = len(cache) if cache is not None else 0
        if positions is not None:
            require_tensor("positions", positions, dim=2, integer=True)
            if positions.shape != token_ids.shape:
                raise ValueError(f"positions must have the shape of token_ids {tuple(token_ids.shape)} (one position per "
                                 f"token), got {tuple(positions.shape)}")
            if not is_compiling() and positions.numel():
                low, high = (int(v) for v in torch.aminmax(positions))
                if low < 0 or high >= self.config.context_length:
                    raise ValueError(f"positions must be in [0, {self.config.context_length}) (the context), got values "
                                     f"from {low} to {high}")
        if key_mask is not None:
            if not isinstance(key_mask, torch.Tensor) or key_mask.dtype != torch.bool:
                raise TypeError(f"key_mask must be a bool tensor (True = a real token), got "
                                f"{getattr(key_mask, 'dtype', type(key_mask).__name__)}")
            if tuple(key_mask.shape) != (batch, past + T):
                raise ValueError(f"key_mask must be (batch, cached + new) = ({batch}, {past + T}), one flag per key, "
                                 f"got {tuple(key_mask.shape)}")
            if pad_id is not None:
                raise ValueError("pass either pad_id or key_mask, not both: both say which keys are padding")

    @property
    def attention_weights(self):
        """The last forward pass's attention weights: one ``(batch, heads, T, T)`` tensor per layer.

        Kept only for a forward pass run inside ``with course_lib.attention.recording_attention(model):``
        (notebook 12): the fast path never builds them.
        """
        return [block.attn.attention_weights for block in self.blocks]

    def num_parameters(self):
        """Trainable parameters, each counted once (a tied matrix is one matrix)."""
        return sum(p.numel() for p in self.parameters())


@torch.no_grad()
def grow_vocabulary(model, vocab_size):
    """A copy of ``model`` that reads and writes ``vocab_size`` tokens: new ones (e.g. chat markers) get new rows (notebook 14).

    The old rows are copied unchanged, so every token the model knew means what it meant. Each new
    row starts as the *mean* of the old ones (Hewitt 2021): a new token then looks like an average
    token instead of a random direction, and its logit starts near the others' instead of at a
    value that would swamp them. ``model`` itself is left as it was.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"grow_vocabulary grows a course_lib GPT, got {type(model).__name__}")
    old = model.config.vocab_size
    require_positive_int("vocab_size", vocab_size)
    if vocab_size < old:
        raise ValueError(f"vocab_size={vocab_size} is smaller than the model's {old}: tokens cannot be removed this way")
    grown = GPT(GPTConfig(**{**model.config.to_dict(), "vocab_size": vocab_size})).to(next(model.parameters()).device)
    state = model.state_dict()
    for name in ("token_embedding.weight", "lm_head.weight"):
        rows = state[name]  # (old, d_model)
        mean, spread = rows.mean(dim=0), rows.std(dim=0)  # (d_model,) each
        new = mean + spread * torch.randn(vocab_size - old, rows.shape[1], device=rows.device)  # (new, d_model)
        state[name] = torch.cat([rows, new.to(rows.dtype)])
    grown.load_state_dict(state)
    grown.train(model.training)
    return grown
