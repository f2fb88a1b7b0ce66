"""The temperature explorer regenerates text when a slider moves (no browser needed for this part)."""

import course_lib
from course_lib.data import load_sentences
from course_lib.gpt import GPT, GPTConfig
from course_lib.tokenizer import WordTokenizer, make_batch
from course_lib.training import train
from course_lib.widgets import temperature_explorer


def test_temperature_slider_regenerates_text():
    sentences = load_sentences("lang.txt")
    tokenizer = WordTokenizer.from_sentences(sentences)
    course_lib.seed_everything(0)
    model = GPT(GPTConfig(vocab_size=len(tokenizer)))
    train(model, make_batch(tokenizer, sentences), steps=60, pad_id=0, progress=False)
    explorer = temperature_explorer(model, tokenizer, "Python zebra", samples=4)
    assert "Python" in explorer.text.value and "zebra" in explorer.text.value  # unknown word is named
    explorer.temperature.value = 0.0
    greedy = explorer.text.value
    assert "greedy" in greedy
    explorer.temperature.value = 3.0
    hot = explorer.text.value
    assert hot != greedy and "temperature 3.00" in hot
    explorer.top_k.value = 1  # top-k = 1 is greedy again, whatever the temperature
    assert explorer.text.value.split("samples:")[1] == greedy.split("samples:")[1]


def test_chat_box_keeps_the_history_streams_and_resets():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_chat import CHARS, Scripted

    from course_lib.chat import END, chat_tokenizer
    from course_lib.widgets import chat_widget

    tok = chat_tokenizer(CHARS.extended("<>/"))
    model = Scripted(tok.encode("hi there") + [tok.id_of(END)], len(tok), context_length=40)
    box = chat_widget(model, tok, system="be nice")
    assert "no messages yet" in box.conversation.value
    shown = []
    box.conversation.observe(lambda change: shown.append(change["new"]), names="value")
    box.message.value = "hello"  # what pressing Enter does (continuous_update=False)
    streaming = [v for v in shown if "chat-streaming" in v]
    assert len(streaming) == len("hi there") and "hi ther" in streaming[-2], "the reply is drawn piece by piece"
    assert box.message.value == "" and box.history[-2:] == [{"role": "user", "content": "hello"},
                                                            {"role": "assistant", "content": "hi there"}]
    assert "hello" in box.conversation.value and "hi there" in box.conversation.value and "stop" in box.status.value
    box.message.value, before = "again, please", len(model.prompts)
    assert len(model.prompts) == before + 1, "one message, one reply"
    box.send.click()  # the box is empty now: nothing is sent twice
    assert len(model.prompts) == before + 1
    assert tok.decode(model.prompts[-1]).startswith("be nice"), "the system prompt stays"
    box.say("x" * 12)
    box.say("y" * 12)
    assert "oldest turns no longer fit" in box.status.value and box.history[0]["role"] == "system"
    box.say("123")  # characters the tokenizer does not have
    assert "not built with" in box.status.value
    box.reset.click()
    assert box.history == [{"role": "system", "content": "be nice"}] and "no messages yet" in box.conversation.value
    box.message.value = "<b>bold</b>"
    assert "&lt;b&gt;" in box.conversation.value, "messages are shown as text, never as HTML"
