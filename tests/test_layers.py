"""The layers of course_lib (shared/DESIGN.md), checked on the import graph, and `import course_lib` staying light."""
import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "course_lib"

LAYERS = {  # module -> layer
    "_validate": "base", "device": "base", "checks": "base", "__init__": "base",
    "attention": "model", "masks": "model", "positional": "model", "decoder": "model", "gpt": "model", "modern": "model",
    "tokenizer": "text", "bpe": "text", "data": "text", "stream": "text", "dialogue": "text", "templates": "text",
    "gpt2": "interop",  # GPT-2's weights into the model, and its tokenizer: model and text, nothing above
    "gguf": "interop",  # a GGUF file's weights, tokenizer and chat template (notebook 18): the same layer as gpt2
    "llama": "interop",  # the same model from Hugging Face's unquantized files (notebook 18)
    "training": "train", "pretraining": "train", "lora": "train",
    "align": "align",  # GRPO and DPO (notebook 19): training that samples, so beside train, with generate below it
    "tasks": "chat",  # a checkable task in the chat format, and its greedy evaluation (notebook 19)
    "sampling": "generate", "kv_cache": "generate", "next_token": "generate",
    "batching": "generate",  # many sequences in one batch, and the scheduler (notebook 21)
    "chat": "chat",
    "cli_align": "faces",
    "cli": "faces", "cli_pretrain": "faces", "cli_chat": "faces", "cli_common": "faces", "server": "faces", "recipes": "faces",
    "doctor": "faces", "widgets": "faces", "plotting": "faces", "__main__": "faces",
    "evaluation": "faces", "report": "faces", "pipeline": "faces", "cli_pipeline": "faces",  # notebook 22: they read checkpoints
}
MAY_IMPORT = {  # layer -> the layers it may import
    "base": {"base"},
    "model": {"base", "model"},
    "text": {"base", "text"},
    "interop": {"base", "model", "text", "interop"},
    "train": {"base", "model", "text", "train"},
    "align": {"base", "model", "text", "train", "generate", "align"},
    "generate": {"base", "generate"},
    "chat": {"base", "text", "generate", "chat"},
    "faces": {"base", "model", "text", "interop", "train", "align", "generate", "chat", "faces"},
}
HEAVY = ["transformers", "huggingface_hub", "safetensors", "tiktoken", "regex", "fastapi", "uvicorn", "nbgrader", "gguf",
         "accelerate"]


def course_imports(path):
    """The course_lib modules a file imports, at any depth (imports inside functions count too)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found.update([node.module.split(".")[0]] if node.module else [  # `from . import x`: a module, or a name of __init__
                alias.name if (PACKAGE / f"{alias.name}.py").exists() else "__init__" for alias in node.names])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib"):
            found.add(node.module.split(".")[1] if "." in node.module else "__init__")
        elif isinstance(node, ast.Import) and any(a.name == "instructor" or a.name.startswith("instructor.") for a in node.names):
            found.add("instructor")
    return found


def test_every_module_has_a_layer():
    modules = {p.stem for p in PACKAGE.glob("*.py")}
    assert modules == set(LAYERS), f"give these modules a layer in tests/test_layers.py: {sorted(modules ^ set(LAYERS))}"


def test_no_module_imports_a_layer_above_it():
    problems = []
    for path in sorted(PACKAGE.glob("*.py")):
        layer = LAYERS[path.stem]
        for imported in course_imports(path):
            if imported == "instructor" or LAYERS.get(imported) not in MAY_IMPORT[layer]:
                problems.append(f"{path.stem} ({layer}) imports {imported} ({LAYERS.get(imported, 'outside course_lib')})")
    assert not problems, problems


def test_the_checker_catches_an_upward_import(tmp_path):
    """Positive control: a model module importing training is reported."""
    bad = tmp_path / "gpt.py"
    bad.write_text("from .training import train\n\ndef f():\n    from .cli import main\n")
    assert course_imports(bad) == {"training", "cli"}
    assert "training" not in {m for m, layer in LAYERS.items() if layer in MAY_IMPORT["model"]}


def import_cycles(graph):
    """Every module that can reach itself through the import graph ({module: modules it imports})."""
    cycles = []
    for start in graph:
        seen, todo = set(), list(graph[start])
        while todo:
            module = todo.pop()
            if module == start:
                cycles.append(start)
                break
            if module not in seen:
                seen.add(module)
                todo.extend(graph.get(module, ()))
    return sorted(cycles)


def test_no_module_imports_itself_back():
    graph = {path.stem: course_imports(path) - {path.stem, "__init__"} for path in PACKAGE.glob("*.py")}
    assert import_cycles(graph) == [], "modules in an import circle (issue 19: give shared helpers one home)"
    assert import_cycles({"cli": {"cli_pretrain"}, "cli_pretrain": {"cli"}, "gpt": set()}) == ["cli", "cli_pretrain"]  # control


def test_importing_the_library_pulls_no_heavy_extra():
    modules = " ".join(f"course_lib.{p.stem}" for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__"))
    code = (f"import importlib, sys\nfor m in '{modules}'.split(): importlib.import_module(m)\n"
            f"print(' '.join(sorted(h for h in {HEAVY!r} if h in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"imported at import time: {done.stdout.strip()} (import them inside the function that needs them)"
