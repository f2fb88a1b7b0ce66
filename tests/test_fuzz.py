"""Bad input everywhere: every public function and the CLI answer with a clear error, never a wrong result.

A clear error is a TypeError or ValueError whose message names the argument that was wrong. For the
CLI it is one line on stderr, a non-zero exit, no traceback, and no file overwritten or lost.
"""
import math
import os

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from course_lib import cli
from course_lib.attention import MultiHeadAttention, scaled_dot_product_attention
from course_lib.bpe import BPETokenizer
from course_lib.checks import expect_close
from course_lib.decoder import DecoderBlock
from course_lib.device import get_device
from course_lib.gpt import GPT, GPTConfig
from course_lib.kv_cache import KVCache
from course_lib.masks import causal_mask, padding_mask
from course_lib.positional import sinusoidal_table
from course_lib.sampling import filter_logits, generate, next_token_distribution
from course_lib.tokenizer import WordTokenizer, make_batch
from course_lib.training import evaluate, load_checkpoint, perplexity, save_checkpoint, train

FUZZ = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
NOT_AN_INT = st.one_of(st.floats(allow_nan=True), st.booleans(), st.none(), st.text(max_size=3), st.just([1]))
NOT_A_NUMBER = st.one_of(st.booleans(), st.none(), st.text(max_size=3), st.just([1.0]), st.just(torch.tensor(1.0)))
NON_FINITE = st.sampled_from([math.nan, math.inf, -math.inf])


def raises_naming(name, call, *args, **kwargs):
    with pytest.raises((TypeError, ValueError)) as caught:
        call(*args, **kwargs)
    assert name in str(caught.value), f"the error does not name {name!r}: {caught.value}"


def tiny_gpt(**changes):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=10, context_length=8, d_model=8, n_heads=2, n_layers=1, d_ff=16, **changes))


@pytest.fixture(scope="module")
def tiny():
    tokenizer = WordTokenizer.from_sentences(["a b c", "b c d"])
    return tiny_gpt(), tokenizer


# --- integers ---------------------------------------------------------------------------------

INT_ARGUMENTS = [
    ("n_heads", lambda v: MultiHeadAttention(8, v)),
    ("d_model", lambda v: MultiHeadAttention(v, 2)),
    ("n_positions", lambda v: sinusoidal_table(v, 8)),
    ("d_model", lambda v: sinusoidal_table(4, v)),
    ("seq_len", lambda v: causal_mask(v)),
    ("past", lambda v: causal_mask(3, past=v)),
    ("d_ff", lambda v: DecoderBlock(8, 2, v)),
    ("context_length", lambda v: GPTConfig(vocab_size=5, context_length=v)),
    ("n_layers", lambda v: GPTConfig(vocab_size=5, n_layers=v)),
    ("vocab_size", lambda v: GPTConfig(vocab_size=v)),
    ("n_layers", lambda v: KVCache(v)),
    ("vocab_size", lambda v: BPETokenizer.train("abab", v)),
    ("min_count", lambda v: WordTokenizer.from_sentences(["a b"], min_count=v)),
]


@FUZZ
@given(value=st.one_of(NOT_AN_INT, st.integers(max_value=-1)))
@pytest.mark.parametrize("name, call", INT_ARGUMENTS, ids=[f"{n}-{i}" for i, (n, _) in enumerate(INT_ARGUMENTS)])
def test_integer_arguments_refuse_what_is_not_a_valid_int(name, call, value):
    raises_naming(name, call, value)


# --- numbers: NaN, infinities and wrong types are refused by name --------------------------------

@FUZZ
@given(value=st.one_of(NON_FINITE, NOT_A_NUMBER, st.floats(max_value=-1e-9)))
def test_sampling_numbers(value, tiny):
    model, _ = tiny
    ids = torch.tensor([1, 4])
    raises_naming("temperature", generate, model, ids, 2, temperature=value)
    raises_naming("temperature", next_token_distribution, torch.randn(10), temperature=value)
    if value is not None:  # None means no limit, as documented
        raises_naming("top_p", filter_logits, torch.randn(10), top_p=value)


@FUZZ
@given(value=st.one_of(NON_FINITE, NOT_A_NUMBER, st.floats(max_value=-1e-9)))
def test_training_numbers(value, tiny):
    model, tokenizer = tiny
    data = make_batch(tokenizer, ["a b c"])
    for name in ("lr", "clip_grad", "weight_decay", "stop_at"):
        if name in ("clip_grad", "stop_at") and value is None:
            continue  # None means no clipping, as documented
        raises_naming(name, train, model, data, 1, progress=False, **{name: value})
    raises_naming("dropout", GPTConfig, vocab_size=5, dropout=value)
    raises_naming("dropout", MultiHeadAttention, 8, 2, dropout=value)


def test_top_p_zero_and_top_k_zero_are_refused_not_silently_empty():
    raises_naming("top_p", filter_logits, torch.randn(5), top_p=0)
    raises_naming("top_k", filter_logits, torch.randn(5), top_k=0)
    raises_naming("logits", filter_logits, [1.0, 2.0], top_k=1)


def test_tiny_temperature_is_greedy_not_an_error(tiny):
    model, _ = tiny
    ids = torch.tensor([1, 4])
    for temperature in (1e-40, 1e-30, 5e-324):
        probs = next_token_distribution(torch.tensor([1.0, 3.0, 2.0]), temperature=temperature)
        assert torch.equal(probs, torch.tensor([0.0, 1.0, 0.0]))
        torch.testing.assert_close(generate(model, ids, 4, temperature=temperature),
                                   generate(model, ids, 4, temperature=0))


# --- tensors ---------------------------------------------------------------------------------

def test_token_ids_of_the_wrong_kind(tiny):
    model, _ = tiny
    raises_naming("token_ids", model, torch.zeros(1, 3))  # floats
    raises_naming("token_ids", model, torch.zeros(1, 3, dtype=torch.int16))
    raises_naming("token_ids", model, torch.zeros(1, 3, dtype=torch.bool))
    raises_naming("token_ids", model, torch.zeros(0, 3, dtype=torch.long))  # a batch of no rows
    raises_naming("token_ids", model, torch.zeros(2, 0, dtype=torch.long))
    raises_naming("token_ids", model, torch.tensor([[1, 10]]))  # = vocab_size
    raises_naming("token_ids", model, torch.tensor([[1, -1]]))
    raises_naming("token_ids", model, torch.zeros(3, dtype=torch.long))  # 1-D
    raises_naming("targets", model, torch.tensor([[1, 2]]), torch.tensor([[1, 10]]))
    raises_naming("targets", model, torch.tensor([[1, 2]]), torch.tensor([[1, -5]]), pad_id=0)
    raises_naming("targets", model, torch.tensor([[1, 2]]), torch.tensor([[1.0, 2.0]]))
    raises_naming("pad_id", model, torch.tensor([[1, 2]]), torch.tensor([[1, 2]]), pad_id="0")
    # the ignore index itself is a valid target: padding
    _, loss = model(torch.tensor([[1, 2]]), torch.tensor([[3, 0]]), pad_id=0)
    assert torch.isfinite(loss)


@FUZZ
@given(shape=st.lists(st.integers(0, 4), min_size=0, max_size=4))
def test_decoder_block_checks_its_input(shape):
    block = DecoderBlock(8, 2, 16)
    x = torch.randn(tuple(shape))
    if len(shape) == 3 and shape[-1] == 8 and shape[0] > 0 and shape[1] > 0:
        assert block(x).shape == x.shape
    else:
        raises_naming("x", block, x)
    raises_naming("x", block, torch.zeros(1, 2, 8, dtype=torch.long))


def test_attention_refuses_bad_tensors():
    q = torch.randn(2, 3, 4)
    raises_naming("q", scaled_dot_product_attention, q.tolist(), q, q)
    raises_naming("k", scaled_dot_product_attention, q, q.long(), q)
    raises_naming("k", scaled_dot_product_attention, q, torch.randn(2, 3, 5), q)
    raises_naming("v", scaled_dot_product_attention, q, q, torch.randn(2, 4, 4))
    raises_naming("mask", scaled_dot_product_attention, q, q, q, torch.ones(3, 3))
    raises_naming("mask", scaled_dot_product_attention, q, q, q, torch.ones(4, 3, dtype=torch.bool))
    raises_naming("token_ids", padding_mask, torch.zeros(2, 3), 0)
    raises_naming("pad_id", padding_mask, torch.zeros(2, 3, dtype=torch.long), 0.5)


def test_kv_cache_misuse_is_explained():
    cache = KVCache(2)
    k = torch.randn(1, 2, 3, 4)
    raises_naming("layer", cache.update, 2, k, k)
    raises_naming("layer", cache.update, -1, k, k)
    raises_naming("layer", cache.cached, 5)
    raises_naming("k", cache.update, 0, k[0], k)
    raises_naming("v", cache.update, 0, k, k.long())
    cache.update(0, k, k)
    raises_naming("KVCache", cache.update, 0, torch.randn(2, 2, 1, 4), torch.randn(2, 2, 1, 4))


def test_get_device_accepts_a_device_and_refuses_other_types():
    assert get_device(torch.device("cpu")) == torch.device("cpu")
    raises_naming("device", get_device, 3)


# --- silently wrong results, now errors or right ----------------------------------------------

def test_evaluate_and_perplexity_on_no_data(tiny):
    model, _ = tiny
    empty = (torch.zeros(0, 4, dtype=torch.long), torch.zeros(0, 4, dtype=torch.long))
    raises_naming("data", evaluate, model, empty)
    raises_naming("data", perplexity, model, empty)
    all_padding = (torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 4, dtype=torch.long))
    raises_naming("padding", evaluate, model, all_padding, pad_id=0)


def test_tokenizer_from_a_generator_reads_it_once():
    sentences = ["a b c", "b c d"]
    assert WordTokenizer.from_sentences(s for s in sentences).itos == WordTokenizer.from_sentences(sentences).itos
    raises_naming("str", WordTokenizer.from_sentences, ["a b", 3])


def test_expect_close_checks_dtypes():
    with pytest.raises(AssertionError, match="dtype"):
        expect_close(torch.arange(3.0), torch.arange(3), "positions")
    expect_close(torch.arange(3), torch.arange(3), "positions")


# --- checkpoints broken inside ---------------------------------------------------------------

def broken_checkpoints(tmp_path, tiny):
    model, tokenizer = tiny
    good = save_checkpoint(tmp_path / "good.pt", model, tokenizer)
    payload = torch.load(good, weights_only=True)
    variants = {
        "config-mismatch": {**payload, "config": {**payload["config"], "d_model": 16}},
        "no-tokenizer": {k: v for k, v in payload.items() if k != "tokenizer"},
        "unknown-key": {**payload, "config": {**payload["config"], "rotary": True}},
        "bad-tokenizer": {**payload, "tokenizer": {"itos": 5}},
        "no-state": {k: v for k, v in payload.items() if k != "state_dict"},
        "bad-config-value": {**payload, "config": {**payload["config"], "n_heads": 3}},
    }
    paths = {}
    for name, content in variants.items():
        paths[name] = tmp_path / f"{name}.pt"
        torch.save(content, paths[name])
    return good, paths


def test_broken_checkpoints_are_named_not_crashing(tmp_path, tiny):
    good, paths = broken_checkpoints(tmp_path, tiny)
    load_checkpoint(good)
    for name, path in paths.items():
        with pytest.raises(ValueError, match="broken course checkpoint") as caught:
            load_checkpoint(path)
        assert "\n" not in str(caught.value), name


# --- the command line --------------------------------------------------------------------------

def run_cli(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line_error(code, err, *words):
    assert code not in (0, None), err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in lines[0], (word, lines[0])


@FUZZ
@given(value=st.sampled_from(["nan", "inf", "-inf", "NaN", "1e400", "-1", "abc", "", "0x10", "1,5"]),
       flag=st.sampled_from(["--lr", "--steps", "--dropout", "--d-model", "--batch-size", "--eval-every", "--seed"]))
def test_train_flags(capsys, tmp_path, value, flag):
    out = tmp_path / "x.pt"
    code, _, err = run_cli(capsys, "train", "--data", "data/lang.txt", "--out", out, "--steps", 1, "--no-progress",
                           flag, value)
    if code == 0:  # a value that happens to be valid (e.g. --seed 0x10 is not, -1 is not for any of these)
        assert out.is_file()
    else:
        one_line_error(code, err, flag)
        assert not out.exists()


@FUZZ
@given(value=st.sampled_from(["nan", "inf", "-inf", "-0.5", "abc", "1e400"]),
       flag=st.sampled_from(["--temperature", "--top-p", "--top-k", "--max-new-tokens"]))
def test_sample_flags(capsys, tmp_path, tiny, value, flag):
    model, tokenizer = tiny
    checkpoint = save_checkpoint(tmp_path / "m.pt", model, tokenizer)
    code, _, err = run_cli(capsys, "sample", "--checkpoint", checkpoint, flag, value)
    one_line_error(code, err, flag)


def test_broken_checkpoints_on_the_command_line(capsys, tmp_path, tiny):
    _, paths = broken_checkpoints(tmp_path, tiny)
    for _name, path in paths.items():
        code, _, err = run_cli(capsys, "sample", "--checkpoint", path)
        one_line_error(code, err, "--checkpoint", "broken course checkpoint")


def test_out_is_checked_before_training_and_nothing_is_overwritten(capsys, tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b c\nb c d\n")
    before = corpus.read_bytes()
    a_file = tmp_path / "file.txt"
    a_file.write_text("keep me")
    for out, words in [(tmp_path, "is a folder"), (a_file / "model.pt", "is a file, not a folder"),
                       (corpus, "is the --data file")]:
        code, stdout, err = run_cli(capsys, "train", "--data", corpus, "--out", out, "--steps", 5, "--no-progress")
        one_line_error(code, err, "--out", words)
        assert "training on" not in stdout  # refused before any training
    assert corpus.read_bytes() == before and a_file.read_text() == "keep me"


def test_a_crash_mid_save_leaves_the_old_checkpoint(tmp_path, tiny, monkeypatch):
    model, tokenizer = tiny
    path = save_checkpoint(tmp_path / "m.pt", model, tokenizer, run=1)
    before = path.read_bytes()

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError):
        save_checkpoint(path, model, tokenizer, run=2)
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["m.pt"]  # no temporary file left behind
