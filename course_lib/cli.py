"""Train and sample from a terminal, with the notebooks' defaults.

    python -m course_lib train --data data/lang.txt --out runs/lang.pt
    python -m course_lib sample --checkpoint runs/lang.pt --prompt "Python" --temperature 0.8 --top-k 10

    python -m course_lib train --tokenizer char --data data/shakespeare.txt --out runs/shakespeare.pt
    torchrun --nproc_per_node=2 -m course_lib train --tokenizer char --data data/shakespeare.txt --out runs/s.pt
    python -m course_lib train --tokenizer char --data data/shakespeare.txt --out runs/s.pt --resume runs/s.pt --steps 4000

    python -m course_lib finetune --base runs/chat_base.pt --data data/dialogues.jsonl --out runs/chat.pt
    python -m course_lib chat --checkpoint runs/chat.pt
    python -m course_lib serve --checkpoint runs/chat.pt

    python -m course_lib pipeline --preset cpu --out runs/pipeline
    python -m course_lib eval --checkpoint runs/pipeline/rl.pt --json

Every problem (a missing file, an empty or non-UTF-8 corpus, a bad value) is one line on stderr
and a non-zero exit, never a traceback. Ctrl-C during training saves the checkpoint.
"""
import argparse
import dataclasses
import os
import sys
from pathlib import Path

import torch

from .cli_align import add_align_commands, cmd_eval, cmd_rl
from .cli_chat import add_chat_commands, cmd_chat, cmd_fetch, cmd_finetune, cmd_serve
from .cli_common import (
    DEFAULTS,
    PROG,
    STREAM_MODEL_DEFAULTS,
    CourseError,
    _check_out,
    _device,
    _interrupts_deferred,
    _model_config,
    _number,
    _read_text,
)
from .cli_pipeline import add_pipeline_command, cmd_evaluate, cmd_pipeline
from .cli_pretrain import cmd_pretrain
from .data import split_sentences
from .decoder import FEED_FORWARDS, NORMS
from .gpt import GPT, POSITIONS, GPTConfig
from .pretraining import PRECISIONS, TrainConfig
from .tokenizer import WordTokenizer, make_batch
from .training import DEFAULT_LR, corpus_floor, evaluate, load_checkpoint, save_checkpoint, train

#: notebook 07's training settings, for --tokenizer word (one sentence per line)
WORD_DEFAULTS = {"steps": 300, "lr": DEFAULT_LR, "batch_size": None, "eval_every": 50, "seed": 0}
class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise CourseError(f"{message} (see {self.prog} --help)")


def build_parser():
    """The argument parser of ``python -m course_lib`` (README "From a terminal")."""
    parser = _Parser(prog=PROG, description="Train the course's GPT on a text file, sample from it, fine-tune it "
                                            "on dialogues and chat with it.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = commands.add_parser("train", help="train a GPT on a text file",
                            description="Train the course's GPT and save a checkpoint. --tokenizer word (default): "
                                        "notebook 07, one sentence per line. --tokenizer char or bpe: notebook 12, a "
                                        "continuous text, trained on random windows with a held-out tail; runs under "
                                        "torchrun on several processes. Ctrl-C stops early and still saves.")
    t.add_argument("--data", required=True, type=Path, help="UTF-8 text file (e.g. data/lang.txt, data/shakespeare.txt)")
    t.add_argument("--out", required=True, type=Path, help="where to write the checkpoint (e.g. runs/lang.pt)")
    t.add_argument("--tokenizer", choices=["word", "char", "bpe"], default="word",
                   help="word: one sentence per line (notebook 07); char or bpe: a continuous text (notebook 12) "
                        "(default: word)")
    t.add_argument("--steps", type=_number(int, 1), default=None, help="optimisation steps (default: 300 word, 2000 char/bpe)")
    t.add_argument("--lr", type=_number(float, 0, low_open=True), default=None,
                   help=f"AdamW (peak) learning rate (default: {DEFAULT_LR} word, {TrainConfig.lr} char/bpe)")
    t.add_argument("--batch-size", type=_number(int, 1, allow_none=True), default=None,
                   help=f"sentences per step (default: all of them) / windows per step over all processes "
                        f"(default: {TrainConfig.batch_size})")
    _add_model_flags(t)
    t.add_argument("--eval-every", type=_number(int, 1), default=None,
                   help=f"print the loss every N steps (default: 50 word, {TrainConfig.eval_every} char/bpe)")
    t.add_argument("--seed", type=_number(int, 0), default=None, help="random seed (default: 0)")
    t.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    stream = t.add_argument_group("continuous text (--tokenizer char or bpe, notebook 12)")
    stream.add_argument("--bpe-vocab-size", type=_number(int, 257), default=None, help="BPE vocabulary (default: 512)")
    stream.add_argument("--val-fraction", type=_number(float, 0, 0.5, low_open=True), default=None,
                        help="share of the text held out at its end for validation (default: 0.1)")
    stream.add_argument("--resume", type=Path, default=None,
                        help="continue a run from its checkpoint exactly (its model, tokenizer and settings; "
                             "only --steps may change)")
    _add_train_flags(stream)
    s = commands.add_parser("sample", help="generate text from a checkpoint",
                            description="Continue a prompt with a trained checkpoint.")
    s.add_argument("--checkpoint", required=True, type=Path, help="a file written by 'train'")
    s.add_argument("--prompt", default="", help="words to continue (default: start a new sentence)")
    s.add_argument("--temperature", type=_number(float, 0), default=1.0, help="0 is greedy (default: 1.0)")
    s.add_argument("--top-k", type=_number(int, 1, allow_none=True), default=None, help="keep the k most likely tokens (default: all)")
    s.add_argument("--top-p", type=_number(float, 0, 1, low_open=True, allow_none=True), default=None,
                   help="keep the smallest set of tokens with probability >= p (default: all)")
    s.add_argument("--max-new-tokens", type=_number(int, 1), default=30, help="at most this many new tokens (default: 30)")
    s.add_argument("--num-samples", type=_number(int, 1), default=1, help="how many continuations (default: 1)")
    s.add_argument("--seed", type=_number(int, 0), default=0, help="random seed (default: 0)")
    s.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    add_chat_commands(commands, _number, PROG)
    add_align_commands(commands, _number, PROG)
    add_pipeline_command(commands, _number, PROG)
    return parser


#: How each GPTConfig field is read from the command line; the flag's help is the field's own help.
_FLAG_TYPES = {int: _number(int, 1), float: _number(float, 0, 0.99)}
_FLAG_CHOICES = {"positions": list(POSITIONS), "activation": list(FEED_FORWARDS), "norm": list(NORMS)}
_FLAG_NUMBERS = {"n_kv_heads": _number(int, 1), "norm_eps": _number(float, 0, 0.1, low_open=True),
                 "rope_base": _number(float, 1, low_open=True)}
#: TrainConfig fields that the word mode's flags above already cover
_SHARED_TRAIN_FLAGS = ("steps", "lr", "batch_size", "eval_every", "seed")


def _add_train_flags(group):
    """One flag per TrainConfig field not shared with the word mode: --warmup-steps, --precision, ..."""
    for f in dataclasses.fields(TrainConfig):
        if f.name in _SHARED_TRAIN_FLAGS:
            continue
        flag, default = "--" + f.name.replace("_", "-"), getattr(TrainConfig, f.name)
        help_text = f"{f.metadata['help']} (default: {default})"
        if isinstance(default, bool):
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif f.name == "precision":
            group.add_argument(flag, choices=PRECISIONS, default=None, help=help_text)
        elif isinstance(default, int):
            group.add_argument(flag, type=_number(int, 0), default=None, help=help_text)
        else:
            group.add_argument(flag, type=_number(float, 0), default=None, help=help_text)


def _add_model_flags(parser):
    """One flag per GPTConfig field (vocab_size comes from the data): --context-length, --d-model, ..."""
    group = parser.add_argument_group("model (GPTConfig)")
    for f in dataclasses.fields(GPTConfig):
        if f.name == "vocab_size":
            continue
        flag, default, kind = "--" + f.name.replace("_", "-"), getattr(DEFAULTS, f.name), type(getattr(DEFAULTS, f.name))
        stream_default = STREAM_MODEL_DEFAULTS.get(f.name, default)
        shown = default if stream_default == default else f"{default} word, {stream_default} char/bpe"
        help_text = f"{f.metadata['help']} (default: {shown})"
        if kind is bool:
            group.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=help_text)
        elif f.name in _FLAG_CHOICES:
            group.add_argument(flag, choices=_FLAG_CHOICES[f.name], default=None, help=help_text)
        elif f.name in _FLAG_NUMBERS:
            group.add_argument(flag, type=_FLAG_NUMBERS[f.name], default=None, help=help_text)
        else:
            group.add_argument(flag, type=_FLAG_TYPES[kind], default=None, help=help_text)


def _read_sentences(path):
    sentences = split_sentences(_read_text(path))
    if not sentences:
        raise CourseError(f"--data {path}: the file has no text (one sentence per line expected)")
    return sentences


def _stream_flags_given(args):
    names = ["bpe_vocab_size", "val_fraction", "resume"] + [
        f.name for f in dataclasses.fields(TrainConfig) if f.name not in _SHARED_TRAIN_FLAGS]
    return ["--" + n.replace("_", "-") for n in names if getattr(args, n) is not None]


def _cmd_train(args):
    if args.tokenizer != "word":
        return cmd_pretrain(args)
    if os.environ.get("WORLD_SIZE", "1") not in ("", "1"):
        raise CourseError("--tokenizer word trains in one process (notebook 07's way): run it without torchrun; "
                          "torchrun is for --tokenizer char or bpe")
    given = _stream_flags_given(args)
    if given:
        raise CourseError(f"{', '.join(given)}: for a continuous text only (--tokenizer char or bpe); "
                          "--tokenizer word trains notebook 07's way")
    for name, default in WORD_DEFAULTS.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    _check_out(args)
    sentences = _read_sentences(args.data)
    tokenizer = WordTokenizer.from_sentences(sentences)
    data = make_batch(tokenizer, sentences)
    config = _model_config(args, len(tokenizer))
    if data[0].shape[1] > config.context_length:
        raise CourseError(f"the longest line has {data[0].shape[1] - 1} words: --context-length must be at least "
                          f"{data[0].shape[1]} (got {config.context_length})")
    device = _device(args.device)
    torch.manual_seed(args.seed)
    model = GPT(config).to(device)
    floor = corpus_floor(tokenizer, sentences)
    try:  # the banner inside: a Ctrl-C the moment it is printed must still keep the (untrained) model
        print(f"training on {args.data}: {len(sentences)} sentences, vocabulary {len(tokenizer)}, "
              f"{model.num_parameters():,} parameters, {device}; floor {floor:.4f} nats/token", flush=True)
        history = train(model, data, steps=args.steps, lr=args.lr, batch_size=args.batch_size,
                        pad_id=tokenizer.pad_id, eval_every=args.eval_every, seed=args.seed,
                        progress=not args.no_progress)
    except KeyboardInterrupt:  # between the banner and train()'s own handler: keep the (untrained) model
        history = {"step": [], "eval_step": [], "eval_loss": [], "interrupted": True, "seconds": 0.0}
    for step, loss in zip(history["eval_step"], history["eval_loss"]):
        print(f"step {step:5d}  corpus loss {loss:.4f}  ({loss / floor:.3f} x floor)")
    with _interrupts_deferred():  # a Ctrl-C now would lose the run: finish measuring and saving first
        loss = evaluate(model, data, pad_id=tokenizer.pad_id)
        path = _save(args.out, model, tokenizer, steps=len(history["step"]), corpus_loss=loss)
    done = len(history["step"])
    if history["interrupted"]:
        print(f"interrupted at step {done}: corpus loss {loss:.4f}; checkpoint saved to {path}", flush=True)
        return 130
    print(f"done: {done} steps in {history['seconds']:.1f} s, corpus loss {loss:.4f} "
          f"({loss / floor:.3f} x floor); checkpoint saved to {path}")
    return 0


def _save(out, model, tokenizer, **extra):
    """Save the checkpoint; if --out became unwritable during training, save beside it rather than lose the run."""
    while True:
        try:
            return save_checkpoint(out, model, tokenizer, **extra)
        except (OSError, ValueError) as error:
            rescue = Path(f"rescued-{out.name or 'checkpoint.pt'}").resolve()
            if out.resolve() == rescue:
                raise CourseError(f"could not save the checkpoint to {out}: {error}") from None
            print(f"could not save to {out} ({error}); saving to {rescue} instead", file=sys.stderr, flush=True)
            out = rescue


def _cmd_sample(args):
    from .sampling import generate_text

    if not args.checkpoint.is_file():
        raise CourseError(f"--checkpoint {args.checkpoint}: no such file (train one with: {PROG} train ...)")
    try:
        model, tokenizer = load_checkpoint(args.checkpoint, device=_device(args.device))
    except ValueError as error:
        raise CourseError(f"--checkpoint {str(error).split(' (torch.load')[0]}") from None
    unknown = tokenizer.unknown_words(args.prompt) if hasattr(tokenizer, "unknown_words") else []
    if unknown:
        print(f"note: not in the vocabulary, read as <unk>: {' '.join(unknown)}", file=sys.stderr)
    generator = torch.Generator().manual_seed(args.seed)
    for _ in range(args.num_samples):
        try:
            text = generate_text(model, tokenizer, args.prompt, args.max_new_tokens, temperature=args.temperature,
                                 top_k=args.top_k, top_p=args.top_p, generator=generator)
        except ValueError as error:  # a character the model's tokenizer never saw (notebook 12), or NaN weights
            where = "--checkpoint" if "NaN" in str(error) else "--prompt"
            raise CourseError(f"{where}: {error}") from None
        print(text)
    return 0


def main(argv=None):
    """Run the command line; return the exit code: 0, 2 for bad input, 130 when interrupted (README "From a terminal")."""
    try:
        argv = sys.argv[1:] if argv is None else list(argv)
        args = build_parser().parse_args(argv)
        args.argv = argv  # the command as typed, for the report card
        if args.command == "finetune":
            return cmd_finetune(args, _device(args.device), _check_out, _save, _interrupts_deferred, CourseError)
        if args.command == "chat":
            return cmd_chat(args, _device(args.device), CourseError)
        if args.command == "serve":
            return cmd_serve(args, _device(args.device), CourseError)
        if args.command == "rl":
            return cmd_rl(args, _device(args.device), _check_out, _save, _interrupts_deferred, CourseError)
        if args.command == "eval":  # with --task: one task (notebook 19); without: the report card's metrics (notebook 22)
            return (cmd_eval if args.task else cmd_evaluate)(args, _device(args.device), CourseError)
        if args.command == "pipeline":
            return cmd_pipeline(args, _device(args.device), CourseError)
        if args.command == "fetch":
            return cmd_fetch(args, CourseError)
        return _cmd_train(args) if args.command == "train" else _cmd_sample(args)
    except CourseError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
