"""Chat: special tokens, the template, assistant-only targets, truncation, chat() and its stream (notebooks 14-15)."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.bpe import BPETokenizer
from course_lib.chat import (
    ASSISTANT,
    END,
    IGNORE_INDEX,
    SYSTEM,
    USER,
    ChatStream,
    chat,
    chat_tokenizer,
    dialogue_batch,
    encode_dialogue,
    encode_turns,
    fit_turns,
    render,
    select_trainable,
    stream_chat,
)
from course_lib.dialogue import MEMORY_LIKES, MEMORY_NAMES, memory_dialogues
from course_lib.gpt import GPT, GPTConfig, grow_vocabulary
from course_lib.sampling import apply_repetition_penalty
from course_lib.tokenizer import CharTokenizer, SpecialTokens, WordTokenizer, tokenizer_from_dict
from course_lib.training import load_checkpoint, save_checkpoint

ROOT = Path(__file__).resolve().parent.parent
CHARS = CharTokenizer("abcdefghijklmnopqrstuvwxyz ?!.,'ABCDEFGHIJKLMNOPQRSTUVWXYZ")


def turns(*texts, system=None):
    out = [{"role": "system", "content": system}] if system else []
    return out + [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(texts)]


# --- special tokens --------------------------------------------------------------------------------------------

def test_special_tokens_come_after_the_base_vocabulary_and_cannot_be_typed():
    tok = chat_tokenizer(CHARS)
    assert len(tok) == len(CHARS) + 4
    assert [tok.id_of(s) for s in (SYSTEM, USER, ASSISTANT, END)] == list(range(len(CHARS), len(CHARS) + 4))
    assert tok.encode("hi there") == CHARS.encode("hi there")  # base ids unchanged
    bpe = chat_tokenizer(BPETokenizer.train("hello world " * 20, 270))
    typed = bpe.encode("<|assistant|>")
    assert all(i < bpe.first_special for i in typed), "a typed marker must stay text"
    assert bpe.decode(typed) == "<|assistant|>"


def test_decode_drops_or_shows_special_tokens_and_keeps_multibyte_characters_whole():
    tok = chat_tokenizer(BPETokenizer([]))  # plain bytes: é is two tokens
    ids = [tok.id_of(USER)] + tok.encode("café") + [tok.id_of(END)]
    assert tok.decode(ids) == "café"
    assert tok.decode(ids, skip_special=False) == "<|user|>café<|end|>"
    with pytest.raises(ValueError, match="outside the vocabulary"):
        tok.decode([len(tok)])


def test_a_chat_tokenizer_round_trips_through_a_checkpoint(tmp_path):
    tok = chat_tokenizer(CHARS)
    again = tokenizer_from_dict(json.loads(json.dumps(tok.to_dict())))
    assert isinstance(again, SpecialTokens) and again.specials == tok.specials and again.base.chars == CHARS.chars
    model = GPT(GPTConfig(vocab_size=len(tok), context_length=16, d_model=16, n_heads=2, n_layers=1, d_ff=32))
    save_checkpoint(tmp_path / "chat.pt", model, tok)
    _, loaded = load_checkpoint(tmp_path / "chat.pt")
    assert loaded.to_dict() == tok.to_dict()


def test_special_tokens_refuse_bad_specials_and_nesting():
    with pytest.raises(ValueError, match="distinct"):
        SpecialTokens(CHARS, ["<a>", "<a>"])
    with pytest.raises(TypeError, match="already"):
        SpecialTokens(SpecialTokens(CHARS, ["<a>"]), ["<b>"])
    with pytest.raises(ValueError, match="other special tokens"):
        chat_tokenizer(SpecialTokens(CHARS, ["<a>"]))
    with pytest.raises(KeyError, match="not one of"):
        chat_tokenizer(CHARS).id_of("<|bot|>")


def test_extended_char_tokenizer_keeps_old_ids():
    grown = CHARS.extended("3 + 4 = 7, café")
    assert grown.chars.startswith(CHARS.chars) and set("3+47=é") <= set(grown.chars)
    assert grown.encode("abc") == CHARS.encode("abc")
    assert CHARS.extended("abc").chars == CHARS.chars


# --- growing the model's vocabulary ------------------------------------------------------------------------------

@pytest.mark.parametrize("tie", [True, False])
def test_grow_vocabulary_keeps_every_old_logit_and_leaves_the_base_alone(tie):
    torch.manual_seed(0)
    base = GPT(GPTConfig(vocab_size=20, context_length=8, d_model=16, n_heads=2, n_layers=1, d_ff=32, tie_weights=tie))
    before = {k: v.clone() for k, v in base.state_dict().items()}
    grown = grow_vocabulary(base, 24)
    x = torch.randint(0, 20, (2, 8))
    torch.testing.assert_close(grown(x)[..., :20], base(x))
    assert (grown.lm_head.weight is grown.token_embedding.weight) == tie
    assert all(torch.equal(before[k], v) for k, v in base.state_dict().items())
    new_rows = grown.token_embedding.weight[20:]
    assert not torch.allclose(new_rows[0], new_rows[1]), "new tokens need distinct rows to be told apart"
    old_rows = base.token_embedding.weight
    assert (new_rows.mean(0) - old_rows.mean(0)).abs().max() < 3 * old_rows.std(0).max()
    with pytest.raises(ValueError, match="smaller"):
        grow_vocabulary(base, 10)


# --- the template and the targets -------------------------------------------------------------------------------

def reference_targets(tok, conversation):
    """Brute force: label every token with its turn's role and part, then keep the assistant's text and end."""
    ids, labels = [], []
    for turn in conversation:
        marker = {"system": SYSTEM, "user": USER, "assistant": ASSISTANT}[turn["role"]]
        ids.append(tok.id_of(marker))
        labels.append("marker")
        for i in tok.encode(turn["content"]):
            ids.append(i)
            labels.append(turn["role"])
        ids.append(tok.id_of(END))
        labels.append(turn["role"] + "-end")
    targets = [ids[t + 1] if labels[t + 1] in ("assistant", "assistant-end") else -100 for t in range(len(ids) - 1)]
    return ids[:-1], targets


@pytest.mark.parametrize("conversation", [
    turns("hi", "hello!"),
    turns("hi", "hello!", "who are you?", "a bot."),
    turns("hi", "hello!", "bye", system="be brief."),
])
def test_encode_dialogue_keeps_exactly_the_assistant_text_and_its_end(conversation):
    tok = chat_tokenizer(CHARS)
    inputs, targets = encode_dialogue(tok, conversation, 200)
    ref_inputs, ref_targets = reference_targets(tok, conversation)
    assert inputs.tolist() == ref_inputs and targets.tolist() == ref_targets
    assert IGNORE_INDEX == -100
    kept = targets[targets != IGNORE_INDEX].tolist()
    assistant = [t["content"] for t in conversation if t["role"] == "assistant"]
    assert kept == sum((tok.encode(a) + [tok.id_of(END)] for a in assistant), [])
    assert tok.decode(inputs.tolist() + [targets[-1].item() if targets[-1] >= 0 else tok.id_of(END)],
                      skip_special=False).startswith(render(conversation)[:20])


def test_the_models_loss_counts_only_the_assistant_targets():
    """GPT.forward's loss equals cross-entropy over the assistant positions alone (PyTorch's function as reference)."""
    tok = chat_tokenizer(CHARS)
    torch.manual_seed(0)
    model = GPT(GPTConfig(vocab_size=len(tok), context_length=64, d_model=16, n_heads=2, n_layers=1, d_ff=32))
    x, y = dialogue_batch(tok, [turns("hi", "hello!"), turns("a b c d e f", "ok", "bye", "see you")], 64)
    logits, loss = model(x, y)
    keep = y != -100
    expected = F.cross_entropy(logits[keep], y[keep])
    torch.testing.assert_close(loss, expected)
    assert keep.sum() < keep.numel() / 2


def test_loss_on_all_keeps_every_target_for_comparison():
    tok = chat_tokenizer(CHARS)
    x, y = encode_dialogue(tok, turns("hi", "yo"), 64, loss_on="all")
    assert y.tolist() == encode_turns(tok, turns("hi", "yo"))[0][1:] and x.shape == y.shape
    with pytest.raises(ValueError, match="loss_on"):
        encode_dialogue(tok, turns("hi", "yo"), 64, loss_on="user")


def test_dialogue_batch_pads_with_ignored_targets():
    tok = chat_tokenizer(CHARS)
    x, y = dialogue_batch(tok, [turns("hi", "hello"), turns("a much longer message", "and a longer reply")], 100)
    short, _ = encode_dialogue(tok, turns("hi", "hello"), 100)
    assert x.shape == y.shape and x.shape[0] == 2
    assert (y[0, len(short):] == IGNORE_INDEX).all() and (x[0, len(short):] == tok.id_of(END)).all()


# --- truncation -------------------------------------------------------------------------------------------------

def test_fit_turns_drops_whole_exchanges_oldest_first_and_keeps_the_system_turn():
    tok = chat_tokenizer(CHARS)
    conversation = turns("one", "i", "two", "ii", "three", "iii", "four?", system="sys")
    size = lambda ts: len(encode_turns(tok, ts)[0])  # noqa: E731
    kept, dropped = fit_turns(tok, conversation, size(conversation))
    assert kept == conversation and dropped == 0
    kept, dropped = fit_turns(tok, conversation, size(conversation) - 1)
    assert dropped == 2 and kept == [conversation[0]] + conversation[3:]
    kept, dropped = fit_turns(tok, conversation, size([conversation[0]] + conversation[-1:]))
    assert kept == [conversation[0], conversation[-1]] and dropped == 6
    with pytest.raises(ValueError, match=r"take \d+ tokens but only \d+ fit"):
        fit_turns(tok, conversation, size(conversation[-1:]))  # the system turn stays, so the last does not fit


def test_the_last_user_turn_is_never_cut_and_one_too_long_turn_is_a_clear_error():
    tok = chat_tokenizer(CHARS)
    with pytest.raises(ValueError, match="last exchange take 32 tokens but only 10 fit"):
        encode_dialogue(tok, turns("x" * 10, "y" * 18), 9)
    kept, dropped = fit_turns(tok, turns("aa", "bb", "cc"), 4)
    assert kept == turns("cc") and dropped == 2


def test_select_trainable_skips_conversations_without_a_reply_or_too_long():
    tok = chat_tokenizer(CHARS)
    usable, skipped = select_trainable(tok, [turns("hi", "yo"), turns("only a question"), turns("x" * 50, "y")], 20)
    assert usable == [turns("hi", "yo")] and skipped == 2


# --- generated memory dialogues ----------------------------------------------------------------------------------

def test_memory_dialogues_need_the_history_and_hold_out_unseen_pairs():
    train, held = memory_dialogues()
    assert len(train) + len(held) == len(MEMORY_NAMES) * len(MEMORY_LIKES) and len(held) > 50
    assert not any(re.search(r"(.)\1", w.lower()) for w in MEMORY_NAMES + MEMORY_LIKES)

    def pair(c):
        words = re.findall(r"[A-Za-z]+", c[0]["content"])
        return next(w for w in words if w in MEMORY_NAMES), words[-1]

    train_pairs = {pair(c) for c in train}
    assert not train_pairs & {pair(c) for c in held}
    assert {n for n, _ in train_pairs} == set(MEMORY_NAMES) and {lk for _, lk in train_pairs} == set(MEMORY_LIKES)
    for c in train + held:
        name, like = pair(c)
        assert c[-1]["content"] in (f"You like {like}.", f"You love {like}.", f"You are {name}.")
        assert name not in c[-2]["content"] and like not in c[-2]["content"], "the question must not give the answer"
    assert memory_dialogues(seed=0) == memory_dialogues(seed=0) and memory_dialogues(seed=1) != memory_dialogues(seed=0)


# --- chat() and its stream: a scripted model says exactly what the test wants --------------------------------------

class Scripted(nn.Module):
    """Logits that make greedy decoding write ``script`` after any prompt, through the KV cache like a GPT.

    Each row of a batch (notebook 21's batched generation) follows the script on its own: the cache's values
    count the tokens fed after the row's prompt (0 for a prompt's keys, 1 for each later one)."""

    def __init__(self, script, vocab_size, context_length=64):
        super().__init__()
        self.config = GPTConfig(vocab_size=vocab_size, context_length=context_length)
        self.blocks = [None]
        self.weight = nn.Parameter(torch.zeros(1))
        self.script, self.prompts = script, []

    def forward(self, ids, cache=None, positions=None, key_mask=None):
        batch, T = ids.shape
        prefill = len(cache) == 0
        if prefill:
            for row in range(batch):
                self.prompts.append((ids[row] if key_mask is None else ids[row][key_mask[row]]).tolist())
        fed = torch.zeros(batch, 1, T, 1) if prefill else torch.ones(batch, 1, T, 1)
        cache.update(0, fed, fed)
        steps = cache.values[0].sum(dim=(1, 2, 3)).long().tolist()  # (batch,): tokens fed after each row's prompt
        logits = torch.zeros(batch, T, self.config.vocab_size)
        for row, step in enumerate(steps):
            logits[row, -1, self.script[min(step, len(self.script) - 1)]] = 10.0
        return logits


def test_chat_returns_the_reply_only_and_stops_at_end_of_turn():
    tok = chat_tokenizer(CHARS)
    model = Scripted(tok.encode("hello you") + [tok.id_of(END)] + tok.encode("leak"), len(tok))
    reply = chat(model, tok, turns("hi", "hey"), "how are you?", temperature=0)
    assert reply == "hello you"
    assert model.prompts[-1] == encode_turns(tok, turns("hi", "hey", "how are you?"))[0] + [tok.id_of(ASSISTANT)]


def test_another_marker_also_ends_the_reply():
    tok = chat_tokenizer(CHARS)
    model = Scripted(tok.encode("ok") + [tok.id_of(USER)] + tok.encode("i am the user now"), len(tok))
    stream = stream_chat(model, tok, [], "hi", temperature=0)
    assert "".join(stream) == "ok" and stream.finish_reason == "stop" and stream.completion_tokens == 2


def test_the_stream_reports_length_and_usage_and_joins_to_chat():
    tok = chat_tokenizer(CHARS)
    model = Scripted(tok.encode("abcdefghij"), len(tok))
    stream = stream_chat(model, tok, [], "hi", max_new_tokens=4, temperature=0)
    assert isinstance(stream, ChatStream)
    pieces = list(stream)
    assert pieces == ["a", "b", "c", "d"] and stream.text == "abcd"
    assert stream.finish_reason == "length" and stream.completion_tokens == 4
    assert stream.prompt_tokens == len(encode_turns(tok, turns("hi"))[0]) + 1 and stream.dropped_turns == 0
    assert chat(model, tok, [], "hi", max_new_tokens=4, temperature=0) == "abcd"


def test_a_character_split_over_byte_tokens_streams_whole():
    tok = chat_tokenizer(BPETokenizer([]))
    model = Scripted(tok.encode("é!") + [tok.id_of(END)], len(tok))
    stream = stream_chat(model, tok, [], "hi", temperature=0)
    assert list(stream) == ["é", "!"] and "\ufffd" not in stream.text


def test_a_long_history_is_truncated_to_leave_room_for_the_reply():
    tok = chat_tokenizer(CHARS)
    model = Scripted(tok.encode("ok") + [tok.id_of(END)], len(tok), context_length=40)
    history = turns("first message", "first reply", "second", "reply")
    stream = stream_chat(model, tok, history, "third?", max_new_tokens=8, temperature=0)
    assert "".join(stream) == "ok" and stream.dropped_turns == 2
    assert len(model.prompts[-1]) <= 40 - 8
    assert tok.decode(model.prompts[-1]).startswith("second")
    with pytest.raises(ValueError, match="last exchange"):
        stream_chat(model, tok, [], "x" * 60, max_new_tokens=8)


def test_closing_a_stream_stops_generation():
    tok = chat_tokenizer(CHARS)
    model = Scripted(tok.encode("abcdefghij"), len(tok))
    stream = stream_chat(model, tok, [], "hi", max_new_tokens=10, temperature=0)
    assert next(stream) == "a"
    stream.close()
    assert list(stream) == [] and stream.finish_reason is None and model.training


def test_sampling_is_reproducible_with_a_generator_and_follows_the_model():
    tok = chat_tokenizer(CHARS)
    torch.manual_seed(0)
    model = grow_vocabulary(GPT(GPTConfig(vocab_size=len(CHARS), context_length=64, d_model=16, n_heads=2,
                                          n_layers=1, d_ff=32)), len(tok))
    reply = lambda seed: chat(model, tok, [], "hi", max_new_tokens=12, temperature=1.0, top_p=0.9,  # noqa: E731
                              generator=torch.Generator().manual_seed(seed))
    assert reply(1) == reply(1)
    assert len({reply(s) for s in range(4)}) > 1


def test_chat_refuses_bad_arguments_with_clear_errors():
    tok = chat_tokenizer(CHARS)
    model = Scripted(tok.encode("a"), len(tok))
    with pytest.raises(TypeError, match="chat tokenizer"):
        chat(model, CHARS, [], "hi")
    with pytest.raises(ValueError, match="turn 1: unknown role"):
        chat(model, tok, [{"role": "bot", "content": "x"}], "hi")
    with pytest.raises(ValueError, match="do not alternate"):
        chat(model, tok, turns("hi"), "again")
    with pytest.raises(ValueError, match="temperature"):
        chat(model, tok, [], "hi", temperature=-1)
    with pytest.raises(ValueError, match="repetition_penalty"):
        chat(model, tok, [], "hi", repetition_penalty=0.5)
    with pytest.raises(ValueError, match="characters the tokenizer was not built with"):
        chat(model, tok, [], "hi 123")
    small = Scripted(tok.encode("a"), len(CHARS))
    with pytest.raises(ValueError, match="grow_vocabulary"):
        chat(small, tok, [], "hi")


# --- repetition penalty against transformers' implementation ----------------------------------------------------------

def test_repetition_penalty_matches_transformers():
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    logits = torch.randn(1, 50)
    seen = torch.tensor([[3, 7, 7, 20, 49]])
    expected = transformers.RepetitionPenaltyLogitsProcessor(1.3)(seen, logits.clone())
    torch.testing.assert_close(apply_repetition_penalty(logits, seen[0], 1.3), expected)
    torch.testing.assert_close(apply_repetition_penalty(logits, seen[0], 1.0), logits)


def test_repetition_penalty_changes_what_greedy_chat_repeats():
    tok = chat_tokenizer(CHARS)

    class Repeats(Scripted):  # prefers "a" always, "b" a little less
        def forward(self, ids, cache=None, **rows):
            logits = super().forward(ids, cache, **rows)
            logits[:, -1] = 0.0
            logits[:, -1, tok.encode("a")[0]] = 2.0
            logits[:, -1, tok.encode("b")[0]] = 1.9
            return logits

    model = Repeats([0], len(tok))
    assert chat(model, tok, [], "hi", max_new_tokens=3, temperature=0) == "aaa"
    assert chat(model, tok, [], "hi", max_new_tokens=3, temperature=0, repetition_penalty=1.2) == "aba"


# --- the command line ----------------------------------------------------------------------------------------------

def run_cli(*args, stdin=""):
    return subprocess.run([sys.executable, "-m", "course_lib", *map(str, args)], input=stdin, capture_output=True,
                          text=True, cwd=ROOT, timeout=120)


@pytest.fixture(scope="module")
def base_checkpoint(tmp_path_factory):
    path = tmp_path_factory.mktemp("chat") / "base.pt"
    bpe = BPETokenizer.train((ROOT / "data" / "shakespeare.txt").read_text()[:20000], 280)
    torch.manual_seed(0)
    save_checkpoint(path, GPT(GPTConfig(vocab_size=len(bpe), context_length=64, d_model=16, n_heads=2, n_layers=1,
                                        d_ff=32)), bpe)
    return path


def test_cli_finetune_then_chat_with_reset_and_exit(base_checkpoint, tmp_path):
    out = tmp_path / "chat.pt"
    done = run_cli("finetune", "--base", base_checkpoint, "--data", "data/dialogues.jsonl", "--out", out,
                   "--steps", "3", "--no-progress")
    assert done.returncode == 0, done.stderr
    assert "reply perplexity" in done.stdout and out.is_file()
    model, tok = load_checkpoint(out)
    assert isinstance(tok, SpecialTokens) and model.config.vocab_size == len(tok) == 280 + 4
    talk = run_cli("chat", "--checkpoint", out, "--max-new-tokens", "5", stdin="Hello\n/reset\n/nope\nHi\n/exit\nnever read\n")
    assert talk.returncode == 0, talk.stderr
    assert talk.stdout.count("bot> ") == 2 and "(history cleared)" in talk.stdout
    assert "unknown command /nope" in talk.stderr
    eof = run_cli("chat", "--checkpoint", out, "--max-new-tokens", "3", stdin="Hello\n")  # Ctrl-D ends
    assert eof.returncode == 0 and eof.stdout.count("bot> ") == 1


def run_main(capsys, monkeypatch, *args, stdin=""):
    """The command line in this process (the subprocess tests above cover the real entry point)."""
    import io

    from course_lib.cli import main

    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    monkeypatch.chdir(ROOT)
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("problem, args, message", [
    ("no base", ["--base", "missing.pt"], "--base missing.pt: no such file"),
    ("not a checkpoint", ["--base", "data/lang.txt"], "not a course checkpoint"),
    ("bad data", ["--data", "data/lang.txt"], "lang.txt line 1: invalid JSON"),
    ("no data", ["--data", "missing.jsonl"], "--data missing.jsonl: no such file"),
    ("out is base", ["--out", "BASE"], "is the --base checkpoint"),
])
def test_cli_finetune_errors_are_one_line(capsys, monkeypatch, base_checkpoint, tmp_path, problem, args, message):
    given = {"--base": base_checkpoint, "--data": "data/dialogues.jsonl", "--out": tmp_path / "o.pt"}
    for flag, value in zip(args[::2], args[1::2]):
        given[flag] = base_checkpoint if value == "BASE" else value
    code, _, err = run_main(capsys, monkeypatch, "finetune", *[x for kv in given.items() for x in kv], "--steps", "1",
                            "--no-progress")
    assert code == 2, problem
    assert message in err and len(err.strip().splitlines()) == 1, err
    assert base_checkpoint.is_file()


def test_cli_finetune_with_too_little_usable_data(capsys, monkeypatch, base_checkpoint, tmp_path):
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"turns": turns("hi", "hello")}) + "\n" + json.dumps({"turns": turns("only asking")}) + "\n")
    code, _, err = run_main(capsys, monkeypatch, "finetune", "--base", base_checkpoint, "--data", data,
                            "--out", tmp_path / "o.pt", "--no-progress")
    assert code == 2 and "1 conversation(s) with an assistant turn" in err and not (tmp_path / "o.pt").exists()


def test_cli_chat_refuses_a_model_that_is_not_a_chat_model(capsys, monkeypatch, base_checkpoint):
    code, _, err = run_main(capsys, monkeypatch, "chat", "--checkpoint", base_checkpoint, stdin="hi\n")
    assert code == 2 and "not a chat model" in err and "finetune" in err


def test_cli_chat_reports_a_bad_message_and_goes_on(capsys, monkeypatch, tmp_path):
    tok = chat_tokenizer(CharTokenizer("abc "))
    torch.manual_seed(0)
    path = tmp_path / "c.pt"
    save_checkpoint(path, GPT(GPTConfig(vocab_size=len(tok), context_length=16, d_model=16, n_heads=2, n_layers=1,
                                        d_ff=32)), tok)
    code, out, err = run_main(capsys, monkeypatch, "chat", "--checkpoint", path, "--max-new-tokens", "2",
                              stdin="xyz\n" + "a" * 40 + "\nab\n")
    assert code == 0
    assert "characters the tokenizer was not built with" in err and "take" in err
    assert out.count("bot> ") == 1


def test_word_tokenizer_bases_work_too():
    tok = chat_tokenizer(WordTokenizer.from_sentences(["hi there", "hello friend"]))
    inputs, targets = encode_dialogue(tok, turns("hi there", "hello friend"), 16)
    assert tok.decode([t for t in targets.tolist() if t >= 0]) == "hello friend"


@pytest.mark.parametrize("argv, flag", [
    (["finetune", "--steps", "-1"], "--steps"), (["finetune", "--lr", "0"], "--lr"),
    (["finetune", "--val-fraction", "0.9"], "--val-fraction"), (["finetune", "--loss-on", "user"], "--loss-on"),
    (["chat", "--temperature", "-1"], "--temperature"), (["chat", "--top-p", "0"], "--top-p"),
    (["chat", "--repetition-penalty", "0.5"], "--repetition-penalty"), (["chat", "--max-new-tokens", "nan"], "--max-new-tokens"),
])
def test_cli_chat_flags_refuse_bad_values_in_one_line(capsys, tmp_path, argv, flag):
    from course_lib.cli import main

    paths = {"finetune": ["--base", "b.pt", "--data", "d.jsonl", "--out", str(tmp_path / "o.pt")], "chat": ["--checkpoint", "c.pt"]}
    assert main(argv[:1] + paths[argv[0]] + argv[1:]) == 2
    err = capsys.readouterr().err
    assert flag in err and len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "o.pt").exists()
