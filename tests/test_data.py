"""Finding data files from any directory, and the shipped corpus (course_lib.data)."""
import hashlib

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

