"""Training, evaluation, perplexity, the corpus floor and checkpoints (course_lib.training)."""
import math

import pytest
import torch
from torch import nn

import course_lib
from course_lib.data import load_sentences
from course_lib.gpt import GPT, GPTConfig
from course_lib.tokenizer import WordTokenizer, make_batch
from course_lib.training import corpus_floor, evaluate, load_checkpoint, perplexity, save_checkpoint, train


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


def test_a_tokenizer_larger_than_the_model_is_refused_at_save_time(tmp_path, corpus):
    _, tokenizer, _ = corpus
    small = GPT(GPTConfig(vocab_size=len(tokenizer) - 1, d_model=16, n_heads=2, n_layers=1, d_ff=32))
    with pytest.raises(ValueError, match=f"the tokenizer has {len(tokenizer)} tokens but the model only {len(tokenizer) - 1}"):
        save_checkpoint(tmp_path / "m.pt", small, tokenizer)
    assert not (tmp_path / "m.pt").exists()
    larger = GPT(GPTConfig(vocab_size=len(tokenizer) + 8, d_model=16, n_heads=2, n_layers=1, d_ff=32))
    save_checkpoint(tmp_path / "padded.pt", larger, tokenizer)  # spare rows are fine (GPT-2 pads its vocabulary)
    assert load_checkpoint(tmp_path / "padded.pt")[0].config.vocab_size == len(tokenizer) + 8



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



class FixedProbabilities(nn.Module):
    """A stand-in model whose next-token probabilities are given: 0.5, then 0.25, for the targets."""

    def __init__(self):
        super().__init__()
        self.unused = nn.Parameter(torch.zeros(1))

    def forward(self, token_ids, pad_id=None):
        probs = torch.tensor([[[0.5, 0.25, 0.25], [0.25, 0.25, 0.5]]])  # (1, 2, vocab 3)
        return probs.log().expand(token_ids.shape[0], -1, -1)



def test_perplexity_is_exp_of_mean_loss_by_hand():
    inputs = torch.tensor([[1, 2]])
    targets = torch.tensor([[0, 1]])  # p = 0.5, then p = 0.25
    model = FixedProbabilities()
    expected_loss = (math.log(2) + math.log(4)) / 2  # 1.5 ln 2
    assert evaluate(model, (inputs, targets)) == pytest.approx(expected_loss, abs=1e-6)
    assert perplexity(model, (inputs, targets)) == pytest.approx(2 ** 1.5, abs=1e-5)
    padded = (torch.tensor([[1, 2]]), torch.tensor([[0, 2]]))  # second target is padding (id 2)
    assert perplexity(model, padded, pad_id=2) == pytest.approx(2.0, abs=1e-5)



def test_validation_curve_and_early_stopping_restore_the_best_weights():
    sentences = load_sentences("lang.txt")
    tokenizer = WordTokenizer.from_sentences(sentences[:16])
    train_data, val_data = make_batch(tokenizer, sentences[:16]), make_batch(tokenizer, sentences[16:])
    course_lib.seed_everything(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer)))
    history = train(model, train_data, steps=200, pad_id=0, eval_every=10, progress=False,
                    val_data=val_data, restore_best=True)
    assert len(history["val_loss"]) == len(history["eval_step"]) == 20
    best = history["eval_step"].index(history["best_step"])
    assert history["val_loss"][best] == min(history["val_loss"])
    assert history["val_loss"][-1] > min(history["val_loss"])  # memorising 16 sentences: held-out loss rises
    assert evaluate(model, val_data, pad_id=0) == pytest.approx(min(history["val_loss"]), abs=1e-5)
    with pytest.raises(ValueError, match="restore_best=True needs val_data"):
        train(model, train_data, steps=1, restore_best=True, progress=False)

