"""Pretraining on a token stream the way small LLMs are trained (introduced in notebook 12).

Notebook 07's ``train`` is the lesson: five lines a step. This is the same loop with what a
practitioner adds to train a real model fast and safely:

- AdamW with weight decay on the weight matrices only, linear warm-up then cosine decay;
- gradient accumulation and clipping; mixed precision (bfloat16, or float16 with a gradient
  scaler); ``torch.compile`` on request; tokens/s and model FLOPs utilisation (MFU);
- several processes with ``DistributedDataParallel`` (``torchrun``), each on its share of the batch;
- checkpoints that hold everything a run needs to continue exactly where it stopped.
"""
import contextlib
import math
import os
import time
from dataclasses import asdict, dataclass, field, fields

import torch
import torch.distributed as dist
from torch import nn

from ._validate import require_finite_number, require_positive_int, require_tensor
from .gpt import GPT
from .stream import sequential_windows, windows_at
from .training import _progress, load_checkpoint_data, save_checkpoint


def _field(default, help):
    return field(default=default, metadata={"help": help})


PRECISIONS = ("auto", "fp32", "bf16", "fp16")


@dataclass
class TrainConfig:
    """How to train (notebook 12); ``GPTConfig`` says what. Each field's ``help`` is also the command line's help."""

    steps: int = _field(2000, "optimizer steps")
    batch_size: int = _field(64, "sequences per optimizer step, over all processes and micro-steps together")
    grad_accum: int = _field(1, "micro-steps per optimizer step (a large batch in small pieces)")
    lr: float = _field(1e-3, "peak learning rate, reached at the end of the warm-up")
    min_lr: float = _field(1e-4, "learning rate at the end of the cosine decay")
    warmup_steps: int = _field(100, "steps of linear warm-up from 0 to lr")
    lr_decay_steps: int = _field(0, "step at which the cosine decay reaches min_lr (0: steps)")
    weight_decay: float = _field(0.1, "AdamW weight decay, on weight matrices only")
    beta1: float = _field(0.9, "AdamW beta1")
    beta2: float = _field(0.99, "AdamW beta2")
    clip_grad: float = _field(1.0, "clip the gradient to this norm (0: no clipping)")
    precision: str = _field("auto", "fp32, bf16, fp16 or auto (bf16 on GPUs that have it, fp16 on older ones, fp32 on a CPU)")
    compile: bool = _field(False, "torch.compile the model (faster steps after a slow first one)")
    eval_every: int = _field(250, "measure the validation loss every N steps")
    eval_windows: int = _field(64, "validation windows per measurement (evenly spaced over the held-out text)")
    save_every: int = _field(0, "write the checkpoint every N steps too (0: only at the end or on Ctrl-C)")
    seed: int = _field(0, "random seed: initial weights, batches, dropout")

    def __post_init__(self):
        for name in ("steps", "batch_size", "grad_accum", "eval_every", "eval_windows"):
            require_positive_int(name, getattr(self, name))
        for name in ("warmup_steps", "lr_decay_steps", "save_every", "seed"):
            require_positive_int(name, getattr(self, name), allow_zero=True)
        require_finite_number("lr", self.lr, low=0, low_open=True)
        require_finite_number("min_lr", self.min_lr, low=0, high=self.lr)
        require_finite_number("weight_decay", self.weight_decay, low=0)
        for name in ("beta1", "beta2"):
            require_finite_number(name, getattr(self, name), low=0, high=1, high_open=True)
        require_finite_number("clip_grad", self.clip_grad, low=0)
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}")
        if not isinstance(self.compile, bool):
            raise TypeError(f"compile must be True or False, got {self.compile!r}")
        if self.lr_decay_steps and self.warmup_steps > self.lr_decay_steps:
            raise ValueError(f"warmup_steps={self.warmup_steps} is longer than lr_decay_steps={self.lr_decay_steps}: the "
                             "learning rate would never decay; the decay ends after the warm-up")
        if self.batch_size % self.grad_accum:
            raise ValueError(f"batch_size={self.batch_size} must be a multiple of grad_accum={self.grad_accum}")

    def to_dict(self):
        return asdict(self)


def lr_at(step, config):
    """The learning rate of optimizer step ``step`` (0-based): linear warm-up, then cosine to ``min_lr`` (notebook 12).

    Warm-up: ``lr * (step + 1) / warmup_steps``, so the very first update is already small but not
    zero. Then half a cosine from ``lr`` down to ``min_lr`` at ``lr_decay_steps`` (``steps`` when
    0), and ``min_lr`` after it. The schedule depends on the step only, so a resumed run follows it
    exactly.
    """
    decay_end = config.lr_decay_steps or config.steps
    if step < config.warmup_steps:
        return config.lr * (step + 1) / config.warmup_steps
    if step >= decay_end:
        return config.min_lr
    progress = (step - config.warmup_steps) / max(1, decay_end - config.warmup_steps)  # 0 -> 1
    return config.min_lr + 0.5 * (1 + math.cos(math.pi * progress)) * (config.lr - config.min_lr)


def decay_parameter_names(model):
    """Names of the parameters weight decay applies to: the weight matrices of ``nn.Linear`` layers (notebook 12).

    Not the biases or LayerNorms (decaying them towards 0 only hurts), and not the embeddings: a
    word's vector is updated only when the word occurs, so decaying it at every step would shrink
    rare words' vectors. A head tied to the embedding is the embedding, so it is not decayed either.
    """
    embeddings = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
    matrices = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)} - embeddings
    return [name for name, p in model.named_parameters() if id(p) in matrices]


def make_pretrain_optimizer(model, config):
    """AdamW with two parameter groups: weight matrices decayed, everything else not (notebook 12)."""
    decayed = set(decay_parameter_names(model))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [{"params": [p for n, p in named if n in decayed], "weight_decay": config.weight_decay},
              {"params": [p for n, p in named if n not in decayed], "weight_decay": 0.0}]
    kwargs = dict(lr=config.lr, betas=(config.beta1, config.beta2))
    try:
        return torch.optim.AdamW(groups, fused=True, **kwargs)
    except (RuntimeError, TypeError, ValueError):  # fused not available for this device or version
        return torch.optim.AdamW(groups, foreach=True, **kwargs)


def resolve_precision(precision, device):
    """``(autocast dtype or None, needs a gradient scaler)`` for ``precision`` on ``device`` (notebook 12).

    bfloat16 has float32's range, so it trains without help; float16 has 5 exponent bits, so small
    gradients underflow to 0 unless the loss is scaled up first (``torch.amp.GradScaler``).
    "auto" picks bfloat16 on a GPU that has it, float16 on an older GPU, and float32 on a CPU
    (where bfloat16 matmuls are often slower than float32 ones).
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    device = torch.device(device)
    if precision == "auto":
        if device.type != "cuda":
            return None, False
        precision = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if precision == "fp32":
        return None, False
    if precision == "bf16":
        if device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise ValueError("this GPU has no bfloat16: use --precision fp16 (with a gradient scaler) or fp32")
        return torch.bfloat16, False
    return torch.float16, True


def model_flops_per_token(config):
    """Floating-point operations to train on one token, forward and backward: ``6 N + 12 L T d`` (notebook 12).

    ``N`` counts the weights of every matrix multiplication (each weight: a multiply and an add
    forward, twice that backward). The attention scores and their mixing of values add ``4 T d``
    per layer forward, ``12 T d`` with the backward pass, counting the whole ``T x T`` square as
    the PaLM paper and nanoGPT do. Embedding look-ups, LayerNorms and softmaxes are left out.
    """
    c = config
    per_block = 4 * c.d_model * c.d_model + 2 * c.d_model * c.d_ff  # q, k, v, o and the feed-forward
    matmul_weights = c.n_layers * per_block + c.d_model * c.vocab_size  # + the output layer
    return 6 * matmul_weights + 12 * c.n_layers * c.context_length * c.d_model


#: Dense peak tensor-core throughput (FLOP/s) by GPU name, from NVIDIA's data sheets, for MFU.
PEAK_FLOPS = [  # (name contains, bf16/fp16 peak); first match wins
    ("H100 PCIe", 756e12), ("H100", 989e12), ("H200", 989e12), ("GH200", 989e12),
    ("A100", 312e12), ("L40S", 362e12), ("L4", 121e12), ("A10", 125e12),
    ("V100", 125e12), ("T4", 65e12),
]


def peak_flops(device, dtype):
    """The device's peak FLOP/s for ``dtype`` when known, else None (no MFU is printed then) (notebook 12).

    Known: the tensor-core peaks of common NVIDIA GPUs in bfloat16/float16. Float32 and CPUs have
    no entry: their peak depends on details (TF32, AVX width, clock) this table cannot know.
    """
    device = torch.device(device)
    if device.type != "cuda" or dtype not in (torch.bfloat16, torch.float16):
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_FLOPS if key in name), None)


@dataclass
class Distributed:
    """Who this process is among the ``torchrun`` processes (notebook 12)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self):
        return self.rank == 0


def init_distributed(device=None):
    """Join the process group ``torchrun`` set up, or run alone (notebook 12).

    ``torchrun --nproc_per_node=N`` starts N copies of the program with ``RANK``, ``WORLD_SIZE``
    and ``LOCAL_RANK`` in their environment. Each copy calls this: NCCL on GPUs (one GPU per
    process, by local rank), gloo on CPUs. Without ``torchrun`` it returns a world of one.
    """
    world_size = _environment_int("WORLD_SIZE", 1, low=1)
    if device is None:
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(device)
    if world_size == 1:
        return Distributed(device=device)
    rank, local_rank = _environment_int("RANK", None, high=world_size - 1), _environment_int("LOCAL_RANK", 0)
    if device.type == "cuda":
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Distributed(rank, world_size, local_rank, device)


def _environment_int(name, default, low=0, high=None):
    """An integer that torchrun sets in the environment, checked: a clear error instead of a traceback."""
    text = os.environ.get(name)
    if text is None or text == "":
        if default is None:
            raise ValueError(f"WORLD_SIZE is set but {name} is not: start several processes with torchrun "
                             f"(torchrun --nproc_per_node=2 -m course_lib train ...), or unset WORLD_SIZE to run alone")
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} is not a whole number (torchrun sets it; unset it to run alone)") from None
    if value < low or (high is not None and value > high):
        raise ValueError(f"{name}={value} is out of range [{low}, {'...' if high is None else high}]")
    return value


@torch.no_grad()
def evaluate_stream(model, ids, context_length, max_windows=None, batch_size=32, autocast_dtype=None):
    """Mean next-token loss (nats per token) over non-overlapping windows of ``ids`` (notebook 12).

    Deterministic: the same windows every time (``stream.sequential_windows``), so two
    measurements differ only because the model did.
    """
    x_all, y_all = sequential_windows(ids, context_length, max_windows)
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    total = 0.0
    for start in range(0, len(x_all), batch_size):
        x, y = x_all[start:start + batch_size].to(device), y_all[start:start + batch_size].to(device)
        with _autocast(device, autocast_dtype):
            _, loss = model(x, y)
        total += loss.float().item() * len(x)
    model.train(was_training)
    return total / len(x_all)


def _autocast(device, dtype):
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=dtype)


def _check_pretrain_args(model, train_ids, val_ids, config):
    if not isinstance(model, GPT):
        raise TypeError(f"pretrain trains a course_lib GPT, got {type(model).__name__}")
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    for name, ids in (("train_ids", train_ids), ("val_ids", val_ids)):
        if ids is None and name == "val_ids":
            continue
        require_tensor(name, ids, dim=1, integer=True)
        if len(ids) <= model.config.context_length:
            raise ValueError(f"{name} has {len(ids)} tokens: fewer than one window of context_length="
                             f"{model.config.context_length} + 1")
        if int(ids.min()) < 0 or int(ids.max()) >= model.config.vocab_size:
            raise ValueError(f"{name} holds ids outside [0, {model.config.vocab_size}): was it encoded with "
                             "the tokenizer the model was built for?")


def pretrain(model, train_ids, val_ids=None, config=None, out=None, tokenizer=None, resume_from=None,
             distributed=None, progress=True, on_log=None, tokens_per_char=1.0, stop_after=None):
    """Train ``model`` on random windows of ``train_ids`` (a 1-D tensor of ids) as ``config`` says (notebook 12).

    ``val_ids``: held-out ids, measured every ``config.eval_every`` steps and at the end.
    ``out`` (with ``tokenizer``): the checkpoint file, written atomically every
    ``config.save_every`` steps, at the end, and on Ctrl-C, with the optimizer, the step, the
    batch generator's and every process's random states: ``resume_from=out`` then continues
    bitwise where the run stopped (on the same machine and number of processes).
    ``distributed``: from ``init_distributed()`` under ``torchrun``; every process draws the
    same global batch of windows and trains on its own slice of it, so N processes compute the
    gradient one process would on the whole batch. ``on_log(record)`` receives a dict at every
    evaluation. ``stop_after``: end this call after that many steps, as an interruption would.

    Returns the history: ``step``, ``loss``, ``lr`` per step; ``val_step``, ``val_loss``,
    ``val_bpc`` per evaluation; ``tokens_per_s``, ``mfu`` (None when the device's peak is unknown),
    ``seconds`` (training time, evaluation excluded) and ``interrupted``.
    """
    config = config if config is not None else TrainConfig()
    _check_pretrain_args(model, train_ids, val_ids, config)
    if stop_after is not None:
        require_positive_int("stop_after", stop_after)
    require_finite_number("tokens_per_char", tokens_per_char, low=0, low_open=True)
    ctx = distributed or Distributed(device=next(model.parameters()).device)
    per_rank = config.batch_size // config.grad_accum
    if per_rank % ctx.world_size:
        raise ValueError(f"batch_size / grad_accum = {per_rank} sequences per micro-step must be a multiple "
                         f"of the {ctx.world_size} processes")
    micro = per_rank // ctx.world_size  # sequences per process per micro-step
    T = model.config.context_length
    device = ctx.device
    model.to(device)
    train_ids = train_ids.to(device)
    dtype, needs_scaler = resolve_precision(config.precision, device)
    optimizer = make_pretrain_optimizer(model, config)
    scaler = _grad_scaler(device) if needs_scaler else None
    generator = torch.Generator().manual_seed(config.seed)  # the batches: the same draws on every process
    torch.manual_seed(config.seed + ctx.rank)  # dropout: a different stream on every process
    history = {"step": [], "loss": [], "lr": [], "val_step": [], "val_loss": [], "val_bpc": [],
               "tokens_per_s": None, "mfu": None, "seconds": 0.0, "interrupted": False}
    start = 0
    if resume_from is not None:
        start = _restore(resume_from, model, optimizer, scaler, generator, history, ctx)

    train_model = torch.compile(model) if config.compile else model
    if ctx.world_size > 1:
        from torch.nn.parallel import DistributedDataParallel

        train_model = DistributedDataParallel(train_model, device_ids=[device.index] if device.type == "cuda" else None)
    peak = peak_flops(device, dtype)
    flops_per_token = model_flops_per_token(model.config)
    tokens_per_step = config.batch_size * T
    bar = _progress(config.steps, initial=start) if progress and ctx.is_main else None
    step = start
    stop_at = config.steps if stop_after is None else min(config.steps, start + stop_after)

    def log_evaluation():
        val_loss = evaluate_stream(model, val_ids, T, config.eval_windows, autocast_dtype=dtype)
        history["val_step"].append(step)
        history["val_loss"].append(val_loss)
        history["val_bpc"].append(val_loss / math.log(2) * tokens_per_char)
        if on_log is not None:
            on_log({"step": step, "loss": history["loss"][-1] if history["loss"] else None, "val_loss": val_loss,
                    "val_bpc": history["val_bpc"][-1], "lr": history["lr"][-1] if history["lr"] else None,
                    "tokens_per_s": history["tokens_per_s"], "mfu": history["mfu"]})

    try:
        model.train()
        while step < stop_at:
            started = time.perf_counter()
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            starts = torch.randint(len(train_ids) - T, (config.batch_size,), generator=generator)  # the global batch
            loss_sum = torch.zeros((), device=device)
            for m in range(config.grad_accum):
                rows = starts[m * per_rank:(m + 1) * per_rank][ctx.rank * micro:(ctx.rank + 1) * micro]  # this process's share
                x, y = windows_at(train_ids, rows.to(device), T)  # (micro, T) each
                last = m == config.grad_accum - 1
                sync = contextlib.nullcontext() if last or ctx.world_size == 1 else train_model.no_sync()
                with sync:  # DDP averages the gradients across processes once, at the last micro-step
                    with _autocast(device, dtype):
                        _, loss = train_model(x, y)
                    scaled = loss / config.grad_accum  # the mean over the micro-steps, not their sum
                    (scaler.scale(scaled) if scaler else scaled).backward()
                loss_sum += loss.detach().float()
            if scaler:
                scaler.unscale_(optimizer)  # clip the true gradient, not the scaled one
            if config.clip_grad:
                torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
            if scaler:
                scaler.step(optimizer)  # skips the step when the gradient overflowed
                scaler.update()
            else:
                optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            mean_loss = loss_sum / config.grad_accum
            if ctx.world_size > 1:
                dist.all_reduce(mean_loss)  # gloo has no AVG: sum, then divide
                mean_loss /= ctx.world_size
            loss_value = mean_loss.item()  # also waits for the GPU: honest timings
            seconds = time.perf_counter() - started
            history["seconds"] += seconds
            step += 1
            if not math.isfinite(loss_value):
                raise FloatingPointError(f"the loss became {loss_value} at step {step}; lower lr (now {lr:.2e}) "
                                         "or use --precision bf16 / fp32")
            history["step"].append(step)
            history["loss"].append(loss_value)
            history["lr"].append(lr)
            done = len(history["step"])
            history["tokens_per_s"] = tokens_per_step * done / history["seconds"]
            if peak is not None:
                history["mfu"] = flops_per_token * history["tokens_per_s"] / (peak * ctx.world_size)
            if bar is not None:
                bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{lr:.1e}", refresh=False)
                bar.update(1)
            if ctx.is_main and val_ids is not None and (step % config.eval_every == 0 or step == config.steps):
                log_evaluation()
            if out is not None and config.save_every and step % config.save_every == 0 and step < stop_at:
                _save(out, model, tokenizer, optimizer, scaler, generator, history, config, step, ctx, collective=True)
        if stop_after is not None and step < config.steps:
            history["interrupted"] = True
    except KeyboardInterrupt:
        history["interrupted"] = True  # keep what was learned, and save it below
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    in_step = not history["interrupted"] or stop_after is not None  # every process is at the same step
    if out is not None:
        _save(out, model, tokenizer, optimizer, scaler, generator, history, config, step, ctx, collective=in_step)
    if ctx.world_size > 1 and in_step:
        dist.barrier()  # leave together: no process tears down its connections while rank 0 still evaluates or saves
    return history


def _grad_scaler(device):
    if hasattr(torch.amp, "GradScaler"):  # PyTorch >= 2.3, any device
        return torch.amp.GradScaler(device.type)
    return torch.cuda.amp.GradScaler()


def _rng_states(ctx, collective):
    """This process's random states, or every process's (gathered on all) when ``collective``."""
    mine = {"cpu": torch.get_rng_state()}
    if ctx.device.type == "cuda":
        mine["cuda"] = torch.cuda.get_rng_state(ctx.device)
    if ctx.world_size == 1:
        return [mine]
    if not collective:  # after Ctrl-C the processes are not in step: a collective could hang
        return [mine if r == ctx.rank else None for r in range(ctx.world_size)]
    gathered = [None] * ctx.world_size
    dist.all_gather_object(gathered, mine)
    return gathered


def _save(out, model, tokenizer, optimizer, scaler, generator, history, config, step, ctx, collective):
    rng = _rng_states(ctx, collective)
    if not ctx.is_main:
        return
    training = {"config": config.to_dict(), "step": step, "optimizer": optimizer.state_dict(),
                "scaler": scaler.state_dict() if scaler else None, "generator": generator.get_state(),
                "rng": rng, "world_size": ctx.world_size,
                "history": {k: v for k, v in history.items() if k != "interrupted"}}
    save_checkpoint(out, model, tokenizer, training=training, steps=step)


def load_training_state(path):
    """The training state a ``pretrain`` checkpoint holds: config, step, optimizer, random states (notebook 12)."""
    return _training_state(load_checkpoint_data(path), path)


def _training_state(data, path):
    training = data.get("training")
    if not isinstance(training, dict):
        raise ValueError(f"{path} holds a model but no training state to resume (it was not written by pretrain)")
    known = {f.name for f in fields(TrainConfig)}
    if not isinstance(training.get("config"), dict) or set(training["config"]) - known:
        raise ValueError(f"{path} is a broken training checkpoint: its train config is not a TrainConfig")
    return training


def _restore(path, model, optimizer, scaler, generator, history, ctx):
    data = load_checkpoint_data(path)  # read once: the model's weights and the training state
    training = _training_state(data, path)
    if data["config"] != model.config.to_dict():
        raise ValueError(f"{path} was trained with a different GPTConfig: build the model from its config to resume")
    model.load_state_dict(data["state_dict"])
    optimizer.load_state_dict(training["optimizer"])
    if scaler is not None and training.get("scaler"):
        scaler.load_state_dict(training["scaler"])
    generator.set_state(training["generator"])
    rng = training["rng"]
    mine = rng[ctx.rank] if ctx.rank < len(rng) and training.get("world_size") == ctx.world_size else None
    if mine is not None:
        torch.set_rng_state(mine["cpu"])
        if "cuda" in mine and ctx.device.type == "cuda":
            torch.cuda.set_rng_state(mine["cuda"], ctx.device)
    for key, value in training["history"].items():
        history[key] = value
    return training["step"]
