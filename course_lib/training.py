"""Training, evaluation and checkpoints (introduced in notebook 07)."""
import math
from collections import Counter
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ._validate import require_positive_int
from .gpt import GPT, GPTConfig
from .tokenizer import WordTokenizer

CHECKPOINT_FORMAT = "course_lib.gpt-checkpoint"
CHECKPOINT_VERSION = 1
#: The course's learning rate for AdamW, measured in notebook 07 to be fast and stable for the
#: default GPTConfig on lang.txt (1.02x the corpus floor in ~110 full-batch steps).
DEFAULT_LR = 1e-2


def corpus_floor(tokenizer, sentences):
    """The lowest mean next-token loss (nats per token) any model can reach on ``sentences``.

    A perfect memoriser knows every sentence, but not which one comes next: after ``<sos>`` the
    best it can do is the corpus's own distribution of first words, and wherever two sentences
    share a prefix it must split its bet between their continuations. Every target is counted,
    ``<eos>`` included, padding excluded, as ``evaluate`` counts them (notebook 07).
    """
    sequences = [tuple(tokenizer.encode(s, add_sos=True, add_eos=True)) for s in sentences]
    prefix_counts = Counter(seq[:t] for seq in sequences for t in range(1, len(seq) + 1))
    total = sum(-math.log(prefix_counts[seq[:t + 1]] / prefix_counts[seq[:t]])
                for seq in sequences for t in range(1, len(seq)))
    return total / sum(len(seq) - 1 for seq in sequences)


def _check_data(data):
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError("data must be a pair (inputs, targets) of LongTensors, e.g. from tokenizer.make_batch")
    inputs, targets = data
    if not (isinstance(inputs, torch.Tensor) and isinstance(targets, torch.Tensor)) or inputs.shape != targets.shape or inputs.dim() != 2:
        shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in data]
        raise ValueError(f"inputs and targets must be 2-D tensors of the same shape (rows, seq), got {shapes}")
    return inputs, targets


@torch.no_grad()
def evaluate(model, data, pad_id=None, batch_size=256):
    """Mean next-token cross-entropy (nats per token) over every non-padding target in ``data``."""
    inputs, targets = _check_data(data)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total, count = 0.0, 0
    ignore = pad_id if pad_id is not None else -100
    for start in range(0, len(inputs), batch_size):
        x = inputs[start:start + batch_size].to(device)
        y = targets[start:start + batch_size].to(device)
        logits = model(x, pad_id=pad_id)
        total += F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1),
                                 ignore_index=ignore, reduction="sum").item()
        count += int((y != ignore).sum())
    model.train(was_training)
    return total / max(count, 1)


def train(model, data, steps, lr=DEFAULT_LR, batch_size=None, pad_id=None, clip_grad=1.0, weight_decay=0.0,
          eval_every=None, stop_at=None, seed=0, progress=True, val_data=None, restore_best=False):
    """Train ``model`` on ``data = (inputs, targets)`` with AdamW for ``steps`` steps.

    Each step draws ``batch_size`` rows (all rows when None) with a generator seeded by ``seed``.
    The loss ignores padding (``pad_id``); gradients are clipped to norm ``clip_grad``. Every
    ``eval_every`` steps the loss over all of ``data`` is measured; with ``stop_at`` set, training
    stops as soon as that loss is at most ``stop_at``.

    With ``val_data`` (held-out ``(inputs, targets)``, notebook 10) the loss on it is measured at
    the same steps, and ``restore_best=True`` puts back the weights of the step with the lowest
    validation loss at the end (early stopping).

    Returns a history dict: ``step``, ``loss`` (each step's batch loss), ``eval_step``,
    ``eval_loss``, ``val_loss`` (empty without ``val_data``), ``best_step`` (with ``val_data``),
    ``seconds`` (training time, evaluation excluded) and ``interrupted`` (True when Ctrl-C or the
    notebook's stop button ended training early; the model keeps what it learned). The model is
    left in eval mode.
    """
    inputs, targets = _check_data(data)
    require_positive_int("steps", steps, allow_zero=True)
    if not (isinstance(lr, (int, float)) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if batch_size is not None:
        require_positive_int("batch_size", batch_size)
    if eval_every is not None:
        require_positive_int("eval_every", eval_every)
    if (stop_at is not None or val_data is not None) and eval_every is None:
        eval_every = 10
    if restore_best and val_data is None:
        raise ValueError("restore_best=True needs val_data: the best step is the one with the lowest validation loss")
    if val_data is not None:
        _check_data(val_data)
    device = next(model.parameters()).device
    inputs, targets = inputs.to(device), targets.to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    history = {"step": [], "loss": [], "eval_step": [], "eval_loss": [], "val_loss": [], "seconds": 0.0}
    best_val, best_state = math.inf, None
    bar = _progress(steps) if progress else None
    model.train()
    elapsed = 0.0
    history["interrupted"] = False
    try:
        for step in range(1, steps + 1):
            started = time.perf_counter()
            if batch_size is None or batch_size >= len(inputs):
                x, y = inputs, targets
            else:
                rows = torch.randperm(len(inputs), generator=generator)[:batch_size].to(device)
                x, y = inputs[rows], targets[rows]
            _, loss = model(x, y, pad_id=pad_id)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if clip_grad:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
            optimizer.step()
            loss_value = loss.item()  # also waits for the GPU, so the timing is honest
            elapsed += time.perf_counter() - started
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"the loss became {loss_value} at step {step}; lower lr (now {lr})")
            history["step"].append(step)
            history["loss"].append(loss_value)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}")
            if eval_every and (step % eval_every == 0 or step == steps):
                corpus_loss = evaluate(model, (inputs, targets), pad_id)
                history["eval_step"].append(step)
                history["eval_loss"].append(corpus_loss)
                if val_data is not None:
                    val_loss = evaluate(model, val_data, pad_id)
                    history["val_loss"].append(val_loss)
                    if val_loss < best_val:
                        best_val, history["best_step"] = val_loss, step
                        if restore_best:
                            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
                if stop_at is not None and corpus_loss <= stop_at:
                    break
    except KeyboardInterrupt:
        # Stopping early (Ctrl-C, or the notebook's stop button) keeps the model as trained so far.
        history["interrupted"] = True
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    if best_state is not None:
        model.load_state_dict(best_state)  # early stopping: the weights of the best validation step
    history["seconds"] = elapsed
    return history


def perplexity(model, data, pad_id=None):
    """exp(mean next-token loss): the number of equally likely choices the model is as unsure as (notebook 10)."""
    return math.exp(evaluate(model, data, pad_id))


def _progress(total):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="training", unit="step", leave=True)


def save_checkpoint(path, model, tokenizer, **extra):
    """Save the model's weights and configuration and the tokenizer to ``path`` (one file)."""
    if not isinstance(model, GPT):
        raise TypeError(f"save_checkpoint saves a course_lib GPT, got {type(model).__name__}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save({"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION,
                "config": model.config.to_dict(), "state_dict": state,
                "tokenizer": tokenizer.to_dict(), "extra": extra}, path)
    return path


def load_checkpoint(path, device=None):
    """Load ``(model, tokenizer)`` saved by ``save_checkpoint``; the model is in eval mode.

    Uses ``torch.load(weights_only=True)``, which cannot run code hidden in a file, and refuses a
    file that is not a course checkpoint with a clear error.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    try:
        data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # noqa: BLE001 - arbitrary bytes make the unpickler fail in arbitrary ways
        raise ValueError(f"{path} is not a course checkpoint (torch.load could not read it safely: {str(error)[:120]})") from None
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a course checkpoint (no '{CHECKPOINT_FORMAT}' marker); "
                         "save one with course_lib.training.save_checkpoint")
    if data.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{path} is a version {data.get('version')} checkpoint; this course_lib reads version {CHECKPOINT_VERSION}")
    model = GPT(GPTConfig(**data["config"]))
    model.load_state_dict(data["state_dict"])
    if device is not None:
        model.to(device)
    return model.eval(), WordTokenizer.from_dict(data["tokenizer"])
