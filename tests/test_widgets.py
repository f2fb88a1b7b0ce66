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
