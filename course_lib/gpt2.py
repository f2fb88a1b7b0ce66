"""The real GPT-2 inside the course's own model: its weights, mapped by hand, and its tokenizer (notebook 13).

GPT-2 is the model of notebooks 05-07 with four details fixed: learned positions, the tanh
approximation of GELU, no sqrt(d_model) scale on the embeddings, and a 50,257-token byte-level
BPE. ``load_gpt2`` reads OpenAI's published weights (in the Hugging Face format) into
``course_lib.gpt.GPT``; ``GPT2Tokenizer`` is notebook 09's BPE with GPT-2's pre-tokenisation, byte
table and merge ranks. ``tests/test_gpt2.py`` checks both against ``transformers`` and ``tiktoken``.

Reading safetensors files and downloading from the Hugging Face hub need the extra
``pip install "gpt-course[gpt2]"``; the tokenizer needs ``regex`` (same extra).
"""
import json
import math
import os
import socket
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from ._validate import token_id_list
from .gpt import GPT, GPTConfig

#: The released sizes: (layers, heads, width); all have context 1024 and 50,257 tokens.
GPT2_SIZES = {"gpt2": (12, 12, 768), "gpt2-medium": (24, 16, 1024), "gpt2-large": (36, 20, 1280), "gpt2-xl": (48, 25, 1600)}
EXTRA = 'pip install "gpt-course[gpt2]"  (or: pip install safetensors huggingface_hub regex)'
ENDOFTEXT = "<|endoftext|>"


def _require(module, what):
    try:
        return __import__(module)
    except ImportError:
        raise ImportError(f"{what} needs the {module!r} package: {EXTRA}") from None


# ---------------------------------------------------------------------------------------------- model


def config_from_hf(hf):
    """The ``GPTConfig`` of a Hugging Face GPT-2 ``config.json`` (as a dict) (notebook 13)."""
    if not isinstance(hf, dict):
        raise ValueError(f"config.json must be a JSON object, got {type(hf).__name__}")
    if hf.get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"config.json describes a {hf.get('model_type')!r} model, not GPT-2")
    activation = hf.get("activation_function", "gelu_new")
    activations = {"gelu_new": "gelu_tanh", "gelu_pytorch_tanh": "gelu_tanh", "gelu": "gelu"}
    if activation not in activations:
        raise ValueError(f"config.json's activation_function {activation!r} is not one the course's GPT has "
                         f"({sorted(activations)})")
    if abs(hf.get("layer_norm_epsilon", 1e-5) - 1e-5) > 1e-12:
        raise ValueError(f"config.json's layer_norm_epsilon {hf['layer_norm_epsilon']} differs from the 1e-5 the course uses")
    if hf.get("scale_attn_by_inverse_layer_idx") or hf.get("reorder_and_upcast_attn"):
        raise ValueError("config.json asks for attention variants the course's GPT does not have")
    d_model = hf["n_embd"]
    return GPTConfig(vocab_size=hf["vocab_size"], context_length=hf["n_positions"], d_model=d_model,
                     n_heads=hf["n_head"], n_layers=hf["n_layer"], d_ff=hf.get("n_inner") or 4 * d_model,
                     dropout=0.0, positions="learned", tie_weights=True, scale_embeddings=False,
                     activation=activations[activation], bias=True)


def convert_state_dict(hf_state, config):
    """GPT-2's tensors, renamed and reshaped into ``course_lib.gpt.GPT``'s state dict (notebook 13).

    - GPT-2's linear layers are ``Conv1D`` modules: ``y = x @ W + b`` with ``W`` of shape
      ``(in, out)``; ``nn.Linear`` computes ``x @ W.T + b``, so every weight is transposed.
    - ``attn.c_attn`` computes queries, keys and values in one ``(d, 3d)`` product: its columns
      split into three ``(d, d)`` blocks, in the order q, k, v.
    - ``wte`` is the token embedding, ``wpe`` the learned positions; the output layer is tied to
      ``wte`` (a separate ``lm_head.weight``, when present, must equal it).
    """
    state = {key.removeprefix("transformer."): value for key, value in hf_state.items()}
    d = config.d_model
    out = {"token_embedding.weight": state.pop("wte.weight"), "position_embedding.weight": state.pop("wpe.weight")}
    head = state.pop("lm_head.weight", None)
    if head is not None and not torch.equal(head, out["token_embedding.weight"]):
        raise ValueError("lm_head.weight differs from wte.weight: the course's GPT ties them, as GPT-2 does")
    for i in range(config.n_layers):
        h, b = f"h.{i}.", f"blocks.{i}."
        for ours, theirs in (("ln1", "ln_1"), ("ln2", "ln_2")):
            out[f"{b}{ours}.weight"], out[f"{b}{ours}.bias"] = state.pop(f"{h}{theirs}.weight"), state.pop(f"{h}{theirs}.bias")
        qkv_w, qkv_b = state.pop(f"{h}attn.c_attn.weight"), state.pop(f"{h}attn.c_attn.bias")  # (d, 3d), (3d,)
        for j, name in enumerate(("w_q", "w_k", "w_v")):
            out[f"{b}attn.{name}.weight"] = qkv_w[:, j * d:(j + 1) * d].t().contiguous()  # Conv1D -> Linear: transpose
            out[f"{b}attn.{name}.bias"] = qkv_b[j * d:(j + 1) * d]
        out[f"{b}attn.w_o.weight"] = state.pop(f"{h}attn.c_proj.weight").t().contiguous()
        out[f"{b}attn.w_o.bias"] = state.pop(f"{h}attn.c_proj.bias")
        out[f"{b}ffn.net.0.weight"] = state.pop(f"{h}mlp.c_fc.weight").t().contiguous()
        out[f"{b}ffn.net.0.bias"] = state.pop(f"{h}mlp.c_fc.bias")
        out[f"{b}ffn.net.2.weight"] = state.pop(f"{h}mlp.c_proj.weight").t().contiguous()
        out[f"{b}ffn.net.2.bias"] = state.pop(f"{h}mlp.c_proj.bias")
        for buffer in ("attn.bias", "attn.masked_bias"):  # old checkpoints store the causal mask: not weights
            state.pop(f"{h}{buffer}", None)
    out["ln_f.weight"], out["ln_f.bias"] = state.pop("ln_f.weight"), state.pop("ln_f.bias")
    if state:
        raise ValueError(f"GPT-2 tensors the mapping does not know: {sorted(state)[:5]}")
    out["lm_head.weight"] = out["token_embedding.weight"]  # tied
    return out


def load_gpt2(source, device=None):
    """GPT-2's published weights in a ``course_lib.gpt.GPT`` (notebook 13).

    ``source``: a local folder in the Hugging Face format (``config.json`` plus ``model.safetensors``
    or ``pytorch_model.bin``), or a hub name (``"gpt2"``, ``"gpt2-medium"``, ``"openai-community/gpt2"``,
    ...) downloaded with ``huggingface_hub`` once and cached. Offline and not cached: a
    ``ConnectionError`` within seconds that says so. The model comes back in eval mode.
    """
    model = model_from_hf_folder(_local_folder(source), config_from_hf, convert_state_dict, "GPT-2")
    if device is not None:
        model.to(device)
    return model.eval()


def model_from_hf_folder(folder, config_from, convert, what):
    """A ``GPT`` from a Hugging Face folder: ``config_from(config.json)``, then ``convert(weights, config)`` (notebooks 13, 18).

    ``what`` names the architecture in the errors ("GPT-2", "Llama"): a missing or unreadable
    ``config.json``, weights that lack a tensor, or weights whose shapes do not fit the config.
    """
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise FileNotFoundError(f"{folder} has no config.json: not a Hugging Face model folder")
    try:
        config = config_from(json.loads(config_path.read_text(encoding="utf-8")))
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise ValueError(f"{config_path} is not a {what} config.json ({type(error).__name__}: {error})") from None
    model = GPT(config)
    state = read_hf_weights(folder)
    try:
        model.load_state_dict(convert(state, config))
    except KeyError as error:
        raise ValueError(f"{folder}'s weights lack {error}: not a {what} checkpoint of this config") from None
    except RuntimeError as error:  # shapes that do not match the config
        lines = str(error).splitlines()
        raise ValueError(f"{folder}'s weights do not fit its config.json: {lines[min(1, len(lines) - 1)][:200]}") from None
    return model


def read_hf_weights(folder):
    """The tensors of a Hugging Face model folder, by their Hugging Face names (notebook 13).

    ``model.safetensors`` (a plain tensor format: nothing in it can run) or ``pytorch_model.bin``
    (read with ``weights_only=True``, which refuses anything but tensors).
    """
    folder = Path(folder)
    if (folder / "model.safetensors").is_file():
        _require("safetensors", "reading model.safetensors")
        from safetensors.torch import load_file

        try:
            return load_file(folder / "model.safetensors")
        except Exception as error:  # noqa: BLE001 - safetensors raises its own error types
            raise ValueError(f"{folder / 'model.safetensors'} cannot be read ({str(error)[:100]}): truncated or damaged, "
                             "an interrupted download? delete it and download again") from None
    if (folder / "pytorch_model.bin").is_file():
        return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)  # cannot run code
    raise FileNotFoundError(f"{folder} has neither model.safetensors nor pytorch_model.bin")


#: GPT-2 124 M's config.json, the fields the course reads (for an offline stand-in of the same shape)
GPT2_124M = {"model_type": "gpt2", "vocab_size": 50257, "n_positions": 1024, "n_embd": 768, "n_layer": 12, "n_head": 12,
             "activation_function": "gelu_new", "layer_norm_epsilon": 1e-5}


def random_gpt2_state(hf_config=None, seed=0, std=0.02):
    """A randomly initialised GPT-2 state dict, with GPT-2's names and shapes (notebook 13).

    The offline stand-in for the real weights: everything downstream (the mapping, the comparison
    with ``transformers``, generation) runs the same, only the text it writes is noise.
    """
    hf = hf_config or GPT2_124M
    g = torch.Generator().manual_seed(seed)
    d, d_ff = hf["n_embd"], hf.get("n_inner") or 4 * hf["n_embd"]

    def normal(*shape):
        return torch.randn(*shape, generator=g) * std

    state = {"transformer.wte.weight": normal(hf["vocab_size"], d), "transformer.wpe.weight": normal(hf["n_positions"], d)}
    for i in range(hf["n_layer"]):
        h = f"transformer.h.{i}."
        for ln in ("ln_1", "ln_2"):
            state[h + ln + ".weight"], state[h + ln + ".bias"] = torch.ones(d), torch.zeros(d)
        shapes = {"attn.c_attn": (d, 3 * d), "attn.c_proj": (d, d), "mlp.c_fc": (d, d_ff), "mlp.c_proj": (d_ff, d)}
        for name, (rows, cols) in shapes.items():  # Conv1D weights: (in, out)
            state[h + name + ".weight"], state[h + name + ".bias"] = normal(rows, cols), torch.zeros(cols)
    state["transformer.ln_f.weight"], state["transformer.ln_f.bias"] = torch.ones(d), torch.zeros(d)
    state["lm_head.weight"] = state["transformer.wte.weight"]
    return state


def _local_folder(source, files=("config.json", "model.safetensors", "vocab.json", "merges.txt")):
    """A folder holding the model: ``source`` itself, or the hub's cached download of its ``files``."""
    looks_local = isinstance(source, str) and (os.path.isabs(source) or source.startswith((".", "~"))
                                               or source.count("/") > 1 or os.sep != "/" and os.sep in source)
    if isinstance(source, os.PathLike) or (isinstance(source, str) and (Path(source).exists() or looks_local)):
        folder = Path(source).expanduser()
        if not folder.exists():
            raise FileNotFoundError(f"{folder}: no such folder (a hub name looks like 'gpt2' or 'openai-community/gpt2')")
        if not folder.is_dir():
            raise NotADirectoryError(f"{folder} is a file; give the folder that holds config.json and the weights")
        return folder
    if not isinstance(source, str) or not source:
        raise TypeError(f"source must be a folder or a hub name such as 'gpt2', got {source!r}")
    return download(source, list(files))


def download(name, files, timeout=5.0):
    """Fetch ``files`` of the hub repository ``name`` once, into Hugging Face's cache; return its folder (notebook 13).

    From the cache when everything is there (no network needed). Otherwise the hub must answer
    within ``timeout`` seconds, or a ``ConnectionError`` says so at once, instead of the minutes
    of retries a download library may spend on a machine without a network.
    """
    _require("huggingface_hub", f"downloading {name!r}")
    from huggingface_hub import snapshot_download

    repo = name if "/" in name else f"openai-community/{name}" if name in GPT2_SIZES else name
    try:
        return Path(snapshot_download(repo, allow_patterns=files, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached (the exception type varies between versions)
        pass
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").split("//")[-1].split("/")[0]
    if not _reachable(endpoint, timeout):
        raise ConnectionError(f"cannot reach {endpoint} to download {repo!r} and it is not in the Hugging Face cache: "
                              "run once with a network (Colab has one), or pass a local folder")
    return Path(snapshot_download(repo, allow_patterns=files, etag_timeout=timeout))


def _reachable(host, timeout):
    """Whether ``host`` accepts a connection within ``timeout`` seconds, name lookup included."""
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    name, _, port = host.partition(":")
    pool = ThreadPoolExecutor(max_workers=1)  # a name lookup ignores socket timeouts: bound it from outside
    try:
        pool.submit(socket.create_connection, (name, int(port or 443)), timeout).result(timeout=timeout).close()
        return True
    except Exception:  # noqa: BLE001 - no network, no DNS, refused, timed out: all mean "not now"
        return False
    finally:
        pool.shutdown(wait=False)


# ------------------------------------------------------------------------------------------ tokenizer

#: GPT-2's pre-tokenisation (as tiktoken writes it): contractions, words with their leading space,
#: numbers, punctuation runs, and whitespace. BPE merges never cross these pieces.
GPT2_PATTERN = r"""'(?:[sdmt]|ll|ve|re)| ?\p{L}++| ?\p{N}++| ?[^\s\p{L}\p{N}]++|\s++$|\s+(?!\S)|\s"""


def bytes_to_unicode():
    """GPT-2's table from the 256 byte values to printable characters (notebook 13).

    Printable Latin-1 bytes stand for themselves; the others (space, control bytes, ...) are moved
    to code points from 256 on. Its ``encoder.json`` and ``vocab.bpe`` are written in these
    characters, so that every token is a visible string: "Ġthe" is " the".
    """
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    table, extra = {}, 0
    for b in range(256):
        if b in printable:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


class GPT2Tokenizer:
    """GPT-2's byte-level BPE (notebook 13): ``encode(text) -> list[int]``, ``decode(ids) -> str``.

    Notebook 09's BPE with three of GPT-2's choices: the text is first split by ``GPT2_PATTERN``;
    each piece's UTF-8 bytes are written with ``bytes_to_unicode``; then, inside a piece, the
    adjacent pair with the **lowest merge rank** is merged, again and again (not the order the merges
    were learned in over the whole text, as in notebook 09: the result is the same, found faster).
    ``<|endoftext|>`` (id 50256) separates documents; ``encode`` treats it as plain text unless
    ``allow_special=True``.
    """

    def __init__(self, encoder, merges):
        regex = _require("regex", "GPT2Tokenizer")
        self.encoder = dict(encoder)  # token string -> id
        self.decoder = {i: s for s, i in self.encoder.items()}
        self.ranks = {tuple(pair): rank for rank, pair in enumerate(merges)}  # (left, right) -> rank
        self.byte_encoder = bytes_to_unicode()
        self.byte_decoder = {c: b for b, c in self.byte_encoder.items()}
        self.pattern = regex.compile(GPT2_PATTERN)
        self.special_pattern = regex.compile(regex.escape(ENDOFTEXT))
        self.eos_id = self.encoder[ENDOFTEXT]
        self.special_ids = {ENDOFTEXT: self.eos_id}  # special token -> id (allow_special=True reads them)
        self.cache = {}  # piece -> ids: Zipf's law makes most pieces repeats

    @classmethod
    def from_files(cls, encoder_json, vocab_bpe):
        """From GPT-2's ``encoder.json`` (token -> id) and ``vocab.bpe`` (the merges, by rank) (notebook 13).

        Hugging Face names the same two files ``vocab.json`` and ``merges.txt``.
        """
        encoder = json.loads(Path(encoder_json).read_text(encoding="utf-8"))
        lines = Path(vocab_bpe).read_text(encoding="utf-8").split("\n")
        merges = [tuple(line.split()) for line in lines[1:] if line.strip()]  # line 0 is a version header
        if not isinstance(encoder, dict) or ENDOFTEXT not in encoder or any(len(m) != 2 for m in merges):
            raise ValueError(f"{encoder_json} and {vocab_bpe} are not GPT-2's encoder.json and vocab.bpe")
        return cls(encoder, merges)

    @classmethod
    def from_pretrained(cls, source="gpt2"):
        """From a Hugging Face folder or hub name (its ``vocab.json`` and ``merges.txt``) (notebook 13)."""
        folder = Path(source) if Path(str(source)).is_dir() else download(str(source), ["vocab.json", "merges.txt"])
        return cls.from_files(folder / "vocab.json", folder / "merges.txt")

    def __len__(self):
        return len(self.encoder)

    def _bpe(self, piece):
        """The token strings of one pre-tokenised piece (already in bytes_to_unicode characters)."""
        parts = list(piece)
        while len(parts) > 1:
            rank, best = min((self.ranks.get(pair, math.inf), i) for i, pair in enumerate(zip(parts, parts[1:])))
            if rank == math.inf:
                break  # no adjacent pair is a merge any more
            first, second = parts[best], parts[best + 1]  # the pair GPT-2 learned earliest
            merged, i = [], 0
            while i < len(parts):  # merge every occurrence of this pair, left to right
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        return parts

    def _pieces(self, text):
        """The pre-tokenised pieces of ``text``: BPE merges never cross them."""
        return self.pattern.findall(text)

    def _encode_ordinary(self, text):
        ids = []
        for piece in self._pieces(text):
            cached = self.cache.get(piece)
            if cached is None:
                visible = "".join(self.byte_encoder[b] for b in piece.encode("utf-8"))
                cached = [self.encoder[token] for token in self._bpe(visible)]
                if len(self.cache) < 100_000:
                    self.cache[piece] = cached
            ids.extend(cached)
        return ids

    def encode(self, text, allow_special=False):
        """GPT-2's token ids of ``text`` (notebook 13)."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}")
        if not allow_special or self.special_pattern is None:
            return self._encode_ordinary(text)
        ids, start = [], 0
        for match in self.special_pattern.finditer(text):
            ids += self._encode_ordinary(text[start:match.start()]) + [self.special_ids[match.group()]]
            start = match.end()
        return ids + self._encode_ordinary(text[start:])

    def decode(self, ids):
        """The text of ``ids``; byte sequences cut inside a character show as U+FFFD (notebook 13)."""
        ids = token_id_list(ids)
        try:
            visible = "".join(self.decoder[i] for i in ids)
        except KeyError as error:
            raise ValueError(f"token id {error.args[0]} is outside GPT-2's vocabulary [0, {len(self)})") from None
        return bytes(self.byte_decoder[c] for c in visible).decode("utf-8", errors="replace")

    def token_strings(self, ids):
        """Each token as readable text, for showing how a text was split (notebook 13)."""
        return [self.decode([i]) for i in ids]
