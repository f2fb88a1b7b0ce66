"""get_device, seed_everything, data_path and the plotting helpers."""
import hashlib
import random

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

import course_lib
from course_lib.data import data_path, load_sentences
from course_lib.device import get_device
from course_lib.plotting import plot_attention, plot_attention_heads


def test_get_device_default_and_override(monkeypatch):
    monkeypatch.delenv("COURSE_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert get_device().type == expected
    monkeypatch.setenv("COURSE_DEVICE", "cpu")
    assert get_device() == torch.device("cpu")
    assert get_device("cpu") == torch.device("cpu")  # an explicit name wins over the variable
    with pytest.raises(ValueError, match="--device='cpu:x'"):
        get_device("cpu:x")
    monkeypatch.setenv("COURSE_DEVICE", "tpu")
    with pytest.raises(ValueError, match="COURSE_DEVICE='tpu'"):
        get_device()
    if not torch.cuda.is_available():
        monkeypatch.setenv("COURSE_DEVICE", "cuda")
        with pytest.raises(ValueError, match="no CUDA GPU"):
            get_device()


def test_seed_everything_repeats_all_generators():
    course_lib.seed_everything(123)
    a = (random.random(), np.random.rand(), torch.rand(1).item())
    course_lib.seed_everything(123)
    assert (random.random(), np.random.rand(), torch.rand(1).item()) == a
    with pytest.raises(TypeError):
        course_lib.seed_everything("42")


def test_data_path_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = data_path("lang.txt")
    assert path.is_file() and path.name == "lang.txt"
    sentences = load_sentences("lang.txt")
    assert len(sentences) == 20 and sentences[0] == "Python is a popular programming language."
    with pytest.raises(FileNotFoundError, match="no data file 'nope.txt'.*lang.txt"):
        data_path("nope.txt")


def test_lang_txt_is_the_seed_corpus_byte_for_byte():
    # The twenty sentences of the course's source document (seed 004), as the course ships them.
    digest = hashlib.sha256(data_path("lang.txt").read_bytes()).hexdigest()
    expected = "80e813541a23d5806b7da8b57c2ce4372b20e28ec1a0efa9eb3fb4b78a49c42d"
    assert digest == expected, "data/lang.txt changed: the stored notebook outputs and the corpus floor depend on it"


def test_plot_attention_draws_labelled_heatmap():
    w = torch.softmax(torch.randn(1, 1, 3, 4), dim=-1)
    ax = plot_attention(w, ["a", "b", "c"], ["w", "x", "y", "z"], title="t")
    image = ax.images[0].get_array()
    np.testing.assert_allclose(image, w[0, 0].numpy(), rtol=1e-6)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["w", "x", "y", "z"]
    assert ax.get_title() == "t" and len(ax.figure.axes) == 2  # heatmap and its colour bar
    plt.close(ax.figure)
    ax = plot_attention(torch.ones(3, 3, dtype=torch.bool).tril())  # masks draw too
    assert ax.images[0].get_array()[0, 1] == 0
    plt.close(ax.figure)


def test_plot_attention_bad_inputs():
    with pytest.raises(ValueError, match="2-D"):
        plot_attention(torch.rand(2, 3, 3))
    with pytest.raises(ValueError, match="query_labels has 2 labels but the weights have 3"):
        plot_attention(torch.rand(3, 3), ["a", "b"])


def test_plot_attention_heads_one_panel_per_head():
    fig = plot_attention_heads(torch.rand(1, 6, 4, 4), labels=list("abcd"), ncols=4)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 6 and drawn[5].get_title() == "head 5"
    plt.close(fig)
    with pytest.raises(ValueError, match="heads"):
        plot_attention_heads(torch.rand(4, 4))
