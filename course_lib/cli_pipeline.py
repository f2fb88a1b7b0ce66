"""``pipeline`` and ``eval`` (without ``--task``) from a terminal (notebook 22; README "The whole pipeline").

    python -m course_lib pipeline --preset cpu --out runs/pipeline      # every stage, then the report card
    python -m course_lib pipeline --preset cpu --out runs/pipeline      # again: skips what is done
    python -m course_lib eval --checkpoint runs/pipeline/rl.pt --json
    python -m course_lib eval --checkpoint notebooks/runs/chat.pt --checkpoint runs/pipeline/rl.pt --report runs/compare
"""
import argparse
import json
import shlex
import sys
from pathlib import Path

from .pipeline import PRESETS, STAGES, PipelineError, default_preset, run_pipeline


def add_pipeline_command(commands, number, prog):
    """Add ``pipeline`` to the parser's subcommands (notebook 22)."""
    p = commands.add_parser("pipeline", help="every stage, tokenizer to report card, in one run folder (notebook 22)",
                            description="Train a BPE tokenizer, pretrain a GPT on Shakespeare, fine-tune it into a chat "
                                        "model (dialogues, memory conversations, arithmetic; assistant-only loss), "
                                        "improve its arithmetic with GRPO, and write a report card comparing the three "
                                        "models. Run it again to continue: finished stages are skipped, pretraining "
                                        "resumes from its last checkpoint. Presets: "
                                        + "; ".join(f"{name}: {preset.about}" for name, preset in PRESETS.items()) + ".")
    p.add_argument("--out", required=True, type=Path, help="the run folder (created if missing; e.g. runs/pipeline)")
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="the scale (default: gpu when a GPU is present, else cpu)")
    p.add_argument("--until", choices=STAGES, default="eval", help="stop after this stage (default: eval, the last)")
    p.add_argument("--redo", choices=STAGES, default=None, help="run this stage and the later ones again, even if done")
    p.add_argument("--serve", action="store_true", help="then serve the final chat model over HTTP (needs the serve extra)")
    p.add_argument("--port", type=number(int, 0, 65535), default=8000, help="with --serve: the port (default: 8000)")
    p.add_argument("--seed", type=number(int, 0), default=0, help="random seed of every stage (default: 0)")
    p.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars (the stage lines stay)")


def cmd_pipeline(args, device, error):
    """``pipeline``: run or continue every stage; print where the card is (notebook 22)."""
    import torch

    preset = args.preset or default_preset()
    if args.serve:
        from .server import require_fastapi

        try:
            require_fastapi()  # before hours of training, not after
        except ImportError as problem:
            raise error(str(problem)) from None
    command = "python -m course_lib " + shlex.join(args.argv)
    try:
        report = run_pipeline(args.out, preset, until=args.until, redo=args.redo, seed=args.seed, device=device,
                              progress=not args.no_progress, log=lambda line: print(line, flush=True), command=command)
    except (PipelineError, ValueError) as problem:
        raise error(str(problem)) from None
    except KeyboardInterrupt:
        print(f"interrupted: the finished stages are kept in {args.out}; run the same command again to continue",
              file=sys.stderr, flush=True)
        return 130
    finally:
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
    if report is None:
        return 0
    print(f"report card: {args.out / 'report.md'} (figures: {args.out / 'report.json'}); final chat model: "
          f"{report['checkpoint']}", flush=True)
    if args.serve:
        from .server import serve
        from .training import load_checkpoint

        model, tokenizer = load_checkpoint(report["checkpoint"], device=device)
        serve(model, tokenizer, port=args.port, model_name=f"pipeline-{preset}")
    return 0


def _models(args, device, error):
    """``[(name, model, tokenizer)]`` for every --checkpoint and --gguf, in the order given."""
    from .cli_chat import _load

    models = []
    for path in args.checkpoint:
        model, tokenizer = _load("--checkpoint", path, device, error)
        models.append((str(path), model, tokenizer))
    for source in args.gguf:
        from .cli_chat import load_chat_model

        model, tokenizer, name = load_chat_model(argparse.Namespace(gguf=source, checkpoint=None), device, error)
        models.append((name, model, tokenizer))
    if not models:
        raise error("give --checkpoint FILE (a course checkpoint) or --gguf smollm2 to evaluate")
    return models


def cmd_evaluate(args, device, error):
    """``eval`` without ``--task``: the report card's metrics for each model; ``--json``, ``--report`` (notebook 22)."""
    from .evaluation import METRICS, evaluate_model

    models = _models(args, device, error)
    columns = {}
    for name, model, tokenizer in models:
        metrics, notes = evaluate_model(model, tokenizer, limit=args.limit)
        if all(value is None for value in metrics.values()):
            raise error(f"{name}: none of the metrics applies to this model ({next(iter(notes.values()))})")
        columns[name if name not in columns else f"{name} ({len(columns) + 1})"] = (metrics, notes)
    width = max(len(what) for what, _ in METRICS.values())
    print(f"{'':{width}}  " + "  ".join(f"{Path(n).name[:18]:>18}" for n in columns))
    for key, (what, _) in METRICS.items():
        cells = [columns[n][0][key] for n in columns]
        print(f"{what:{width}}  " + "  ".join(f"{'n/a' if v is None else f'{v:.4f}':>18}" for v in cells))
    if args.limit:
        print(f"(at most {args.limit} items per set: a quick look, not the report card's figures)")
    if args.report is not None:
        from .report import write_report

        try:
            path = write_report(args.report, "Report card: " + " vs ".join(Path(n).name for n in columns), columns,
                                command="python -m course_lib " + shlex.join(args.argv),
                                facts={"eval sets": "every held-out item" if not args.limit else f"at most {args.limit} each"},
                                extra={"checkpoint": list(columns) if len(columns) > 1 else next(iter(columns))})
        except OSError as problem:
            raise error(f"--report {args.report}: {problem.strerror or problem}") from None
        print(f"report card: {path}")
    if args.json:
        names = list(columns)
        if len(names) == 1:
            result = {"checkpoint": names[0], **columns[names[0]][0], "limit": args.limit}
        else:
            result = {"checkpoint": names, **{key: [columns[n][0][key] for n in names] for key in METRICS},
                      "limit": args.limit}
        print(json.dumps(result))
    return 0
