"""The online route of notebook 18: a Hugging Face Llama folder (unquantized safetensors) into the course's GPT.

Tested offline on a small random Llama saved by ``transformers``, with SmolLM2's own tokenizer files
(written by the tokenizer ``transformers`` builds from the GGUF file), as notebook 13 does for GPT-2.
"""
import json

import pytest
import torch

transformers = pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from course_lib.chat import chat  # noqa: E402
from course_lib.llama import config_from_hf_llama, load_llama  # noqa: E402


def _save_random_llama(folder, hf_tokenizer, tie):
    config = transformers.LlamaConfig(vocab_size=49152, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                                      rope_theta=100000.0, rms_norm_eps=1e-5, tie_word_embeddings=tie)
    torch.manual_seed(0)
    model = transformers.LlamaForCausalLM(config).eval()
    model.save_pretrained(folder)
    hf_tokenizer.save_pretrained(folder)
    return model


@pytest.mark.parametrize("tie", [True, False])
def test_a_saved_llama_loads_with_transformers_logits(tmp_path, hf_smollm2_tokenizer, tie):
    reference = _save_random_llama(tmp_path, hf_smollm2_tokenizer, tie)
    model, tokenizer = load_llama(tmp_path)
    assert model.config.tie_weights is tie and model.config.n_kv_heads == 2 and model.config.rope_base == 100000.0
    ids = torch.tensor([tokenizer.encode("The capital of France is 12 34.")])
    with torch.no_grad():
        torch.testing.assert_close(model(ids), reference(ids).logits, atol=1e-5, rtol=1e-5)


TEXTS = ["Hello world", "x   42 and ¼", "<|im_start|>user\nhi<|im_end|>", "héllo 🙂", "12345"]


def test_its_tokenizer_and_template_are_smollm2s(tmp_path, hf_smollm2_tokenizer, smollm2):
    _save_random_llama(tmp_path, hf_smollm2_tokenizer, True)
    _, tokenizer = load_llama(tmp_path)
    # transformers wrote GPT-2's ByteLevel pre-tokenizer (it dropped the file's digit split): the same ids as it
    assert tokenizer.pre == "gpt2"
    for text in TEXTS:
        assert tokenizer.encode(text, allow_special=True) == hf_smollm2_tokenizer.encode(text, add_special_tokens=False), text
    # the hub's own tokenizer.json splits digits first (Digits, then ByteLevel): then it is the GGUF file's tokenizer
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    data["pre_tokenizer"] = {"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": True},
                                                                     data["pre_tokenizer"]]}
    (tmp_path / "tokenizer.json").write_text(json.dumps(data))
    _, tokenizer = load_llama(tmp_path)
    _, from_gguf = smollm2
    assert tokenizer.pre == "smollm"
    for text in TEXTS:
        assert tokenizer.encode(text, allow_special=True) == from_gguf.encode(text, allow_special=True), text
    turns = [{"role": "user", "content": "Hi"}]
    assert tokenizer.chat_template.render(tokenizer.chat_template.with_default_system(turns), True) == \
        hf_smollm2_tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)


def test_a_random_llama_chats_through_the_course_stack(tmp_path, hf_smollm2_tokenizer):
    _save_random_llama(tmp_path, hf_smollm2_tokenizer, True)
    model, tokenizer = load_llama(tmp_path)
    reply = chat(model, tokenizer, [], "Hi", max_new_tokens=5, temperature=0)
    assert isinstance(reply, str)


def test_bad_folders_and_configs_say_what_is_wrong(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_llama(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        load_llama(tmp_path)
    with pytest.raises(ValueError, match="'gpt2'"):
        config_from_hf_llama({"model_type": "gpt2"})
    with pytest.raises(ValueError, match="rope_scaling"):
        config_from_hf_llama({"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0}})
    with pytest.raises(NotADirectoryError):
        load_llama(tmp_path / "config.json")
    good = {"model_type": "llama", "vocab_size": 10, "hidden_size": 8, "intermediate_size": 16, "num_hidden_layers": 1,
            "num_attention_heads": 2, "max_position_embeddings": 16}
    (tmp_path / "config.json").write_text(json.dumps(good))
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_llama(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ConnectionError, match="cannot reach"):
        load_llama("HuggingFaceTB/SmolLM2-135M-Instruct-not-cached")
