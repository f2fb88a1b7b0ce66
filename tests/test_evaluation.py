"""The report card's metrics (notebook 22), each against a brute-force loop or a closed form."""
import json
import math

import pytest
import torch
from conftest import small_gpt

from course_lib.bpe import BPETokenizer
from course_lib.chat import chat_tokenizer
from course_lib.data import data_path
from course_lib.dialogue import read_dialogues
from course_lib.evaluation import (
    CHOICES,
    DIALOGUE_HELD_OUT_FRACTION,
    METRICS,
    bits_per_byte,
    choice_logprobs,
    dialogue_bits_per_byte,
    dialogue_split,
    evaluate_model,
    multiple_choice_accuracy,
    reply_perplexity,
    shakespeare_choices,
    token_byte_lengths,
)
from course_lib.gpt import GPT, GPTConfig
from course_lib.stream import split_text
from course_lib.tokenizer import CharTokenizer, WordTokenizer

TEXT = "Ça va? Naïve café, déjà vu.\nThe rest is silence.\n" * 3


def gpt(vocab_size, context_length):
    torch.manual_seed(0)
    return GPT(GPTConfig(vocab_size=vocab_size, context_length=context_length, d_model=16, n_heads=2, n_layers=1,
                         d_ff=32)).eval()


def uniform(model):
    """The same model predicting every token with probability 1 / vocab: a closed form to check against."""
    with torch.no_grad():
        model.ln_f.weight.zero_()
        model.ln_f.bias.zero_()  # the final LayerNorm's output is 0, so every logit is 0
    return model


def test_token_byte_lengths_spell_the_text_for_every_tokenizer_kind(smollm2_file):
    from course_lib.gguf import GGUFTokenizer, read_gguf

    smollm2 = GGUFTokenizer.from_metadata(read_gguf(smollm2_file).metadata)  # the real model's tokenizer, without its weights
    bpe = BPETokenizer.train(TEXT, 300)
    chars = CharTokenizer.from_text(TEXT)
    for tokenizer in (bpe, chars, chat_tokenizer(bpe), chat_tokenizer(chars), smollm2):
        lengths = token_byte_lengths(tokenizer)
        assert lengths.shape == (len(tokenizer),)
        assert int(lengths[tokenizer.encode(TEXT)].sum()) == len(TEXT.encode("utf-8")), type(tokenizer).__name__
    chat = chat_tokenizer(bpe)
    assert token_byte_lengths(chat)[chat.first_special:].tolist() == [0, 0, 0, 0]  # markers stand for no text
    assert token_byte_lengths(smollm2)[smollm2.encoder["<|im_end|>"]] == 0
    with pytest.raises(TypeError, match="word-level"):
        token_byte_lengths(WordTokenizer.from_sentences(["a b c"]))


def brute_force_bits_per_byte(model, tokenizer, text):
    """Window by window, position by position: -log2 p(next token | the window so far), over the bytes predicted."""
    ids = tokenizer.encode(text)
    T = model.config.context_length
    bits, predicted = 0.0, []
    for start in range(0, len(ids) - 1, T):
        window = ids[start:start + T + 1]
        if len(window) < T + 1:
            break  # sequential_windows keeps whole windows only
        for t in range(1, len(window)):
            logits = model(torch.tensor([window[:t]]))[0, -1].double()
            bits -= (torch.log_softmax(logits, -1)[window[t]] / math.log(2)).item()
            predicted.append(window[t])
    return bits / len(b"".join(tokenizer.vocab[i] for i in predicted))


def test_bits_per_byte_matches_a_brute_force_loop_and_the_uniform_closed_form():
    bpe = BPETokenizer.train(TEXT, 280)
    model = small_gpt(len(bpe))
    assert bits_per_byte(model, bpe, TEXT) == pytest.approx(brute_force_bits_per_byte(model, bpe, TEXT), rel=1e-6)
    chars = CharTokenizer("abc\n")
    flat = uniform(small_gpt(len(chars)))
    assert bits_per_byte(flat, chars, "abca\n" * 20) == pytest.approx(math.log2(4), rel=1e-6)  # 1 byte a token
    # a better model of the text has fewer bits per byte: the positive control of the metric's direction
    torch.manual_seed(0)
    learner = GPT(GPTConfig(vocab_size=4, context_length=12, d_model=16, n_heads=2, n_layers=1, d_ff=32))
    ids = torch.tensor(chars.encode("abca\n" * 40))
    optimizer = torch.optim.AdamW(learner.parameters(), lr=1e-2)
    before = bits_per_byte(learner, chars, "abca\n" * 20)
    for _ in range(60):
        _, loss = learner(ids[None, :-1][:, :12], ids[None, 1:][:, :12])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert bits_per_byte(learner, chars, "abca\n" * 20) < before - 0.5


def test_dialogue_bits_and_reply_perplexity_count_the_assistants_tokens_only():
    conversations = [[{"role": "user", "content": "hi"}, {"role": "assistant", "content": "ab"}],
                     [{"role": "user", "content": "ba"}, {"role": "assistant", "content": "abcab"},
                      {"role": "user", "content": "c"}, {"role": "assistant", "content": "b"}]]
    tokenizer = chat_tokenizer(CharTokenizer("abchi"))
    model = uniform(gpt(len(tokenizer), context_length=24))
    V = len(tokenizer)
    assistant_bytes, turns = 2 + 5 + 1, 3  # each assistant turn's targets: its characters and its <|end|>
    assert dialogue_bits_per_byte(model, tokenizer, conversations) == pytest.approx(
        math.log2(V) * (assistant_bytes + turns) / assistant_bytes, rel=1e-6)
    assert reply_perplexity(model, tokenizer, conversations) == pytest.approx(V, rel=1e-6)
    with pytest.raises(ValueError, match="no conversation"):
        reply_perplexity(model, tokenizer, [[{"role": "user", "content": "hi"}]])


class Fond(torch.nn.Module):
    """A 'model' that gives one token a high probability everywhere: a known preference to score choices with."""

    def __init__(self, vocab, favourite, context_length=16):
        super().__init__()
        self.config = GPTConfig(vocab_size=vocab, context_length=context_length, d_model=4, n_heads=1, n_layers=1, d_ff=4)
        self.bias = torch.nn.Parameter(torch.zeros(vocab))
        with torch.no_grad():
            self.bias[favourite] = 3.0

    def forward(self, ids):
        return self.bias.expand(*ids.shape, -1)


def test_choice_scores_are_summed_log_probabilities_and_acc_norm_divides_by_bytes():
    chars = CharTokenizer("ab\n")
    fond = Fond(3, favourite=chars.encode("a")[0])
    log_p = torch.log_softmax(fond.bias.detach(), -1)
    scores = choice_logprobs(fond, chars, "ab", ["\na", "\naaaa", "\nb"])
    assert [s[1] for s in scores] == [2, 5, 2]
    for (score, _), choice in zip(scores, ["\na", "\naaaa", "\nb"]):
        assert score == pytest.approx(float(sum(log_p[i] for i in chars.encode(choice))), rel=1e-6)
    # the short choice has the higher sum, the long one of the favourite token the higher mean: the two accuracies differ
    long_is_right = [{"context": "ab", "choices": ["\na", "\naaaa", "\nb"], "answer": 1}]
    assert multiple_choice_accuracy(fond, chars, long_is_right) == {"acc": 0.0, "acc_norm": 1.0, "questions": 1}
    short_is_right = [{"context": "ab", "choices": ["\na", "\naaaa", "\nb"], "answer": 0}]
    assert multiple_choice_accuracy(fond, chars, short_is_right) == {"acc": 1.0, "acc_norm": 0.0, "questions": 1}
    # a context longer than the model's window loses its oldest tokens, never the choice's
    assert choice_logprobs(fond, chars, "ab" * 50, ["\na"])[0][0] == pytest.approx(scores[0][0])
    with pytest.raises(ValueError, match="more than the model's context"):
        choice_logprobs(fond, chars, "ab", ["a" * 40, "b"])


def test_the_shakespeare_choices_are_held_out_fixed_and_fair():
    text = data_path("shakespeare.txt").read_text(encoding="utf-8")
    train_text, held_out = split_text(text, 0.1)
    questions = shakespeare_choices(text)
    assert len(questions) == 200 and questions == shakespeare_choices(text)  # the same set every time
    answers = [q["answer"] for q in questions]
    assert all(answers.count(i) > 25 for i in range(CHOICES))  # the right answer is not always in one place
    for q in questions:
        assert len(q["choices"]) == CHOICES == len(set(q["choices"]))
        assert q["context"] + q["choices"][q["answer"]] + "\n" in held_out  # the true next line
        assert q["context"] not in train_text


def test_the_held_out_dialogues_are_fixed_and_training_never_sees_them():
    train, held_out = dialogue_split()
    assert dialogue_split() == (train, held_out)
    everything = read_dialogues(data_path("dialogues.jsonl"))
    distinct = {json.dumps(c, sort_keys=True) for c in everything}
    held = [json.dumps(c, sort_keys=True) for c in held_out]
    assert len(held) == len(set(held)) == round(DIALOGUE_HELD_OUT_FRACTION * len(distinct))  # distinct ones, once each
    assert not set(held) & {json.dumps(c, sort_keys=True) for c in train}  # not one of them, word for word, in training
    assert len(train) + sum(json.dumps(c, sort_keys=True) in set(held) for c in everything) == len(everything)
    # the positive control: a plain random tenth of the file would have leaked (the corpus repeats itself)
    import random
    shuffled = list(everything)
    random.Random(0).shuffle(shuffled)
    naive_held, naive_train = shuffled[:len(held)], {json.dumps(c, sort_keys=True) for c in shuffled[len(held):]}
    assert sum(json.dumps(c, sort_keys=True) in naive_train for c in naive_held) > len(held) // 3


def test_evaluate_model_says_why_a_metric_does_not_apply():
    bpe = BPETokenizer.train(TEXT, 270)
    base = gpt(len(bpe), context_length=96)
    metrics, notes = evaluate_model(base, bpe, limit=3)
    assert set(metrics) == set(METRICS)
    assert metrics["shakespeare_bpb"] > 0 and 0 <= metrics["shakespeare_choice_acc"] <= 1
    assert metrics["reply_perplexity"] is None and "not a chat model" in notes["reply_perplexity"]
    chat = chat_tokenizer(CharTokenizer("abc"))  # cannot write Shakespeare or the tasks' characters
    metrics, notes = evaluate_model(gpt(len(chat), context_length=32), chat, limit=3)
    assert metrics["shakespeare_bpb"] is None and notes["shakespeare_bpb"]
    assert metrics["arithmetic_acc"] is None and notes["arithmetic_acc"]
