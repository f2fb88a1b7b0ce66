"""Bad input found in the quality pass (issue 19): each gets a clear error, never a traceback or a silent result."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_chat import CHARS, Scripted  # noqa: E402

from course_lib.chat import END, chat, chat_tokenizer  # noqa: E402
from course_lib.gpt import GPT, GPTConfig  # noqa: E402
from course_lib.pretraining import init_distributed  # noqa: E402
from course_lib.sampling import generate  # noqa: E402
from course_lib.training import save_checkpoint  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TOKENIZER = chat_tokenizer(CHARS)


def run_cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "course_lib", *map(str, args)], capture_output=True, text=True, cwd=ROOT,
                          timeout=120, env={**os.environ, "COURSE_DEVICE": "cpu", **(env or {})})


def nan_model(vocab_size):
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=vocab_size, context_length=16, d_model=16, n_heads=2, n_layers=1, d_ff=32))
    with torch.no_grad():
        model.blocks[0].ffn.net[0].weight.fill_(float("nan"))
    return model


def test_nan_weights_are_named_when_sampling(tmp_path):
    model = nan_model(len(TOKENIZER))
    with pytest.raises(ValueError, match="NaN"):
        generate(model, torch.tensor([1, 2]), 3, temperature=1.0)
    with pytest.raises(ValueError, match="NaN"):
        chat(model, TOKENIZER, [], "hi", temperature=0.7)
    healthy = GPT(GPTConfig(vocab_size=len(TOKENIZER), context_length=16, d_model=16, n_heads=2, n_layers=1, d_ff=32))
    assert generate(healthy, torch.tensor([1, 2]), 3, temperature=1.0).shape == (5,)  # positive control
    save_checkpoint(tmp_path / "nan.pt", nan_model(len(CHARS)), CHARS)
    done = run_cli("sample", "--checkpoint", tmp_path / "nan.pt", "--prompt", "a")
    assert done.returncode == 2 and "NaN" in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_torchrun_variables_that_make_no_sense_are_one_line(monkeypatch, tmp_path):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ValueError, match="RANK is not"):
        init_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "two")
    with pytest.raises(ValueError, match="WORLD_SIZE='two' is not a whole number"):
        init_distributed("cpu")
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "5")
    with pytest.raises(ValueError, match="RANK=5 is out of range"):
        init_distributed("cpu")
    for flags, words in ((["--data", "data/lang.txt"], "--tokenizer word trains in one process"),
                         (["--tokenizer", "char", "--data", "data/lang.txt"], "RANK is not")):
        done = run_cli("train", *flags, "--out", tmp_path / "x.pt", "--steps", "1", env={"WORLD_SIZE": "2", "RANK": ""})
        assert done.returncode == 2 and words in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr
        assert not (tmp_path / "x.pt").exists()


fastapi = pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
from test_server import assert_generation_stopped  # noqa: E402

from course_lib.server import BackgroundServer, create_app  # noqa: E402


@pytest.fixture(scope="module")
def client():
    model = Scripted(TOKENIZER.encode("ok") + [TOKENIZER.id_of(END)], len(TOKENIZER), context_length=200)
    with BackgroundServer(create_app(model, TOKENIZER, "tiny")) as url, httpx.Client(base_url=url, timeout=30) as c:
        yield c


def body(**settings):
    return {"model": "tiny", "messages": [{"role": "user", "content": "hi"}], **settings}


@pytest.mark.parametrize("raw, param", [
    ('{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "temperature": 1' + "0" * 400 + "}", "temperature"),
    ('{"model": "tiny", "messages": [{"role": "user", "content": "hi"}], "top_p": -1' + "0" * 400 + "}", "top_p"),
    ("[" * 100_000 + "]" * 100_000, None),
    ('{"model": "tiny", "messages": [], "seed": 1' + "0" * 5000 + "}", None),
])
def test_huge_numbers_and_deep_nesting_are_4xx_and_keep_the_connection(client, raw, param):
    response = client.post("/v1/chat/completions", content=raw, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    assert response.json()["error"]["param"] == param
    assert client.post("/v1/chat/completions", json=body(max_tokens=2)).status_code == 200  # same client, still served


def test_logit_bias_is_refused_not_ignored(client):
    response = client.post("/v1/chat/completions", json=body(logit_bias={"5": 100}))
    assert response.status_code == 400 and response.json()["error"]["param"] == "logit_bias"
    assert client.post("/v1/chat/completions", json=body(logit_bias=None)).status_code == 200  # absent is fine


class Slow(Scripted):
    def forward(self, ids, cache=None, **rows):
        time.sleep(0.01)
        return super().forward(ids, cache, **rows)


def test_a_non_streamed_request_whose_client_left_stops_generating():
    model = Slow(TOKENIZER.encode("abcdefgh"), len(TOKENIZER), context_length=4000)  # never ends its turn
    with BackgroundServer(create_app(model, TOKENIZER, "tiny")) as url, httpx.Client(base_url=url, timeout=30) as c:
        with pytest.raises(httpx.ReadTimeout):
            httpx.post(url + "/v1/chat/completions", json=body(max_tokens=3000), timeout=0.5)  # gives up, disconnects
        assert_generation_stopped(c, at_most=1000)


def test_degenerate_sizes_are_refused_before_any_work():
    from course_lib.attention import scaled_dot_product_attention
    from course_lib.positional import sinusoidal_table

    with pytest.raises(ValueError, match="d_k = 0"):
        scaled_dot_product_attention(torch.randn(2, 3, 0), torch.randn(2, 3, 0), torch.randn(2, 3, 4))
    with pytest.raises(TypeError, match="floating-point"):
        sinusoidal_table(4, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="at most 1,048,576"):
        GPTConfig(vocab_size=10, context_length=10**9)
    assert sinusoidal_table(4, 8, dtype=torch.float16).dtype == torch.float16  # positive controls
    GPTConfig(vocab_size=10, context_length=8192)


def test_schedules_and_counts_that_make_no_sense_are_refused():
    from course_lib.pretraining import TrainConfig, pretrain

    with pytest.raises(ValueError, match="never decay"):
        TrainConfig(steps=100, warmup_steps=80, lr_decay_steps=50)
    TrainConfig(steps=100, warmup_steps=50, lr_decay_steps=50)  # positive control: warm-up, then the decay
    model = GPT(GPTConfig(vocab_size=5, context_length=4, d_model=8, n_heads=2))
    ids = torch.randint(0, 5, (100,))
    config = TrainConfig(steps=2, batch_size=2, warmup_steps=1, eval_every=1, eval_windows=2)
    with pytest.raises(ValueError, match="stop_after"):
        pretrain(model, ids, ids, config, progress=False, stop_after=-1)
    with pytest.raises(ValueError, match="tokens_per_char"):
        pretrain(model, ids, ids, config, progress=False, tokens_per_char=-1.0)


def test_gpt2_folders_that_are_missing_broken_or_cut_short_say_so(tmp_path):
    import json

    from course_lib.gpt2 import load_gpt2

    for missing in (str(tmp_path / "missing"), tmp_path / "missing", "./no/such/folder"):
        with pytest.raises(FileNotFoundError, match="no such folder"):
            load_gpt2(missing)
    (tmp_path / "config.json").write_text("[1]")
    with pytest.raises(ValueError, match="JSON object"):
        load_gpt2(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2", "vocab_size": 10, "n_positions": 8, "n_embd": 8,
                                                      "n_layer": 1, "n_head": 2}))
    pytest.importorskip("safetensors")
    (tmp_path / "model.safetensors").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":")
    with pytest.raises(ValueError, match="truncated or damaged"):
        load_gpt2(tmp_path)


def test_wrong_types_and_files_name_what_was_expected(tmp_path):
    from course_lib.bpe import BPETokenizer
    from course_lib.data import data_path
    from course_lib.dialogue import read_dialogues
    from course_lib.tokenizer import CharTokenizer, WordTokenizer

    good = '{"turns": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ok \\u2028 fine"}]}\n'
    (tmp_path / "d.jsonl").write_bytes((good + good).encode() + b'{"turns": [{"role": "user", "content": "h\xff"}]}\n')
    with pytest.raises(ValueError, match=r"d.jsonl line 3: not UTF-8"):
        read_dialogues(tmp_path / "d.jsonl")
    (tmp_path / "ok.jsonl").write_text(good + "\r\n" + good, encoding="utf-8")
    assert len(read_dialogues(tmp_path / "ok.jsonl")) == 2  # positive control: CRLF and U+2028 inside a string read
    tokenizers = [CharTokenizer("abc"), BPETokenizer([]), WordTokenizer.from_sentences(["a b"]), chat_tokenizer(CHARS)]
    for tokenizer in tokenizers:
        with pytest.raises(ValueError, match="1-D"):
            tokenizer.decode(torch.tensor([[0, 1]]))
        with pytest.raises(TypeError, match="list of token ids"):
            tokenizer.decode(None)
        assert isinstance(tokenizer.decode(torch.tensor([0, 1])), str)
    with pytest.raises(TypeError, match="merges"):
        BPETokenizer(None)
    with pytest.raises(TypeError, match="chat_tokenizer needs a tokenizer"):
        chat_tokenizer(None)
    with pytest.raises(TypeError, match="file name in data"):
        data_path(None)


def test_a_dtype_mismatch_and_a_float_padding_mask_are_named():
    from course_lib.attention import MultiHeadAttention
    from course_lib.decoder import DecoderBlock

    attention, block = MultiHeadAttention(8, 2), DecoderBlock(8, 2, 16)
    x64 = torch.randn(1, 3, 8, dtype=torch.float64)
    for module in (attention, block):
        with pytest.raises(TypeError, match=r"x is torch.float64 but the module's weights are torch.float32"):
            module(x64)
    with pytest.raises(TypeError, match="context is torch.float64"):
        attention(torch.randn(1, 3, 8), context=x64)
    with pytest.raises(TypeError, match="padding_mask must be a bool tensor"):
        block(torch.randn(1, 3, 8), padding_mask=torch.ones(1, 1, 1, 3))
    # what is allowed: the same dtype on both sides, and autocast's mixed precision
    assert attention.double()(x64).dtype == torch.float64
    attention.float()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert block(torch.randn(1, 3, 8).bfloat16()).shape == (1, 3, 8)
    assert block(torch.randn(1, 3, 8), padding_mask=torch.ones(1, 1, 1, 3, dtype=torch.bool)).shape == (1, 3, 8)
