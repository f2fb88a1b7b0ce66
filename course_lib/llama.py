"""SmolLM2 (or any Llama-architecture model) from Hugging Face's unquantized files: the online route (notebook 18).

The GGUF file of notebook 18 is quantized to 4 bits. With a network (Colab), the same model's
float weights come from the Hugging Face hub: ``config.json``, ``model.safetensors``,
``tokenizer.json`` and the chat template. ``load_llama`` maps them into ``course_lib.gpt.GPT``
with notebook 17's options. Hugging Face stores queries and keys in the "rotate half" layout the
course uses, so unlike a GGUF file nothing is permuted. Tested offline on a small random Llama
saved by ``transformers`` (``tests/test_llama.py``), as notebook 13 does for GPT-2.
"""
import json
from pathlib import Path

import torch

from .gguf import GGUFError, GGUFTokenizer, template_from_jinja
from .gpt import GPTConfig
from .gpt2 import _local_folder, model_from_hf_folder

FILES = ["config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "chat_template.jinja"]


def config_from_hf_llama(hf):
    """The ``GPTConfig`` of a Hugging Face Llama ``config.json`` (as a dict) (notebook 18)."""
    if not isinstance(hf, dict):
        raise ValueError(f"config.json must be a JSON object, got {type(hf).__name__}")
    if hf.get("model_type") != "llama":
        raise ValueError(f"config.json describes a {hf.get('model_type')!r} model; load_llama reads 'llama' ones")
    if hf.get("hidden_act", "silu") != "silu" or hf.get("attention_bias") or hf.get("mlp_bias"):
        raise ValueError("config.json asks for an activation or biases the course's Llama options do not have")
    rope = hf.get("rope_parameters") or {}
    scaling = hf.get("rope_scaling") or {}
    if rope.get("rope_type", "default") != "default" or scaling.get("rope_type", scaling.get("type", "default")) != "default":
        raise ValueError("config.json scales RoPE (rope_scaling); the course's RoPE has no scaling")
    d_model, n_heads = hf["hidden_size"], hf["num_attention_heads"]
    if hf.get("head_dim", d_model // n_heads) != d_model // n_heads:
        raise ValueError("config.json's head_dim is not hidden_size / num_attention_heads")
    return GPTConfig(vocab_size=hf["vocab_size"], context_length=hf["max_position_embeddings"], d_model=d_model,
                     n_heads=n_heads, n_layers=hf["num_hidden_layers"], d_ff=hf["intermediate_size"], dropout=0.0,
                     positions="rope", tie_weights=bool(hf.get("tie_word_embeddings", False)), scale_embeddings=False,
                     activation="swiglu", bias=False, norm="rmsnorm", norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
                     n_kv_heads=hf.get("num_key_value_heads", n_heads),
                     rope_base=float(rope.get("rope_theta", hf.get("rope_theta", 10000.0))))


#: Hugging Face's names of one block's tensors -> the course's
HF_BLOCK = {"input_layernorm": "ln1", "self_attn.q_proj": "attn.w_q", "self_attn.k_proj": "attn.w_k",
            "self_attn.v_proj": "attn.w_v", "self_attn.o_proj": "attn.w_o", "post_attention_layernorm": "ln2",
            "mlp.gate_proj": "ffn.w_gate", "mlp.up_proj": "ffn.w_up", "mlp.down_proj": "ffn.w_down"}


def convert_llama_state_dict(hf_state, config):
    """Hugging Face Llama tensors renamed into ``course_lib.gpt.GPT``'s state dict (notebook 18)."""
    state = dict(hf_state)
    out = {"token_embedding.weight": state.pop("model.embed_tokens.weight")}
    for i in range(config.n_layers):
        for theirs, ours in HF_BLOCK.items():
            out[f"blocks.{i}.{ours}.weight"] = state.pop(f"model.layers.{i}.{theirs}.weight")
    out["ln_f.weight"] = state.pop("model.norm.weight")
    head = state.pop("lm_head.weight", None)
    if config.tie_weights:
        if head is not None and not torch.equal(head, out["token_embedding.weight"]):
            raise ValueError("tie_word_embeddings is true but lm_head.weight differs from the embedding")
        head = out["token_embedding.weight"]
    elif head is None:
        raise ValueError("the weights lack lm_head.weight and tie_word_embeddings is false")
    out["lm_head.weight"] = head
    state = {k: v for k, v in state.items() if not k.endswith("rotary_emb.inv_freq")}  # old checkpoints kept it
    if state:
        raise ValueError(f"Llama tensors the mapping does not know: {sorted(state)[:5]}")
    return out


def tokenizer_from_hf(folder):
    """A ``GGUFTokenizer`` (with its chat template) from a Hugging Face ``tokenizer.json`` (notebook 18).

    The same byte-level BPE as the GGUF file's: the vocabulary, the merges, the added (control)
    tokens, and the pre-tokenizer (``Digits`` then ``ByteLevel`` is SmolLM2's "smollm" split).
    """
    folder = Path(folder)
    try:
        data = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8"))
        model = data["model"]
        if model.get("type") != "BPE":
            raise ValueError(f"a {model.get('type')} tokenizer, not byte-level BPE")
        vocab = model["vocab"]
        merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
        added = {t["content"]: t["id"] for t in data.get("added_tokens", []) if t.get("special")}
    except FileNotFoundError:
        raise FileNotFoundError(f"{folder} has no tokenizer.json") from None
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError, ValueError) as error:
        raise ValueError(f"{folder / 'tokenizer.json'} is not a byte-level BPE tokenizer file ({error})") from None
    tokens = [None] * (max(list(vocab.values()) + list(added.values())) + 1)
    for token, i in {**vocab, **added}.items():
        tokens[i] = token
    if any(t is None for t in tokens):
        raise ValueError(f"{folder / 'tokenizer.json'}: the token ids have gaps")
    types = [3 if t in added else 1 for t in tokens]
    pre = data.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", [pre])
    digits = any(s.get("type") == "Digits" and s.get("individual_digits") for s in steps)
    tokenizer = GGUFTokenizer(tokens, merges, types, pre="smollm" if digits else "gpt2")
    jinja = None
    if (folder / "chat_template.jinja").is_file():
        jinja = (folder / "chat_template.jinja").read_text(encoding="utf-8")
    elif (folder / "tokenizer_config.json").is_file():
        jinja = json.loads((folder / "tokenizer_config.json").read_text(encoding="utf-8")).get("chat_template")
    tokenizer.chat_template = template_from_jinja(jinja, tokenizer)
    return tokenizer


def load_llama(source, device=None, dtype=torch.float32):
    """``(model, tokenizer)`` from a Hugging Face Llama folder or hub name, unquantized (notebook 18).

    ``source``: a local folder (``config.json``, ``model.safetensors``, ``tokenizer.json``) or a hub
    name such as ``"HuggingFaceTB/SmolLM2-135M-Instruct"`` (downloaded once into Hugging Face's
    cache; offline and not cached, a ``ConnectionError`` within seconds that says so).
    """
    folder = _local_folder(source, FILES)  # a missing local folder says so; a hub name is downloaded once
    model = model_from_hf_folder(folder, config_from_hf_llama, convert_llama_state_dict, "Llama")
    config = model.config
    tokenizer = tokenizer_from_hf(folder)
    if len(tokenizer) > config.vocab_size:
        raise GGUFError(f"{folder}: the tokenizer has {len(tokenizer)} tokens but the model {config.vocab_size}")
    model.to(device=device or "cpu", dtype=dtype)
    return model.eval(), tokenizer
