"""DecoderBlock, GPT, the tokenizer, training and checkpoints."""
import math

import pytest
import torch
import torch.nn.functional as F

import course_lib
from course_lib.data import load_sentences
from course_lib.decoder import DecoderBlock
from course_lib.gpt import GPT, GPTConfig
from course_lib.tokenizer import WordTokenizer, make_batch
from course_lib.training import corpus_floor, evaluate, load_checkpoint, save_checkpoint, train


@pytest.fixture(scope="module")
def corpus():
    sentences = load_sentences("lang.txt")
    tokenizer = WordTokenizer.from_sentences(sentences)
    return sentences, tokenizer, make_batch(tokenizer, sentences)


def small_gpt(vocab_size=20, **overrides):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab_size, context_length=12, d_model=16, n_heads=2, n_layers=2, d_ff=32, **overrides)).double().eval()


def test_decoder_block_is_causal_by_perturbation():
    torch.manual_seed(0)
    block = DecoderBlock(16, 4, 64).double().eval()
    x = torch.randn(2, 7, 16, dtype=torch.float64)
    for t in range(7):
        changed = x.clone()
        changed[:, t] += torch.randn(16, dtype=torch.float64)
        diff = (block(x) - block(changed)).abs().amax(dim=(0, 2))
        assert torch.all(diff[:t] == 0), f"changing position {t} changed an earlier output"
        assert torch.all(diff[t:] > 0) or t == 6 and diff[6] > 0


def test_decoder_block_matches_pytorch_transformer_layer():
    torch.manual_seed(0)
    block = DecoderBlock(32, 4, 64).double().eval()
    a = block.attn
    ref = torch.nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, activation="gelu", batch_first=True,
                                           norm_first=True, dtype=torch.float64).eval()
    with torch.no_grad():
        ref.self_attn.in_proj_weight.copy_(torch.cat([a.w_q.weight, a.w_k.weight, a.w_v.weight]))
        ref.self_attn.in_proj_bias.copy_(torch.cat([a.w_q.bias, a.w_k.bias, a.w_v.bias]))
        ref.self_attn.out_proj.load_state_dict({"weight": a.w_o.weight, "bias": a.w_o.bias})
        ref.linear1.load_state_dict(block.ffn.net[0].state_dict())
        ref.linear2.load_state_dict(block.ffn.net[2].state_dict())
        ref.norm1.load_state_dict(block.ln1.state_dict())
        ref.norm2.load_state_dict(block.ln2.state_dict())
    x = torch.randn(3, 9, 32, dtype=torch.float64)
    causal = torch.ones(9, 9, dtype=torch.bool).tril()
    torch.testing.assert_close(block(x), ref(x, src_mask=~causal), atol=1e-10, rtol=0)


def test_decoder_block_padding_mask_hides_left_padding():
    torch.manual_seed(0)
    block = DecoderBlock(16, 2, 32).double().eval()
    x = torch.randn(1, 3, 16, dtype=torch.float64)
    padded = torch.cat([torch.randn(1, 2, 16, dtype=torch.float64), x], dim=1)
    mask = torch.tensor([[False, False, True, True, True]])[:, None, None, :]
    torch.testing.assert_close(block(padded, padding_mask=mask)[:, 2:], block(x))


@pytest.mark.parametrize("positions", ["sinusoidal", "learned"])
def test_gpt_is_causal_by_perturbation(positions):
    model = small_gpt(positions=positions)
    ids = torch.randint(0, 20, (3, 10), generator=torch.Generator().manual_seed(1))
    for t in (0, 4, 9):
        changed = ids.clone()
        changed[:, t] = (changed[:, t] + 1) % 20
        diff = (model(ids) - model(changed)).abs().amax(dim=(0, 2))
        assert torch.all(diff[:t] == 0) and diff[t] > 0


def test_gpt_positions_follow_the_sequence_not_the_batch():
    # The seed built positions from len(batch): a batch larger than the context crashed, and a
    # row's logits depended on the batch size. Here each row is the same alone or in a batch of 30.
    model = small_gpt()
    ids = torch.randint(0, 20, (30, 8), generator=torch.Generator().manual_seed(2))
    batched = model(ids)
    assert batched.shape == (30, 8, 20)
    torch.testing.assert_close(batched[17:18], model(ids[17:18]))


def test_loss_ignores_padding_exactly():
    model = small_gpt()
    pad = 0
    inputs = torch.tensor([[1, 5, 6, 7, 0, 0], [1, 8, 9, 0, 0, 0]])
    targets = torch.tensor([[5, 6, 7, 2, 0, 0], [8, 9, 2, 0, 0, 0]])
    logits, loss = model(inputs, targets, pad_id=pad)
    real = targets != pad
    expected = F.cross_entropy(logits[real], targets[real])  # only the 7 real targets
    torch.testing.assert_close(loss, expected)
    counted_padding = F.cross_entropy(logits.reshape(-1, 20), targets.reshape(-1))
    assert not torch.allclose(loss, counted_padding)
    # more padding columns leave the loss unchanged
    wider_in = torch.cat([inputs, torch.zeros(2, 3, dtype=torch.long)], 1)
    wider_t = torch.cat([targets, torch.zeros(2, 3, dtype=torch.long)], 1)
    torch.testing.assert_close(model(wider_in, wider_t, pad_id=pad)[1], loss)


def test_untrained_loss_is_close_to_log_vocab(corpus):
    _, tokenizer, data = corpus
    course_lib.seed_everything(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer)))
    assert abs(evaluate(model, data, pad_id=tokenizer.pad_id) - math.log(len(tokenizer))) < 0.1


def test_weight_tying_and_attention_weights():
    model = small_gpt()
    assert model.lm_head.weight is model.token_embedding.weight
    untied = small_gpt(tie_weights=False)
    assert untied.num_parameters() == model.num_parameters() + 20 * 16
    model(torch.randint(0, 20, (2, 5)))
    assert len(model.attention_weights) == 2 and model.attention_weights[0].shape == (2, 2, 5, 5)


def test_gpt_bad_inputs():
    model = small_gpt()
    with pytest.raises(ValueError, match="13 positions but the model's context_length is 12"):
        model(torch.zeros(1, 13, dtype=torch.long))
    with pytest.raises(ValueError, match=r"token_ids must lie in \[0, 20\)"):
        model(torch.tensor([[3, 20]]))
    with pytest.raises(ValueError, match="2 dimensions"):
        model(torch.tensor([3, 4]))
    with pytest.raises(TypeError, match="integer token ids"):
        model(torch.zeros(1, 3))
    with pytest.raises(ValueError, match="targets must have the shape"):
        model(torch.zeros(1, 3, dtype=torch.long), torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="n_heads=3 does not divide d_model=64"):
        GPTConfig(vocab_size=10, n_heads=3)
    with pytest.raises(ValueError, match="positions must be"):
        GPTConfig(vocab_size=10, positions="rotary")
    with pytest.raises(ValueError, match="vocab_size must be > 0"):
        GPTConfig(vocab_size=0)


def test_tokenizer_round_trip_unknown_words_and_batches(corpus):
    sentences, tokenizer, (inputs, targets) = corpus
    assert tokenizer.itos[:4] == ["<pad>", "<sos>", "<eos>", "<unk>"] and len(tokenizer) == 134
    for s in sentences:
        assert tokenizer.decode(tokenizer.encode(s, add_sos=True, add_eos=True)) == s
    ids = tokenizer.encode("Python rocks")
    assert ids[1] == tokenizer.unk_id and tokenizer.unknown_words("Python rocks hard") == ["rocks", "hard"]
    assert tokenizer.decode(ids) == "Python <unk>"
    with pytest.raises(ValueError, match=r"not in the vocabulary: \['rocks'\]"):
        tokenizer.encode("Python rocks", strict=True)
    longest = max(len(s.split()) for s in sentences)
    assert inputs.shape == targets.shape == (20, longest + 1)
    assert inputs[0, 0] == tokenizer.sos_id
    words = (targets[:, :-1] != tokenizer.pad_id) & (targets[:, :-1] != tokenizer.eos_id)
    assert torch.equal(inputs[:, 1:][words], targets[:, :-1][words])  # targets are inputs shifted by one
    assert int((targets == tokenizer.eos_id).sum()) == 20
    assert int((targets != 0).sum()) == sum(len(s.split()) + 1 for s in sentences) == 237


def test_corpus_floor_hand_computed_and_on_lang_txt(corpus):
    tok = WordTokenizer.from_sentences(["a b", "a c"])
    # per sentence: <sos>->a (p=1), a->b or c (p=1/2), ->eos (p=1): 2 ln 2 over 6 targets
    assert corpus_floor(tok, ["a b", "a c"]) == pytest.approx(math.log(2) / 3, abs=1e-12)
    sentences, tokenizer, _ = corpus
    assert corpus_floor(tokenizer, sentences) == pytest.approx(0.2528, abs=1e-4)


@pytest.mark.slow
def test_default_configuration_reaches_near_the_floor_within_a_step_budget(corpus):
    sentences, tokenizer, data = corpus
    floor = corpus_floor(tokenizer, sentences)
    course_lib.seed_everything(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer)))
    history = train(model, data, steps=200, pad_id=tokenizer.pad_id, progress=False)
    loss = evaluate(model, data, pad_id=tokenizer.pad_id)
    assert loss <= 1.05 * floor, f"loss {loss:.4f} after 200 steps, floor {floor:.4f}"
    assert loss >= floor - 1e-3, "no model can beat the floor: the loss or the floor is wrong"
    assert history["loss"][0] > 4.0 and len(history["loss"]) == 200


def test_train_stops_at_target_and_checks_arguments(corpus):
    _, tokenizer, data = corpus
    model = GPT(GPTConfig(vocab_size=len(tokenizer), d_model=16, n_heads=2, n_layers=1, d_ff=32))
    history = train(model, data, steps=500, pad_id=0, eval_every=5, stop_at=3.5, progress=False)
    assert history["eval_loss"][-1] <= 3.5 and history["step"][-1] < 500
    with pytest.raises(ValueError, match="lr must be > 0"):
        train(model, data, steps=1, lr=0)
    with pytest.raises(TypeError, match="pair"):
        train(model, data[0], steps=1)
    with pytest.raises(ValueError, match="steps must be >= 0"):
        train(model, data, steps=-1)


def test_checkpoint_round_trip(tmp_path, corpus):
    _, tokenizer, data = corpus
    model = GPT(GPTConfig(vocab_size=len(tokenizer), d_model=16, n_heads=2, n_layers=1, d_ff=32, positions="learned")).eval()
    path = save_checkpoint(tmp_path / "runs" / "m.pt", model, tokenizer, steps=0)
    loaded, loaded_tokenizer = load_checkpoint(path)
    assert loaded.config == model.config and loaded_tokenizer.itos == tokenizer.itos
    torch.testing.assert_close(loaded(data[0]), model(data[0]))
    assert loaded.lm_head.weight is loaded.token_embedding.weight  # tying survives the round trip


def test_checkpoint_refuses_other_files(tmp_path):
    for i, content in enumerate([b"not a checkpoint at all", b"hello", b"", bytes(range(256))]):
        junk = tmp_path / f"junk{i}.pt"
        junk.write_bytes(content)
        with pytest.raises(ValueError, match="not a course checkpoint"):
            load_checkpoint(junk)
    other = tmp_path / "other.pt"
    torch.save({"weights": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match="not a course checkpoint"):
        load_checkpoint(other)
    pickled = tmp_path / "code.pt"
    torch.save({"format": "course_lib.gpt-checkpoint", "payload": object()}, pickled)
    with pytest.raises(ValueError, match="not a course checkpoint"):
        load_checkpoint(pickled)  # weights_only=True refuses arbitrary objects
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")
