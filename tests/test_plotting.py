"""Heatmaps of attention weights, masks and position tables (course_lib.plotting)."""
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from course_lib.plotting import plot_attention, plot_attention_heads


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

