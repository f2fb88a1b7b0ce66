"""The alignment commands: ``finetune --task``, ``rl`` and ``eval --task`` (notebook 19; README "Aligning with rewards").

    python -m course_lib finetune --task arithmetic --out runs/sft.pt        # the imperfect SFT start
    python -m course_lib rl --checkpoint runs/sft.pt --task arithmetic --out runs/rl.pt            # GRPO
    python -m course_lib rl --checkpoint runs/sft.pt --task arithmetic --method dpo --out runs/dpo.pt
    python -m course_lib eval --checkpoint runs/rl.pt --task arithmetic --json
"""
import json
import random
from pathlib import Path

import torch

from .align import DPOConfig, GRPOConfig, dpo, grpo
from .gpt import GPT, GPTConfig
from .tasks import HELD_OUT_SIZE, ArithmeticTask, arithmetic_tokenizer, sample_problems
from .tokenizer import SpecialTokens
from .training import load_checkpoint, train

TASKS = ("arithmetic",)
#: The arithmetic model (notebook 19): notebook 12's CPU shape on a 32-token context.
ARITHMETIC_MODEL = {"context_length": 32, "d_model": 128, "n_heads": 4, "n_layers": 4, "d_ff": 512, "positions": "learned"}
#: The SFT start's budget: chosen so held-out accuracy lands between 30 and 70 % (docs/alignment.md).
TASK_FINETUNE_DEFAULTS = {"steps": 1350, "lr": 2e-3, "batch_size": 128, "problems": 50_000}


def add_task_flag(parser, required):
    """Add ``--task`` to a command's parser (notebook 19)."""
    parser.add_argument("--task", choices=TASKS, required=required, default=None,
                        help="a task a program checks: 'arithmetic' (What is A + B? with A, B in 0..999; notebook 19)")


def add_align_commands(commands, number, prog):
    """Add ``rl`` and ``eval`` to the parser's subcommands (notebook 19; ``finetune --task`` is in ``cli_chat``)."""
    r = commands.add_parser("rl", help="improve a chat checkpoint with rewards: GRPO or DPO (notebook 19)",
                            description="Reinforcement learning with a reward a program computes (GRPO, default) or "
                                        "preference tuning on pairs of the model's own right and wrong replies (DPO). "
                                        "Prints held-out accuracy before and after. Ctrl-C stops early and still saves.")
    r.add_argument("--checkpoint", required=True, type=Path, help=f"a chat checkpoint, e.g. from '{prog} finetune --task arithmetic'")
    add_task_flag(r, required=True)
    r.add_argument("--method", choices=("grpo", "dpo"), default="grpo", help="grpo (default) or dpo")
    r.add_argument("--out", required=True, type=Path, help="where to write the improved checkpoint")
    r.add_argument("--steps", type=number(int, 1), default=None,
                   help=f"GRPO steps (default: {GRPOConfig.steps}) or DPO epochs (default: {DPOConfig.epochs})")
    r.add_argument("--lr", type=number(float, 0, low_open=True), default=None,
                   help=f"AdamW learning rate (default: {GRPOConfig.lr} GRPO, {DPOConfig.lr} DPO)")
    r.add_argument("--beta", type=number(float, 0), default=None,
                   help=f"GRPO: weight of the KL penalty (default: {GRPOConfig.beta}); DPO: its beta "
                        f"(default: {DPOConfig.beta}, must be > 0)")
    r.add_argument("--pairs", type=number(int, 1), default=None,
                   help=f"DPO: preference pairs to sample from the model first (default: {DPOConfig.pairs})")
    r.add_argument("--seed", type=number(int, 0), default=0, help="random seed (default: 0)")
    r.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = commands.add_parser("eval", help="measure checkpoints: the report card's metrics, or one task (notebooks 19, 22)",
                            description="Without --task: every metric of the report card (held-out bits per byte on "
                                        "Shakespeare and the dialogues, reply perplexity, multiple choice by "
                                        "log-likelihood, exact match on the memory and arithmetic conversations; "
                                        "notebook 22), for one checkpoint or several side by side. With --task: greedy "
                                        f"exact-match accuracy on the task's {HELD_OUT_SIZE} held-out problems (notebook 19). "
                                        "--json: the last line of output is one JSON object.")
    e.add_argument("--checkpoint", action="append", type=Path, default=[],
                   help="a course checkpoint (give it twice to compare two models side by side)")
    e.add_argument("--gguf", action="append", default=[],
                   help="a GGUF model file, or 'smollm2' for the one 'fetch smollm2' downloads (notebook 18)")
    add_task_flag(e, required=False)
    e.add_argument("--json", action="store_true", help="print one JSON object (last line) for programs")
    e.add_argument("--report", type=Path, default=None, help="also write a report card (report.md, PNGs, report.json) into this folder")
    e.add_argument("--limit", type=number(int, 1), default=None,
                   help="at most N items per held-out set: a quick look (default: all of them, the card's figures)")
    e.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")


def _task_model(path, flag, device, error):
    """A chat checkpoint whose tokenizer can write the task's text, and the task bound to it."""
    if not path.is_file():
        raise error(f"{flag} {path}: no such file")
    try:
        model, tokenizer = load_checkpoint(path, device=device)
    except ValueError as problem:
        raise error(f"{flag} {str(problem).split(' (torch.load')[0]}") from None
    if not isinstance(tokenizer, SpecialTokens):
        raise error(f"{flag} {path} is not a chat model (its tokenizer has no chat markers): make one with "
                    "python -m course_lib finetune --task arithmetic --out runs/sft.pt")
    try:
        task = ArithmeticTask(tokenizer)
        task.prompt(1234567890, 0)  # every character the task uses
    except (TypeError, ValueError) as problem:
        raise error(f"{flag} {path}: its tokenizer cannot write the arithmetic task ({str(problem)[:120]})") from None
    return model, tokenizer, task


def cmd_finetune_task(args, device, check_out, save, interrupts_deferred, error):
    """``finetune --task arithmetic``: the SFT start, from scratch (or from ``--base``) (notebook 19)."""
    if args.data is not None:
        raise error("--data and --task: give one (--task makes its own conversations)")
    check_out(args)
    if args.base is not None:
        model, tokenizer, task = _task_model(args.base, "--base", device, error)
    else:
        tokenizer = arithmetic_tokenizer()
        task = ArithmeticTask(tokenizer)
        torch.manual_seed(args.seed)
        model = GPT(GPTConfig(vocab_size=len(tokenizer), **ARITHMETIC_MODEL)).to(device)
    steps = args.steps if args.steps_given else TASK_FINETUNE_DEFAULTS["steps"]
    lr = args.lr if args.lr_given else TASK_FINETUNE_DEFAULTS["lr"]
    batch_size = args.batch_size if args.batch_size_given else TASK_FINETUNE_DEFAULTS["batch_size"]
    problems = sample_problems(random.Random(args.seed), TASK_FINETUNE_DEFAULTS["problems"])
    data = task.training_data(problems, model.config.context_length)
    before = task.accuracy(model)
    try:
        print(f"fine-tuning {'a new ' + f'{model.num_parameters():,}-parameter model' if args.base is None else args.base} "
              f"on {len(problems):,} arithmetic problems for {steps} steps, {device}; held-out accuracy before "
              f"{before:.1%}", flush=True)
        history = train(model, data, steps=steps, lr=lr, batch_size=batch_size, seed=args.seed,
                        progress=not args.no_progress)
    except KeyboardInterrupt:
        history = {"step": [], "interrupted": True, "seconds": 0.0}
    with interrupts_deferred():
        after = task.accuracy(model)
        path = save(args.out, model, tokenizer, task="arithmetic", steps=len(history["step"]),
                    finetuned_from=str(args.base) if args.base else None, held_out_accuracy=after)
    verb = "interrupted at step" if history["interrupted"] else "done:"
    print(f"{verb} {len(history['step'])} steps in {history['seconds']:.0f} s; held-out accuracy {before:.1%} -> "
          f"{after:.1%}; checkpoint saved to {path}; improve it with: python -m course_lib rl --checkpoint {path} "
          "--task arithmetic --out runs/rl.pt")
    return 130 if history["interrupted"] else 0


def cmd_rl(args, device, check_out, save, interrupts_deferred, error):
    """``rl``: GRPO or DPO on the task, from a chat checkpoint (notebook 19)."""
    check_out(args)
    if args.out.exists() and args.checkpoint.exists() and args.out.resolve() == args.checkpoint.resolve():
        raise error(f"--out {args.out} is the --checkpoint: write the result to a new file, keep the start")
    model, tokenizer, task = _task_model(args.checkpoint, "--checkpoint", device, error)
    if args.method == "grpo":
        if args.pairs is not None:
            raise error("--pairs is for --method dpo (GRPO samples its own groups at every step)")
        config = GRPOConfig(steps=args.steps or GRPOConfig.steps, lr=args.lr or GRPOConfig.lr,
                            beta=GRPOConfig.beta if args.beta is None else args.beta, seed=args.seed)
    else:
        if args.beta == 0:
            raise error("--beta must be > 0 for DPO (it is the loss's temperature)")
        config = DPOConfig(pairs=args.pairs or DPOConfig.pairs, epochs=args.steps or DPOConfig.epochs,
                           lr=args.lr or DPOConfig.lr, beta=args.beta or DPOConfig.beta, seed=args.seed)
    before = task.accuracy(model)
    print(f"{args.method.upper()} on arithmetic from {args.checkpoint}, {device}; held-out accuracy before {before:.1%}",
          flush=True)
    try:
        if args.method == "grpo":
            history = grpo(model, task, config, progress=not args.no_progress)
        else:
            history = dpo(model, task, config, progress=not args.no_progress)
    except ValueError as problem:  # DPO found no pair: every sample right, or every one wrong
        raise error(f"--checkpoint {args.checkpoint}: {problem}") from None
    except KeyboardInterrupt:
        history = {"step": [], "interrupted": True, "seconds": 0.0}
    with interrupts_deferred():
        after = task.accuracy(model)
        path = save(args.out, model, tokenizer, task="arithmetic", method=args.method, rl_from=str(args.checkpoint),
                    steps=len(history["step"]), held_out_accuracy=after)
    verb = "interrupted at step" if history["interrupted"] else "done:"
    print(f"{verb} {len(history['step'])} steps in {history.get('seconds', 0):.0f} s; held-out accuracy "
          f"{before:.1%} -> {after:.1%}; checkpoint saved to {path}")
    return 130 if history["interrupted"] else 0


def cmd_eval(args, device, error):
    """``eval --task``: held-out exact-match accuracy; ``--json`` for programs (notebook 19). Without --task: ``cli_pipeline``."""
    if len(args.checkpoint) != 1 or args.gguf or args.report is not None or args.limit is not None:
        raise error("eval --task measures one --checkpoint (no --gguf, --report or --limit); "
                    "without --task, eval compares several")
    args.checkpoint = args.checkpoint[0]
    model, _, task = _task_model(args.checkpoint, "--checkpoint", device, error)
    accuracy = task.accuracy(model)
    result = {"checkpoint": str(args.checkpoint), "task": "arithmetic", "arithmetic_acc": accuracy,
              "problems": HELD_OUT_SIZE}
    print(f"{args.checkpoint}: arithmetic held-out accuracy {accuracy:.1%} "
          f"({round(accuracy * HELD_OUT_SIZE)}/{HELD_OUT_SIZE} exact)")
    if args.json:
        print(json.dumps(result))
    return 0
