"""``python -m course_lib train --tokenizer char|bpe``: pretraining on a continuous text, on one process or under torchrun.

Introduced in notebook 12. Every process runs this; only rank 0 prints and saves.
"""
import dataclasses
import math
import re

import torch

from .bpe import BPETokenizer
from .cli_common import STREAM_MODEL_DEFAULTS, CourseError, _check_out, _device, _interrupts_deferred, _model_config, _read_text
from .gpt import GPT
from .pretraining import TrainConfig, init_distributed, load_training_state, pretrain, resolve_precision
from .stream import encode_stream, split_text
from .tokenizer import CharTokenizer
from .training import load_checkpoint

#: BPE vocabulary when --bpe-vocab-size is not given
DEFAULT_BPE_VOCAB = 512


def _train_config(args, resumed=None):
    """The TrainConfig of the flags given; on --resume, the checkpoint's, with only --steps changeable."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig) if getattr(args, f.name) is not None}
    if resumed is not None:
        changed = sorted(name for name, value in given.items() if name != "steps" and value != resumed[name])
        if changed:
            raise CourseError(f"--resume continues with the checkpoint's settings; only --steps may change, not "
                              f"{', '.join('--' + n.replace('_', '-') for n in changed)}")
        given = {**resumed, **given}
    try:
        return TrainConfig(**given)
    except (TypeError, ValueError) as error:
        message = str(error)
        for f in dataclasses.fields(TrainConfig):  # name the flag, not the field (min_lr: --min-lr, not min_--lr)
            message = re.sub(rf"\b{f.name}\b(?=( must|=))", "--" + f.name.replace("_", "-"), message)
        raise CourseError(message) from None


def _model_and_tokenizer(args, text, train_text):
    if args.resume is not None:
        if not args.resume.is_file():
            raise CourseError(f"--resume {args.resume}: no such file")
        try:
            model, tokenizer = load_checkpoint(args.resume)
            resumed = load_training_state(args.resume)["config"]
        except ValueError as error:
            raise CourseError(f"--resume {str(error).split(' (torch.load')[0]}") from None
        changed = [f.name for f in dataclasses.fields(model.config) if f.name != "vocab_size"
                   and getattr(args, f.name) is not None and getattr(args, f.name) != getattr(model.config, f.name)]
        if args.bpe_vocab_size is not None and args.bpe_vocab_size != len(tokenizer):
            changed.append("bpe_vocab_size")
        if changed:
            raise CourseError("--resume continues the checkpoint's model; these flags differ from it: "
                              f"{', '.join('--' + n.replace('_', '-') for n in changed)}")
        return model, tokenizer, resumed
    if args.tokenizer == "char":
        tokenizer = CharTokenizer.from_text(text)  # every character of the file, as nanoGPT: no id is missing later
    else:
        tokenizer = BPETokenizer.train(train_text, args.bpe_vocab_size or DEFAULT_BPE_VOCAB)  # BPE encodes any text
    config = _model_config(args, len(tokenizer), STREAM_MODEL_DEFAULTS)
    torch.manual_seed(args.seed or 0)  # the same initial weights on every process
    return GPT(config), tokenizer, None


def cmd_pretrain(args):
    """Run ``train --tokenizer char|bpe``; return the exit code (README "From a terminal")."""
    _check_out(args)
    text = _read_text(args.data)
    if not text.strip():
        raise CourseError(f"--data {args.data}: the file has no text")
    try:
        train_text, val_text = split_text(text, args.val_fraction or 0.1)
    except ValueError as error:
        raise CourseError(f"--data {args.data}: {error}") from None
    try:
        ctx = init_distributed(_device(args.device))
    except ValueError as error:  # WORLD_SIZE without RANK, or not a number
        raise CourseError(str(error)) from None
    model, tokenizer, resumed = _model_and_tokenizer(args, text, train_text)
    if resumed is not None and args.tokenizer != {"CharTokenizer": "char", "BPETokenizer": "bpe"}.get(type(tokenizer).__name__):
        raise CourseError(f"--resume {args.resume} was trained with another tokenizer than --tokenizer {args.tokenizer}")
    config = _train_config(args, resumed)
    try:
        train_ids, val_ids = encode_stream(tokenizer, train_text), encode_stream(tokenizer, val_text)
    except ValueError as error:
        raise CourseError(f"--data {args.data}: {error}") from None
    if len(val_ids) <= model.config.context_length:
        raise CourseError(f"--data {args.data}: the held-out tail has {len(val_ids)} tokens, fewer than one window of "
                          f"--context-length {model.config.context_length}; use a longer text or a larger --val-fraction")
    if config.batch_size // config.grad_accum % ctx.world_size:
        raise CourseError(f"--batch-size {config.batch_size} / --grad-accum {config.grad_accum} must be a multiple of "
                          f"the {ctx.world_size} processes")
    try:
        dtype, _ = resolve_precision(config.precision, ctx.device)
    except ValueError as error:
        raise CourseError(f"--precision {config.precision}: {error}") from None
    tokens_per_char = (len(train_ids) + len(val_ids)) / len(text)
    if ctx.is_main:
        where = f"{ctx.device}" + (f" x {ctx.world_size} processes" if ctx.world_size > 1 else "")
        print(f"training on {args.data}: {len(text):,} characters, {args.tokenizer} tokenizer ({len(tokenizer)} tokens, "
              f"{1 / tokens_per_char:.2f} characters per token), {len(train_ids):,} training and {len(val_ids):,} "
              f"validation tokens; {model.num_parameters():,} parameters on {where}, "
              f"{str(dtype).replace('torch.', '') if dtype else 'float32'}", flush=True)

    def report(record):
        mfu = f", MFU {record['mfu']:.1%}" if record["mfu"] is not None else ""
        print(f"step {record['step']:6d}  train loss {record['loss']:.4f}  val loss {record['val_loss']:.4f} "
              f"({record['val_bpc']:.3f} bits/char)  lr {record['lr']:.2e}  {record['tokens_per_s']:,.0f} tokens/s{mfu}",
              flush=True)

    try:
        history = pretrain(model, train_ids, val_ids, config, out=args.out, tokenizer=tokenizer, resume_from=args.resume,
                           distributed=ctx, progress=not args.no_progress and ctx.is_main, on_log=report,
                           tokens_per_char=tokens_per_char)
    except ValueError as error:
        raise CourseError(str(error)) from None
    finally:
        if ctx.world_size > 1 and torch.distributed.is_initialized():
            with _interrupts_deferred():
                torch.distributed.destroy_process_group()
    if not ctx.is_main:
        return 130 if history["interrupted"] else 0
    done = history["step"][-1] if history["step"] else 0
    last = f"val loss {history['val_loss'][-1]:.4f}" if history["val_loss"] else "no validation yet"
    if history["interrupted"]:
        print(f"interrupted at step {done}: {last}; checkpoint saved to {args.out} "
              f"(continue with --resume {args.out})", flush=True)
        return 130
    bpc = history["val_bpc"][-1] if history["val_bpc"] else math.nan
    print(f"done: {done} steps in {history['seconds']:.1f} s ({history['tokens_per_s']:,.0f} tokens/s), {last} "
          f"({bpc:.3f} bits/char); checkpoint saved to {args.out}", flush=True)
    return 0
