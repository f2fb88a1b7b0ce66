"""Heatmaps of attention weights, masks and position tables (introduced in notebook 01)."""
import math

import matplotlib.pyplot as plt
import numpy as np
import torch


def _as_2d_array(name, values):
    if isinstance(values, torch.Tensor):
        values = values.detach().to("cpu", torch.float32).numpy()
    values = np.asarray(values, dtype=np.float32)
    while values.ndim > 2 and values.shape[0] == 1:
        values = values[0]  # drop leading batch/head axes of size 1
    if values.ndim != 2:
        raise ValueError(f"{name} must be 2-D (T_q, T_k) after dropping size-1 axes, got shape {values.shape}")
    return values


def plot_attention(weights, query_labels=None, key_labels=None, ax=None, title=None,
                   cmap="viridis", vmin=None, vmax=None, colorbar=True):
    """A labelled heatmap of ``weights`` ``(T_q, T_k)``: rows are queries, columns are keys (notebook 01).

    Also draws masks (booleans show as 0/1) and position tables (pass ``vmin=-1, vmax=1``).
    Leading axes of size 1 (a batch of one, one head) are dropped. Returns the matplotlib Axes.
    """
    values = _as_2d_array("weights", weights)
    n_q, n_k = values.shape
    for name, labels, n in (("query_labels", query_labels, n_q), ("key_labels", key_labels, n_k)):
        if labels is not None and len(labels) != n:
            raise ValueError(f"{name} has {len(labels)} labels but the weights have {n} {name.split('_')[0]} positions")
    if ax is None:
        width = min(2 + 0.45 * n_k, 14) if key_labels is not None else 6
        height = min(1.5 + 0.4 * n_q, 12) if query_labels is not None else 5
        _, ax = plt.subplots(figsize=(width, height))
    image = ax.imshow(values, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    if key_labels is not None:
        ax.set_xticks(range(n_k))
        ax.set_xticklabels(key_labels, rotation=60, ha="right")
    if query_labels is not None:
        ax.set_yticks(range(n_q))
        ax.set_yticklabels(query_labels)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if title:
        ax.set_title(title)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def plot_attention_heads(weights, labels=None, title=None, ncols=4, cmap="viridis"):
    """A grid of heatmaps, one panel per head; ``weights`` is ``(heads, T, T)`` or ``(1, heads, T, T)`` (notebook 02).

    ``labels`` names the positions (used for both axes of a self-attention map). Returns the Figure.
    """
    if isinstance(weights, torch.Tensor):
        weights = weights.detach().to("cpu", torch.float32).numpy()
    weights = np.asarray(weights, dtype=np.float32)
    if weights.ndim == 4 and weights.shape[0] == 1:
        weights = weights[0]
    if weights.ndim != 3:
        raise ValueError(f"weights must be (heads, T_q, T_k) or (1, heads, T_q, T_k), got shape {weights.shape}")
    n_heads = weights.shape[0]
    ncols = max(1, min(ncols, n_heads))
    nrows = math.ceil(n_heads / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.6 * ncols, 3.4 * nrows), squeeze=False)
    for h, ax in enumerate(axes.flat):
        if h >= n_heads:
            ax.axis("off")
            continue
        plot_attention(weights[h], labels, labels, ax=ax, title=f"head {h}", cmap=cmap,
                       vmin=0.0, vmax=1.0, colorbar=False)
        ax.set_xlabel("")
        ax.set_ylabel("")
        ax.tick_params(labelsize=7)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def token_strip(tokens, learned, ax=None, per_row=24, title=None):
    """Tokens as a strip of boxes: green where the loss counts the token, grey where it is ignored (notebook 14).

    ``tokens`` are the pieces of text (one per token, e.g. ``tokenizer.decode([i], skip_special=False)``)
    and ``learned`` says for each whether it is a target the model learns to write. Spaces show as
    ``·`` and line breaks as ``⏎``, so every token is visible. Returns the matplotlib Axes.
    """
    tokens, learned = list(tokens), [bool(x) for x in learned]
    if len(tokens) != len(learned) or not tokens:
        raise ValueError(f"tokens and learned must be non-empty and of equal length, got {len(tokens)} and {len(learned)}")
    rows = math.ceil(len(tokens) / per_row)
    if ax is None:
        _, ax = plt.subplots(figsize=(min(16, 0.62 * per_row), 0.55 * rows + 0.4))
    for i, (token, keep) in enumerate(zip(tokens, learned)):
        row, col = divmod(i, per_row)
        ax.add_patch(plt.Rectangle((col, -row), 0.94, 0.84, color="#7fc97f" if keep else "#dddddd"))
        label = token.replace(" ", "·").replace("\n", "⏎")
        ax.text(col + 0.47, -row + 0.42, label, ha="center", va="center", fontsize=7 if len(label) < 6 else 5,
                family="monospace")
    ax.set_xlim(0, per_row)
    ax.set_ylim(-rows + 1 - 0.1, 0.95)
    ax.axis("off")
    ax.set_title(title or "green: the loss counts this token · grey: ignored (-100)", fontsize=9)
    return ax
