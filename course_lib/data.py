"""Finding the course's data files (introduced in notebook 01)."""
import os
from pathlib import Path

#: The repository's ``data/`` folder; ``COURSE_DATA_DIR`` overrides it (e.g. on Colab or a cluster).
DATA_DIR = Path(__file__).resolve().parent.parent / "data"


def data_dir() -> Path:
    """The folder holding the course's data files, whatever the current directory (notebook 01)."""
    override = os.environ.get("COURSE_DATA_DIR")
    return Path(override) if override else DATA_DIR


def data_path(name: str) -> Path:
    """The path of ``name`` inside the course's ``data/`` folder, checked to exist (notebook 01).

    Works from any working directory, because it is found relative to this package rather than
    to wherever the notebook was started.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name must be a file name in data/ such as 'lang.txt', got {name!r:.60}")
    folder = data_dir()
    path = folder / name
    if not path.is_file():
        available = sorted(p.name for p in folder.glob("*")) if folder.is_dir() else []
        raise FileNotFoundError(
            f"no data file {name!r} in {folder}; available: {available or 'none (is data/ missing?)'}"
        )
    return path


def split_sentences(text: str) -> list:
    """The non-empty lines of ``text``, stripped: the course's texts hold one sentence per line (notebook 07)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


def load_sentences(name: str = "lang.txt") -> list:
    """The sentences of a file in ``data/``, one per line (notebook 01)."""
    return split_sentences(data_path(name).read_text(encoding="utf-8"))
