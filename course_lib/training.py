"""Training, evaluation and checkpoints (introduced in notebook 07)."""
import math
import os
import time
from collections import Counter
from dataclasses import fields
from pathlib import Path

import torch
import torch.nn.functional as F

from ._validate import require_finite_number, require_positive_int, require_token_ids
from .gpt import GPT, GPTConfig
from .tokenizer import tokenizer_from_dict

CHECKPOINT_FORMAT = "course_lib.gpt-checkpoint"
#: 2: GPTConfig.scale_embeddings (version 1 files were trained without it); 3: character and BPE
#: tokenizers, and the training state of ``pretraining.pretrain`` (notebook 12).
CHECKPOINT_VERSION = 3
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


def _check_data(data, name="data"):
    if not (isinstance(data, (tuple, list)) and len(data) == 2):
        raise TypeError(f"{name} must be a pair (inputs, targets) of LongTensors, e.g. from tokenizer.make_batch")
    inputs, targets = data
    if not (isinstance(inputs, torch.Tensor) and isinstance(targets, torch.Tensor)) or inputs.shape != targets.shape or inputs.dim() != 2:
        shapes = [tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__ for t in data]
        raise ValueError(f"{name}: inputs and targets must be 2-D tensors of the same shape (rows, seq), got {shapes}")
    if inputs.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(inputs.shape)}): a loss over no tokens means nothing")
    require_token_ids(f"{name}'s inputs", inputs)
    require_token_ids(f"{name}'s targets", targets)
    return inputs, targets


@torch.no_grad()
def evaluate(model, data, pad_id=None, batch_size=256):
    """Mean next-token cross-entropy (nats per token) over every non-padding target in ``data`` (notebook 07)."""
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
    if count == 0:
        raise ValueError("every target in data is padding (pad_id): there is nothing to measure the loss on")
    return total / count


def make_optimizer(model, lr=DEFAULT_LR, weight_decay=0.0):
    """AdamW over the model's parameters, in PyTorch's fastest implementation for them (notebook 07).

    ``fused=True`` updates every parameter in one kernel (CPU and CUDA, PyTorch >= 2.4); older
    versions fall back to ``foreach=True`` (one call per parameter group). Same arithmetic, fewer
    Python loops: on a small model the optimizer step is a third of the step's time otherwise.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    try:
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    except (RuntimeError, TypeError, ValueError):  # fused not available for this device or version
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, foreach=True)


def train_step(model, optimizer, x, y, pad_id=None, clip_grad=1.0):
    """One step of gradient descent: the five lines at the heart of every training loop (notebook 07)."""
    _, loss = model(x, y, pad_id=pad_id)  # 1. forward: predictions and their loss
    optimizer.zero_grad(set_to_none=True)  # 2. forget the previous step's gradients
    loss.backward()  # 3. backward: d(loss)/d(weight) for every weight
    if clip_grad:
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)  # 4. cap the step on a rare huge gradient
    optimizer.step()  # 5. move every weight a little downhill
    return loss.item()  # (.item() also waits for the GPU, so timings are honest)


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
    inputs, targets = _check_train_args(data, steps, lr, batch_size, clip_grad, weight_decay, eval_every, stop_at,
                                         seed, val_data, restore_best)
    if (stop_at is not None or val_data is not None) and eval_every is None:
        eval_every = 10
    history = {"step": [], "loss": [], "eval_step": [], "eval_loss": [], "val_loss": [], "seconds": 0.0,
               "interrupted": False}
    best_val, best_state = math.inf, None
    bar = None
    elapsed = 0.0
    try:  # from here on, Ctrl-C (or the notebook's stop button) keeps what was learned
        device = next(model.parameters()).device
        inputs, targets = inputs.to(device), targets.to(device)
        optimizer = make_optimizer(model, lr, weight_decay)
        generator = torch.Generator().manual_seed(seed)
        bar = _progress(steps) if progress else None
        model.train()
        for step in range(1, steps + 1):
            started = time.perf_counter()
            if batch_size is None or batch_size >= len(inputs):
                x, y = inputs, targets
            else:
                rows = torch.randperm(len(inputs), generator=generator)[:batch_size].to(device)
                x, y = inputs[rows], targets[rows]
            loss_value = train_step(model, optimizer, x, y, pad_id, clip_grad)
            elapsed += time.perf_counter() - started
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"the loss became {loss_value} at step {step}; lower lr (now {lr})")
            history["step"].append(step)
            history["loss"].append(loss_value)
            if bar is not None:
                bar.set_postfix(loss=f"{loss_value:.4f}", refresh=False)
                bar.update(1)
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


def _check_train_args(data, steps, lr, batch_size, clip_grad, weight_decay, eval_every, stop_at, seed, val_data,
                      restore_best):
    inputs, targets = _check_data(data)
    require_positive_int("steps", steps, allow_zero=True)
    require_finite_number("lr", lr, low=0, low_open=True)
    if batch_size is not None:
        require_positive_int("batch_size", batch_size)
    if clip_grad is not None:
        require_finite_number("clip_grad", clip_grad, low=0)  # a negative norm would flip the gradient
    require_finite_number("weight_decay", weight_decay, low=0)
    if eval_every is not None:
        require_positive_int("eval_every", eval_every)
    if stop_at is not None:
        require_finite_number("stop_at", stop_at, low=0)
    require_positive_int("seed", seed, allow_zero=True)
    if restore_best and val_data is None:
        raise ValueError("restore_best=True needs val_data: the best step is the one with the lowest validation loss")
    if val_data is not None:
        _check_data(val_data, "val_data")
    return inputs, targets


def perplexity(model, data, pad_id=None):
    """exp(mean next-token loss): the number of equally likely choices the model is as unsure as (notebook 10)."""
    return math.exp(evaluate(model, data, pad_id))


def _progress(total, initial=0):
    from tqdm.auto import tqdm

    # mininterval: redraw at most 5 times a second; the final state is drawn once, by close().
    return tqdm(total=total, initial=initial, desc="training", unit="step", leave=True, mininterval=0.2)


def save_checkpoint(path, model, tokenizer, training=None, **extra):
    """Save the model's weights and configuration and the tokenizer to ``path`` (one file, notebook 07).

    The file is written next to ``path`` under a temporary name and then renamed over it, so a crash
    or a full disk mid-save never leaves a half-written file where a good checkpoint was.
    ``training`` (notebook 12) is the state ``pretraining.pretrain`` resumes from.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"save_checkpoint saves a course_lib GPT, got {type(model).__name__}")
    tokenizer_dict = tokenizer.to_dict() if hasattr(tokenizer, "to_dict") else None
    if not isinstance(tokenizer_dict, dict):
        raise TypeError("save_checkpoint saves the model's tokenizer with it (a WordTokenizer, CharTokenizer or "
                        f"BPETokenizer), got {type(tokenizer).__name__}")
    if len(tokenizer) > model.config.vocab_size:  # load_checkpoint would refuse the file: refuse it now, not later
        raise ValueError(f"the tokenizer has {len(tokenizer)} tokens but the model only {model.config.vocab_size}: "
                         "ids past the model's vocabulary have no embedding (grow the model with "
                         "gpt.grow_vocabulary, or save it with the tokenizer it was built for)")
    path = Path(path)
    check_output_path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        contents = {"format": CHECKPOINT_FORMAT, "version": CHECKPOINT_VERSION, "config": model.config.to_dict(),
                    "state_dict": state, "tokenizer": tokenizer_dict, "extra": extra}
        if training is not None:
            contents["training"] = training
        torch.save(contents, temporary)
        os.replace(temporary, path)  # atomic on POSIX and Windows
    finally:
        temporary.unlink(missing_ok=True)
    return path


def check_output_path(path):
    """Raise ValueError unless a file can be written at ``path``: not a folder, not under a file (notebook 07)."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a folder; give a file name inside it, e.g. {path / 'model.pt'}")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise ValueError(f"cannot write {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK):
                raise ValueError(f"cannot write {path}: no permission to write in {parent}")
            break


def load_checkpoint_data(path):
    """The checked contents of a course checkpoint file, as a dict (notebook 07; training state: notebook 12).

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
    if data.get("version") not in (1, 2, CHECKPOINT_VERSION):
        raise ValueError(f"{path} is a version {data.get('version')} checkpoint; this course_lib reads versions 1 to {CHECKPOINT_VERSION}")
    return data


def load_checkpoint(path, device=None):
    """Load ``(model, tokenizer)`` saved by ``save_checkpoint``; the model is in eval mode (notebook 07).

    Uses ``torch.load(weights_only=True)``, which cannot run code hidden in a file, and refuses a
    file that is not a course checkpoint, or one that is broken inside, with a clear error.
    """
    data = load_checkpoint_data(path)
    try:
        config = data["config"]
        if not isinstance(config, dict):
            raise TypeError("its config is not a dict")
        if data["version"] == 1:
            config = {**config, "scale_embeddings": False}  # how version 1 models were built
        known = {f.name for f in fields(GPTConfig)}
        unknown = sorted(set(config) - known)
        if unknown:
            raise ValueError(f"its config has keys this course_lib does not know: {unknown}")
        model = GPT(GPTConfig(**config))
        model.load_state_dict(data["state_dict"])
        tokenizer = tokenizer_from_dict(data["tokenizer"])
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        detail = f"it lacks {error}" if isinstance(error, KeyError) else str(error).splitlines()[0][:200]
        raise ValueError(f"{path} is a broken course checkpoint: {detail}") from None
    if len(tokenizer) > model.config.vocab_size:  # fewer is fine: unused rows, as GPT-2's padded vocabularies
        raise ValueError(f"{path} is a broken course checkpoint: its tokenizer has {len(tokenizer)} tokens "
                         f"but its model only {model.config.vocab_size}")
    if device is not None:
        model.to(device)
    return model.eval(), tokenizer
