"""The whole pipeline in one command: tokenizer -> pretraining -> chat fine-tuning -> RL -> report card (notebook 22).

    python -m course_lib pipeline --preset cpu --out runs/pipeline

Each stage is one earlier notebook's piece, run at a size chosen for the machine, and each writes
its output into the run folder:

| stage | notebook | writes |
|---|---|---|
| ``tokenizer`` | 09 | ``tokenizer.json``: byte-level BPE learned on the Shakespeare training text |
| ``pretrain`` | 12 | ``base.pt``: the GPT pretrained on that text's token stream (resumable) |
| ``sft`` | 14, 19 | ``sft.pt``: fine-tuned on dialogues, memory conversations and arithmetic, assistant-only loss |
| ``rl`` | 19 | ``rl.pt``: GRPO on the arithmetic task, the reward a program's check |
| ``eval`` | 22 | ``report.md`` (+ PNGs) and ``report.json``: the three models side by side |

``pipeline.json`` records, per stage, a hash of its settings chained to the stages before it. A
stage whose output exists with the same hash is skipped, so running the command again after a
crash or Ctrl-C continues where it stopped: pretraining resumes from its last checkpoint, a shorter
stage starts again. Changing a stage's settings (another preset) redoes it and everything after it.
"""
import hashlib
import json
import math
import random
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from .align import GRPOConfig, _progress, grpo
from .bpe import BPETokenizer
from .chat import chat, chat_tokenizer, dialogue_batch, select_trainable
from .data import data_path
from .dialogue import memory_dialogues
from .evaluation import (
    CHOICE_QUESTIONS,
    CHOICE_SEED,
    DIALOGUE_HELD_OUT_FRACTION,
    DIALOGUE_SPLIT_SEED,
    dialogue_split,
    evaluate_model,
)
from .gpt import GPT, GPTConfig, grow_vocabulary
from .pretraining import TrainConfig, init_distributed, load_training_state, pretrain
from .sampling import generate_text
from .stream import encode_stream, sequential_windows, split_text
from .tasks import ArithmeticTask, conversation, sample_problems
from .training import load_checkpoint, make_optimizer, save_checkpoint, train_step

STAGES = ("tokenizer", "pretrain", "sft", "rl", "eval")
MARKER = "pipeline.json"
OUTPUTS = {"tokenizer": "tokenizer.json", "pretrain": "base.pt", "sft": "sft.pt", "rl": "rl.pt", "eval": "report.json"}


class PipelineError(ValueError):
    """A run folder or a request the pipeline cannot work with; the message says what to do (notebook 22)."""


@dataclass(frozen=True)
class Preset:
    """What each stage does at one scale (notebook 22). The dicts are the stages' own settings."""

    name: str
    about: str
    bpe_vocab_size: int  # tokens of the byte-level BPE (256 bytes + merges)
    tokenizer_chars: int  # learn the merges on the first N characters of the training text (0: all of it)
    model: dict  # GPTConfig fields but vocab_size
    pretrain: dict  # TrainConfig fields
    sft: dict  # steps, lr, warmdown (the share of the steps the rate decays over), arithmetic (how many A + B
    # problems), mix: {source: [batches in the cycle, batch size]}; the sources: dialogues, memory, arithmetic
    # (conversations) and shakespeare (the pretraining text, rehearsed)
    rl: dict  # GRPOConfig fields
    eval_limit: int = 0  # 0: every held-out item; N: at most N per set (a quick look)

    def stage_settings(self, stage, seed):
        """What a stage's output depends on: its settings, the seed, and the fingerprints of the data it reads."""
        settings = {"tokenizer": {"bpe_vocab_size": self.bpe_vocab_size, "tokenizer_chars": self.tokenizer_chars,
                                  "text": _fingerprint("shakespeare.txt")},
                    "pretrain": {"model": self.model, "train": self.pretrain},
                    "sft": {**self.sft, "dialogues": _fingerprint("dialogues.jsonl"),
                            "split": [DIALOGUE_HELD_OUT_FRACTION, DIALOGUE_SPLIT_SEED]},
                    "rl": self.rl,
                    "eval": {"eval_limit": self.eval_limit, "choices": [CHOICE_QUESTIONS, CHOICE_SEED]}}[stage]
        return {"stage": stage, "seed": seed, "settings": settings}


PRESETS = {
    "tiny": Preset(
        "tiny", "every stage in seconds, for tests and a first look (the figures mean nothing)",
        bpe_vocab_size=276, tokenizer_chars=20_000,
        model={"context_length": 48, "d_model": 32, "n_heads": 2, "n_layers": 1, "d_ff": 64, "positions": "learned"},
        pretrain={"steps": 12, "batch_size": 8, "lr": 3e-3, "min_lr": 1e-3, "warmup_steps": 2, "eval_every": 6,
                  "eval_windows": 4, "save_every": 4, "weight_decay": 0.0},
        sft={"steps": 6, "lr": 3e-3, "warmdown": 0.5, "arithmetic": 64,
             "mix": {"dialogues": [1, 8], "memory": [1, 8], "arithmetic": [1, 8], "shakespeare": [1, 8]}},
        rl={"steps": 2, "prompts_per_step": 4, "group_size": 2, "lr": 1e-4, "max_new_tokens": 6},
        eval_limit=6),
    "cpu": Preset(
        "cpu", "the 2-core CPU in under 10 minutes: a 0.9 M-parameter model on a 128-token context",
        bpe_vocab_size=512, tokenizer_chars=0,
        model={"context_length": 128, "d_model": 128, "n_heads": 4, "n_layers": 4, "d_ff": 512, "positions": "learned"},
        pretrain={"steps": 1000, "batch_size": 32, "lr": 3e-3, "min_lr": 3e-4, "warmup_steps": 50, "eval_every": 250,
                  "eval_windows": 32, "save_every": 250},
        sft={"steps": 3000, "lr": 2e-3, "warmdown": 0.3, "arithmetic": 50_000,
             "mix": {"dialogues": [2, 32], "memory": [2, 32], "arithmetic": [7, 128], "shakespeare": [1, 32]}},
        rl={"steps": 60, "prompts_per_step": 32, "group_size": 8, "lr": 3e-5},
        eval_limit=0),
    "gpu": Preset(
        "gpu", "one GPU: notebook 12's GPU scale (context 256, 6 blocks of 384, ~11 M parameters), bf16, torch.compile",
        bpe_vocab_size=2048, tokenizer_chars=0,
        model={"context_length": 256, "d_model": 384, "n_heads": 6, "n_layers": 6, "d_ff": 1536, "dropout": 0.1,
               "positions": "learned"},
        pretrain={"steps": 5000, "batch_size": 64, "lr": 1e-3, "min_lr": 1e-4, "warmup_steps": 100, "eval_every": 500,
                  "eval_windows": 100, "save_every": 500, "precision": "auto", "compile": True},
        sft={"steps": 3000, "lr": 5e-4, "warmdown": 0.3, "arithmetic": 100_000,
             "mix": {"dialogues": [2, 64], "memory": [1, 64], "arithmetic": [2, 256], "shakespeare": [1, 64]}},
        rl={"steps": 200, "prompts_per_step": 64, "group_size": 8, "lr": 2e-5},
        eval_limit=0),
}


def _fingerprint(name):
    """The sha256 of a data file: a stage made from other data is not done, whatever its settings."""
    return hashlib.sha256(data_path(name).read_bytes()).hexdigest()


def default_preset():
    """``gpu`` when CUDA is available, else ``cpu`` (notebook 22)."""
    return "gpu" if torch.cuda.is_available() else "cpu"


def _hash(value):
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()[:16]


def _write_json(path, value):
    from .report import atomic_write

    atomic_write(path, json.dumps(value, indent=1))  # a crash never leaves half a marker


def read_marker(out):
    """The run folder's ``pipeline.json``, or None for a new (missing or empty) folder (notebook 22).

    A folder with other files and no ``pipeline.json``, or one whose ``pipeline.json`` is not the
    pipeline's, is a ``PipelineError``: the pipeline never writes into a folder it did not make.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise PipelineError(f"--out {out} is a file, not a run folder: give a folder (it is created if missing)")
    if not out.exists() or not any(out.iterdir()):
        return None
    path = out / MARKER
    if not path.is_file():
        raise PipelineError(f"--out {out} is a folder with other files and no {MARKER}: not a pipeline run; "
                            "give a new or empty folder (nothing in it was touched)")
    try:
        marker = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as problem:
        raise PipelineError(f"--out {out}: {MARKER} is not JSON ({str(problem)[:80]}); it is not a pipeline run "
                            "this course_lib wrote") from None
    if not (isinstance(marker, dict) and marker.get("course_lib_pipeline") == 1 and isinstance(marker.get("stages"), dict)):
        raise PipelineError(f"--out {out}: {MARKER} is not a course_lib pipeline record")
    return marker


def plan(preset, seed=0):
    """Each stage's chained settings hash: a stage's hash changes when it or any stage before it changes (notebook 22)."""
    hashes, previous = {}, None
    for stage in STAGES:
        previous = hashes[stage] = _hash([previous, preset.stage_settings(stage, seed)])
    return hashes


def run_pipeline(out, preset="cpu", until="eval", redo=None, seed=0, device=None, progress=True, log=print,
                 command=None):
    """Run (or continue) the pipeline into folder ``out``; returns the report dict, or None when stopped early (notebook 22).

    ``until``: the last stage to run. ``redo``: run that stage and the ones after it again even
    though they are done. Raises ``PipelineError`` for a bad request or a foreign folder, and
    ``KeyboardInterrupt`` after saving what can be saved (run again to continue).
    """
    if preset not in PRESETS:
        raise PipelineError(f"--preset {preset!r}: unknown; choose one of {', '.join(PRESETS)}")
    for flag, stage in (("--until", until), ("--redo", redo)):
        if stage is not None and stage not in STAGES:
            raise PipelineError(f"{flag} {stage!r}: unknown stage; the stages are {', '.join(STAGES)}")
    p, out = PRESETS[preset], Path(out)
    ctx = init_distributed(device)
    marker = read_marker(out) if ctx.is_main else None
    hashes = plan(p, seed)
    if marker is not None and marker.get("preset") != preset and redo != "tokenizer":  # never replace a run by accident
        raise PipelineError(f"--out {out} is a --preset {marker.get('preset')} run; continue it with that preset, "
                            f"or give --redo tokenizer to replace it with --preset {preset}")
    if ctx.is_main:
        out.mkdir(parents=True, exist_ok=True)
        marker = marker or {"course_lib_pipeline": 1, "stages": {}}
        marker.update(preset=preset, seed=seed)
    last = STAGES.index(until)
    first_redo = STAGES.index(redo) if redo is not None else len(STAGES)
    started = time.perf_counter()
    stage_runners = {"tokenizer": _tokenizer_stage, "pretrain": _pretrain_stage, "sft": _sft_stage, "rl": _rl_stage,
                     "eval": _eval_stage}
    for index, stage in enumerate(STAGES[:last + 1]):
        if ctx.world_size > 1 and stage in ("pretrain", "sft"):
            torch.distributed.barrier()  # pretrain: rank 0 has written the tokenizer; sft: every process has pretrained
            if stage == "sft" and not ctx.is_main:
                return None  # several processes share pretraining only; rank 0 does the rest
        if not ctx.is_main and stage != "pretrain":
            continue
        decision = [None, None]  # (done, resumable): rank 0 decides, from the record it read, for every process
        if ctx.is_main:
            record = marker["stages"].get(stage, {})
            same = record.get("hash") == hashes[stage] and index < first_redo
            decision = [same and bool(record.get("done")) and (out / OUTPUTS[stage]).is_file(),
                        same and not record.get("done")]
        if ctx.world_size > 1 and stage == "pretrain":  # the one stage every process runs
            torch.distributed.broadcast_object_list(decision, src=0)
        done, resumable = decision
        if done:
            if ctx.is_main:
                log(f"[{index + 1}/{len(STAGES)}] {stage}: done before, skipped ({OUTPUTS[stage]})")
            continue
        if ctx.is_main:
            log(f"[{index + 1}/{len(STAGES)}] {stage} ({time.perf_counter() - started:.0f} s into this run)")
            marker["stages"][stage] = {"hash": hashes[stage], "done": False}
            for later in STAGES[index + 1:]:
                marker["stages"].pop(later, None)  # their inputs change: they must run again
            _write_json(out / MARKER, marker)
        stage_started = time.perf_counter()
        result = stage_runners[stage](out, p, seed, ctx, progress, log, resumable, marker, command)
        if not ctx.is_main:
            continue
        marker["stages"][stage] = {"hash": hashes[stage], "done": True, "output": OUTPUTS[stage],
                                   "seconds": round(time.perf_counter() - stage_started, 2), **result}
        _write_json(out / MARKER, marker)
    if not ctx.is_main:
        return None
    if until != "eval":
        log(f"stopped after {until} as asked; run again without --until to finish")
        return None
    return json.loads((out / "report.json").read_text(encoding="utf-8"))


def _texts():
    text = data_path("shakespeare.txt").read_text(encoding="utf-8")
    return text, *split_text(text, 0.1)


def _load_tokenizer(out):
    return BPETokenizer.from_dict(json.loads((out / OUTPUTS["tokenizer"]).read_text(encoding="utf-8")))


def _load(out, stage, device):
    path = out / OUTPUTS[stage]
    try:
        return load_checkpoint(path, device=device)
    except (ValueError, FileNotFoundError) as problem:
        raise PipelineError(f"{path}: {str(problem).split(' (torch.load')[0]}; run again with --redo {stage}") from None


def _tokenizer_stage(out, p, seed, ctx, progress, log, resumable, marker, command):
    _, train_text, _ = _texts()
    sample = train_text[:p.tokenizer_chars] if p.tokenizer_chars else train_text
    bpe = BPETokenizer.train(sample, p.bpe_vocab_size)
    _write_json(out / OUTPUTS["tokenizer"], bpe.to_dict())
    log(f"    {len(bpe)} tokens learned on {len(sample):,} characters")
    return {"vocab_size": len(bpe)}


def _pretrain_stage(out, p, seed, ctx, progress, log, resumable, marker, command):
    text, train_text, val_text = _texts()
    bpe = _load_tokenizer(out)
    train_ids, val_ids = encode_stream(bpe, train_text), encode_stream(bpe, val_text)
    config = TrainConfig(**{**p.pretrain, "seed": seed})
    torch.manual_seed(seed)
    model = GPT(GPTConfig(vocab_size=len(bpe), **p.model))
    path = out / OUTPUTS["pretrain"]
    resume = None
    if resumable and path.is_file():
        try:
            state = load_training_state(path)
        except ValueError:
            state = None
        if state is not None and state["config"] == config.to_dict() and state["step"] < config.steps:
            resume = path
            if ctx.is_main:
                log(f"    resuming from step {state['step']} of {config.steps} ({path})")
    history = pretrain(model, train_ids, val_ids, config, out=path, tokenizer=bpe, resume_from=resume,
                       distributed=ctx, progress=progress and ctx.is_main,
                       tokens_per_char=(len(train_ids) + len(val_ids)) / len(text))
    if history["interrupted"]:
        raise KeyboardInterrupt
    if ctx.is_main:
        _write_json(out / "pretrain_history.json", history)
        log(f"    {model.num_parameters():,} parameters, {config.steps} steps; validation loss "
            f"{history['val_loss'][-1]:.3f} nats/token, {history['tokens_per_s']:,.0f} tokens/s")
    return {"parameters": model.num_parameters(), "tokens_per_s": history["tokens_per_s"], "mfu": history["mfu"],
            "device": str(ctx.device) + (f" x {ctx.world_size}" if ctx.world_size > 1 else "")}


def sft_sources(count, seed=0):
    """The fine-tuning mixture (notebook 22): ``{source: conversations}``, the held-out parts of each left out.

    The dialogues' training part (``evaluation.dialogue_split``), the memory conversations' training
    part (``dialogue.memory_dialogues``) and ``count`` arithmetic problems that are never held-out ones.
    """
    dialogues, _ = dialogue_split()
    memory, _ = memory_dialogues()
    arithmetic = [conversation(a, b) for a, b in sample_problems(random.Random(seed), count)]
    return {"dialogues": dialogues, "memory": memory, "arithmetic": arithmetic}


def mixture_lr(step, steps, lr, warmdown):
    """The fine-tuning learning rate of step ``step`` (1-based): ``lr``, then down over the last ``warmdown`` share (notebook 22).

    A constant rate that decays linearly at the end ("warm-up, stable, decay" without the warm-up:
    the model is already trained), as nanochat's fine-tuning does. Measured here (docs/pipeline.md):
    at a constant rate, each source's batches keep pulling the model away from the others', and
    the sums were 11 % right after fine-tuning; 360 more steps with the rate decaying made them 81 %.
    """
    decay_from = steps - round(warmdown * steps)
    return lr if step <= decay_from else lr * (steps - step + 1) / (steps - decay_from + 1)


def train_mixture(model, sources, steps, lr, warmdown=0.0, seed=0, progress=True):
    """Fine-tune on several sources, one source per batch, in a fixed cycle (notebook 22).

    ``sources``: ``{name: (inputs, targets, weight, batch_size)}``. The cycle holds each source
    ``weight`` times, so the step budget is shared as the weights say, whatever the sources' sizes.
    Each batch is trimmed to its longest row: a batch of sums is 20 tokens wide, not the 128 of the
    longest dialogue, and costs that much less. The learning rate is ``mixture_lr``'s. Returns
    ``step``, ``loss``, ``source``, ``lr``, ``seconds`` and ``interrupted`` (Ctrl-C keeps what was learned).
    """
    cycle = [name for name, (_, _, weight, _) in sources.items() for _ in range(weight)]
    generator = torch.Generator().manual_seed(seed)
    optimizer = make_optimizer(model, lr)
    device = next(model.parameters()).device
    history = {"step": [], "loss": [], "source": [], "lr": [], "seconds": 0.0, "interrupted": False}
    bar = _progress(steps, "fine-tuning") if progress else None
    model.train()
    try:
        for step in range(1, steps + 1):
            started = time.perf_counter()
            name = cycle[(step - 1) % len(cycle)]
            for group in optimizer.param_groups:
                group["lr"] = mixture_lr(step, steps, lr, warmdown)
            inputs, targets, _, batch_size = sources[name]
            rows = torch.randperm(len(inputs), generator=generator)[:batch_size]
            x, y = inputs[rows], targets[rows]
            width = int((y != -100).any(dim=0).nonzero().max()) + 1  # the last column any row learns from
            loss = train_step(model, optimizer, x[:, :width].to(device), y[:, :width].to(device))
            history["seconds"] += time.perf_counter() - started
            if not math.isfinite(loss):
                raise FloatingPointError(f"the loss became {loss} at step {step} ({name}); lower the learning rate")
            history["step"].append(step)
            history["loss"].append(loss)
            history["source"].append(name)
            history["lr"].append(optimizer.param_groups[0]["lr"])
            if bar is not None:
                bar.set_postfix(loss=f"{loss:.3f}", source=name, refresh=False)
                bar.update(1)
    except KeyboardInterrupt:
        history["interrupted"] = True
    finally:
        if bar is not None:
            bar.close()
        model.eval()
    return history


def _sft_stage(out, p, seed, ctx, progress, log, resumable, marker, command):
    base, bpe = _load(out, "pretrain", ctx.device)
    tokenizer = chat_tokenizer(bpe)
    torch.manual_seed(seed)  # the new rows' start
    model = grow_vocabulary(base, len(tokenizer))
    context = model.config.context_length
    cycle = sum(w for w, _ in p.sft["mix"].values())
    sources = {}
    for name, conversations in sft_sources(p.sft["arithmetic"], seed).items():
        usable, skipped = select_trainable(tokenizer, conversations, context)
        weight, batch_size = p.sft["mix"][name]
        sources[name] = (*dialogue_batch(tokenizer, usable, context), weight, batch_size)
        log(f"    {name}: {len(usable):,} conversations ({skipped} skipped: too long for {context} tokens, or no reply), "
            f"{weight} in {cycle} batches of {batch_size}")
    if "shakespeare" in p.sft["mix"]:  # rehearsal: the pretraining text keeps its place, or fine-tuning erases it
        weight, batch_size = p.sft["mix"]["shakespeare"]
        windows = sequential_windows(encode_stream(bpe, _texts()[1]), context)
        sources["shakespeare"] = (*windows, weight, batch_size)
        log(f"    shakespeare: {len(windows[0]):,} windows of the pretraining text (every token learned), "
            f"{weight} in {cycle} batches of {batch_size}")
    history = train_mixture(model, sources, p.sft["steps"], p.sft["lr"], p.sft["warmdown"], seed=seed, progress=progress)
    if history["interrupted"]:
        raise KeyboardInterrupt
    save_checkpoint(out / OUTPUTS["sft"], model, tokenizer, stage="sft", steps=len(history["step"]))
    _write_json(out / "sft_history.json", {k: history[k] for k in ("step", "loss", "source", "seconds")})
    return {"conversations": {name: len(source[0]) for name, source in sources.items()}, "steps": len(history["step"])}


def _rl_stage(out, p, seed, ctx, progress, log, resumable, marker, command):
    model, tokenizer = _load(out, "sft", ctx.device)
    task = ArithmeticTask(tokenizer)
    history = grpo(model, task, GRPOConfig(**{**p.rl, "seed": seed}), progress=progress)
    if history["interrupted"]:
        raise KeyboardInterrupt
    save_checkpoint(out / OUTPUTS["rl"], model, tokenizer, stage="rl", method="grpo", steps=len(history["step"]))
    _write_json(out / "rl_history.json", {"step": history["step"], "reward": history["reward"]})
    log(f"    mean reward {history['reward'][0]:.2f} at the first step, {history['reward'][-1]:.2f} at the last")
    return {"steps": len(history["step"])}


#: What the card asks each chat model (greedy, so the card is reproducible).
SAMPLE_PROMPTS = (
    [("user", "Hello")],
    [("user", "What is your name?")],
    [("user", "What is 12 + 30?")],
    None,  # the first held-out memory conversation, up to its last question
)


def samples_of(model, tokenizer, label):
    """The card's sample conversations: each prompt of ``SAMPLE_PROMPTS`` and the model's greedy reply (notebook 22)."""
    samples = []
    memory = [(t["role"], t["content"]) for t in memory_dialogues()[1][0][:-1]]
    for prompt in (p or memory for p in SAMPLE_PROMPTS):
        history = [{"role": r, "content": c} for r, c in prompt[:-1]]
        reply = chat(model, tokenizer, history, prompt[-1][1], max_new_tokens=40, temperature=0)
        samples.append({"model": label, "prompt": " / ".join(f"{r}: {c}" for r, c in prompt), "reply": reply})
    return samples


def _eval_stage(out, p, seed, ctx, progress, log, resumable, marker, command):
    from .report import write_report

    eval_started = time.perf_counter()
    columns, samples = {}, []
    for stage in ("pretrain", "sft", "rl"):
        model, tokenizer = _load(out, stage, ctx.device)
        name = {"pretrain": "base", "sft": "sft", "rl": "rl"}[stage]
        log(f"    evaluating {name} ({OUTPUTS[stage]})")
        columns[name] = evaluate_model(model, tokenizer, limit=p.eval_limit or None)
        if stage == "pretrain":
            text = generate_text(model, tokenizer, "ROMEO:\n", 60, temperature=0)
            samples.append({"model": name, "prompt": "ROMEO: and a line break, continued as text", "reply": text})
        else:
            samples += samples_of(model, tokenizer, name)
    pretrain_history = json.loads((out / "pretrain_history.json").read_text(encoding="utf-8"))
    sft_history = json.loads((out / "sft_history.json").read_text(encoding="utf-8"))
    rl_history = json.loads((out / "rl_history.json").read_text(encoding="utf-8"))
    stages = marker["stages"]
    curves = {
        "pretrain_loss": {"title": "pretraining", "x": "step", "y": "loss (nats/token)",
                          "curves": {"train": (pretrain_history["step"], pretrain_history["loss"]),
                                     "held-out": (pretrain_history["val_step"], pretrain_history["val_loss"])}},
        "sft_loss": {"title": "fine-tuning: the loss of each source's batches", "x": "step", "y": "loss (nats/token)",
                     "curves": {name: ([s for s, n in zip(sft_history["step"], sft_history["source"]) if n == name],
                                       [x for x, n in zip(sft_history["loss"], sft_history["source"]) if n == name])
                                for name in dict.fromkeys(sft_history["source"])}},
        "rl_reward": {"title": "GRPO on arithmetic", "x": "step", "y": "mean reward of the samples",
                      "curves": {"reward": (rl_history["step"], rl_history["reward"])}},
    }
    pre = stages["pretrain"]
    facts = {"preset": f"{p.name}: {p.about}", "seed": seed, "device": pre.get("device"),
             "parameters": f"{pre.get('parameters', 0):,}", "tokenizer": f"byte-level BPE, {p.bpe_vocab_size} tokens",
             "pretraining tokens/s": f"{pre['tokens_per_s']:,.0f}" if pre.get("tokens_per_s") else None,
             "MFU": f"{pre['mfu']:.1%}" if pre.get("mfu") is not None else "n/a (peak FLOP/s unknown for this device)",
             "eval sets": "every held-out item" if not p.eval_limit else f"at most {p.eval_limit} items each (not the card's figures)"}
    timings = {stage: stages[stage]["seconds"] for stage in STAGES[:-1] if "seconds" in stages.get(stage, {})}
    timings["eval"] = time.perf_counter() - eval_started  # the measurements; writing the card is not counted
    write_report(out, f"Report card: the pipeline, preset {p.name}", columns, command=command, curves=curves,
                 samples=samples, timings=timings, facts=facts,
                 extra={"checkpoint": str((out / OUTPUTS["rl"]).resolve()), "preset": p.name, "seed": seed,
                        "preset_settings": asdict(p)})
    return {}
