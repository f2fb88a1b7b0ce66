"""What the command line's commands share: the error a user can act on, number flags, the model's flags'
values, the device, reading a text, the output check, and holding Ctrl-C while a run is saved (README
"From a terminal"). One place, imported by ``cli`` and ``cli_pretrain`` alike: no import circle.
"""
import argparse
import contextlib
import dataclasses
import math
import signal
import threading

from .device import get_device
from .gpt import GPTConfig
from .training import check_output_path

PROG = "python -m course_lib"
DEFAULTS = GPTConfig(vocab_size=1)


#: notebook 12's CPU configuration, for --tokenizer char or bpe (a continuous text)
STREAM_MODEL_DEFAULTS = {"context_length": 128, "d_model": 128, "n_heads": 4, "n_layers": 4, "d_ff": 512,
                         "positions": "learned"}


class CourseError(Exception):
    """A problem with the user's input: printed as one line (the command line, README "From a terminal")."""


def _number(kind, low=None, high=None, low_open=False, allow_none=False):
    def parse(text):
        if allow_none and text.lower() == "none":
            return None
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if low is not None and (value < low or (low_open and value == low)):
            raise argparse.ArgumentTypeError(f"must be {'>' if low_open else '>='} {low}, got {text}")
        if high is not None and value > high:
            raise argparse.ArgumentTypeError(f"must be <= {high}, got {text}")
        return value
    return parse


def _model_config(args, vocab_size, defaults=None):
    defaults = defaults or {}
    values = {}
    for f in dataclasses.fields(GPTConfig):
        if f.name != "vocab_size":
            given = getattr(args, f.name)
            values[f.name] = given if given is not None else defaults.get(f.name, getattr(DEFAULTS, f.name))
    try:
        return GPTConfig(vocab_size=vocab_size, **values)
    except (TypeError, ValueError) as error:
        message = str(error)
        for name in values:  # name the flag, not the Python field
            message = message.replace(name, "--" + name.replace("_", "-"))
        raise CourseError(message) from None


def _device(name):
    try:
        return get_device(name)
    except ValueError as error:
        raise CourseError(str(error)) from None


def _read_text(path):
    if not path.is_file():
        raise CourseError(f"--data {path}: no such file")
    raw = path.read_bytes()
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise CourseError(f"--data {path}: not UTF-8 text (byte 0x{raw[error.start]:02x} at offset {error.start})") from None


def _check_out(args):
    """Refuse, before any training, an --out that cannot take the checkpoint: never lose a finished run."""
    try:
        check_output_path(args.out)
    except ValueError as error:
        raise CourseError(f"--out {error}") from None
    data = getattr(args, "data", None)
    if args.out.exists() and data is not None and data.exists() and args.out.resolve() == data.resolve():
        raise CourseError(f"--out {args.out} is the --data file: writing the checkpoint there would destroy the corpus")


@contextlib.contextmanager
def _interrupts_deferred():
    """Hold Ctrl-C until the block ends (main thread only; elsewhere the block runs as it is)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run is finished: saving it comes first
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
