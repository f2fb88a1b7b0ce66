"""The report card: one Markdown page with its PNG plots, and the same figures as JSON (notebook 22).

``write_report`` takes what was measured (``evaluation.evaluate_model``'s metrics for one model or
several, side by side) and what happened (loss curves, timings, sample conversations) and writes
``report.md``, ``report.json`` and the plots into one folder. Nothing on the card is typed in by
hand: every number is one of the arguments, so a different checkpoint gives a different card.
"""
import json
import math
import os
import platform
from pathlib import Path

import torch

from .evaluation import METRICS


def machine():
    """Where this ran: CPU model, cores, PyTorch threads, GPU, and the versions (notebook 22)."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    from . import __version__

    return {"cpu": cpu, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            "python": platform.python_version(), "torch": torch.__version__, "course_lib": __version__,
            "platform": platform.platform(terse=True)}


def atomic_write(path, data):
    """Write ``data`` (str or bytes) to ``path`` through a temporary file and a rename: never half a file (notebook 22)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        (temporary.write_bytes if isinstance(data, bytes) else lambda d: temporary.write_text(d, encoding="utf-8"))(data)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def _figure(x_label, y_label, title):
    from matplotlib.figure import Figure  # no pyplot: no global state, no display needed

    figure = Figure(figsize=(6, 3.4), dpi=100)
    axes = figure.add_subplot()
    axes.set(xlabel=x_label, ylabel=y_label, title=title)
    axes.grid(alpha=0.3)
    return figure, axes


def plot_curves(path, curves, x_label, y_label, title):
    """One PNG of several ``{label: (xs, ys)}`` curves (notebook 22). Returns ``path``."""
    figure, axes = _figure(x_label, y_label, title)
    for label, (xs, ys) in curves.items():
        axes.plot(xs, ys, label=label, marker="o" if len(xs) < 12 else None, markersize=3)
    if curves:
        axes.legend()
    figure.tight_layout()
    from io import BytesIO

    buffer = BytesIO()
    figure.savefig(buffer, format="png", metadata={"Software": None})  # no version stamp: the same bytes every run
    atomic_write(path, buffer.getvalue())
    return Path(path)


def _format(value):
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.4f}" if abs(value) < 10 else f"{value:,.1f}"
    return str(value)


def metrics_table(columns):
    """The Markdown table of ``{column name: (metrics, notes)}``, one row per metric (notebook 22)."""
    names = list(columns)
    lines = ["| metric | better | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for key, (what, better) in METRICS.items():
        cells = []
        for name in names:
            metrics, notes = columns[name]
            value = metrics.get(key)
            cells.append(_format(value) if value is not None else ("n/a" + (" (*)" if key in notes else "")))
        lines.append(f"| {what} (`{key}`) | {better} | " + " | ".join(cells) + " |")
    reasons = sorted({(key, note) for _, notes in columns.values() for key, note in notes.items()})
    if reasons:
        lines.append("")
        lines += [f"(*) `{key}`: {note}" for key, note in reasons]
    return "\n".join(lines)


def write_report(folder, title, columns, command=None, curves=None, samples=None, timings=None, facts=None,
                 extra=None):
    """Write ``report.md`` (with its PNGs) and ``report.json`` into ``folder``; return the Markdown's path (notebook 22).

    ``columns``: ``{model name: (metrics, notes)}`` from ``evaluate_model``, side by side.
    ``curves``: ``{file stem: {"title", "x", "y", "curves": {label: (xs, ys)}}}``, one PNG each.
    ``samples``: ``[{"model", "prompt", "reply"}]``, shown verbatim. ``timings``: ``{stage: seconds}``.
    ``facts``: ``{name: value}`` shown in the card's first table (preset, parameters, tokens/s, MFU,
    seed, ...). ``extra``: more keys for ``report.json`` only (e.g. ``checkpoint``).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    where = machine()
    lines = [f"# {title}", ""]
    if command:
        lines += ["```", command, "```", ""]
    lines += ["| | |", "|---|---|"]
    for name, value in {**(facts or {}), "machine": f"{where['cpu']}, {where['cores']} cores "
                        f"({where['torch_threads']} PyTorch threads)" + (f", {where['gpu']}" if where["gpu"] else ""),
                        "versions": f"Python {where['python']}, PyTorch {where['torch']}, course_lib {where['course_lib']}",
                        }.items():
        lines.append(f"| {name} | {_format(value)} |")
    lines += ["", "## Metrics", "", "Held-out data only; how each is defined: `course_lib/evaluation.py`.", "",
              metrics_table(columns), ""]
    if timings:
        total = sum(timings.values())
        lines += ["## Time", "", "| stage | seconds |", "|---|---|"]
        lines += [f"| {stage} | {seconds:,.1f} |" for stage, seconds in timings.items()]
        lines += [f"| **total** | **{total:,.1f}** ({total / 60:.1f} min) |", ""]
    for stem, plot in (curves or {}).items():
        plot_curves(folder / f"{stem}.png", plot["curves"], plot["x"], plot["y"], plot["title"])
        lines += [f"![{plot['title']}]({stem}.png)", ""]
    if samples:
        lines += ["## Sample conversations", "", "Greedy (temperature 0), so the same model always says the same.", ""]
        for sample in samples:
            lines += [f"**{sample['model']}** — {sample['prompt']}", "", "```",
                      sample["reply"].replace("```", "'''") or "(empty reply)", "```", ""]
    markdown = folder / "report.md"
    atomic_write(markdown, "\n".join(lines))
    figures = {"title": title, "command": command, "machine": where, "facts": facts or {}, "timings": timings or {},
               "models": {name: {"metrics": m, "notes": n} for name, (m, n) in columns.items()},
               "samples": samples or [], **(extra or {})}
    last_metrics = list(columns.values())[-1][0] if columns else {}
    figures.update({key: value for key, value in last_metrics.items() if key not in figures})
    atomic_write(folder / "report.json", json.dumps(_finite(figures), indent=1))
    return markdown


def _finite(value):
    """JSON has no NaN or infinity: such a figure is written as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
