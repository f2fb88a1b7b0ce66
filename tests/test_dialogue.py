"""Dialogue data (notebook 13): the chatterbot conversations as committed, the JSON-lines reader's errors,
and the Cornell Movie-Dialogs reader on a hand-written fixture in that corpus's format."""
import hashlib
import importlib.util
import json
import re
from pathlib import Path

import pytest

from course_lib.data import data_path
from course_lib.dialogue import check_turns, read_cornell, read_dialogues

ROOT = Path(__file__).resolve().parent.parent
CORNELL = Path(__file__).resolve().parent / "fixtures" / "cornell"


def test_dialogues_jsonl_is_what_its_script_extracts():
    spec = importlib.util.spec_from_file_location("make_dialogues", ROOT / "tools" / "make_dialogues.py")
    make = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make)
    data = data_path("dialogues.jsonl").read_bytes()
    assert hashlib.sha256(data).hexdigest() == make.OUTPUT_SHA256
    conversations = read_dialogues(data_path("dialogues.jsonl"))
    assert len(conversations) == 2026  # the package's English conversations, all of them
    assert sum(len(c) == 2 for c in conversations) == 1946  # mostly one exchange
    first = [{"role": "user", "content": "What is AI?"}, {"role": "assistant", "content": "Artificial Intelligence is the "
              "branch of engineering and science devoted to constructing machines that think."}]
    assert conversations[0] == first
    licence = (ROOT / "data" / "CHATTERBOT_CORPUS_LICENSE").read_text()
    assert licence.startswith("Copyright (c) 2017, Gunther Cox") and "Redistributions of source code must retain" in licence


@pytest.mark.parametrize("line, message", [
    ("{not json", "line 2: invalid JSON"),
    ('{"dialogue": []}', 'line 2: expected an object with "turns"'),
    ('{"turns": []}', "line 2: expected a non-empty list of turns"),
    ('{"turns": [{"role": "bot", "content": "hi"}]}', "line 2, turn 1: unknown role 'bot' (expected one of system, user, assistant)"),
    ('{"turns": [{"role": "user", "content": "  "}]}', "line 2, turn 1: the user's content is empty"),
    ('{"turns": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}',
     "line 2, turn 2: the turns do not alternate (user where the assistant was expected)"),
    ('{"turns": [{"role": "assistant", "content": "a"}]}',
     "turn 1: the turns do not alternate (assistant where the user was expected)"),
    ('{"turns": [{"role": "user", "content": "a"}, {"role": "system", "content": "b"}]}', "turn 2: a system turn may only come first"),
    ('{"turns": [{"role": "user", "content": 3}]}', "the user's content is empty"),
    ('{"turns": [{"role": "user", "text": "a"}]}', 'expected {"role": ..., "content": ...}'),
])
def test_bad_dialogue_lines_are_named(tmp_path, line, message):
    good = json.dumps({"turns": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
                                 {"role": "assistant", "content": "Hello"}]})
    path = tmp_path / "d.jsonl"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(ValueError, match=re.escape(message)) as error:
        read_dialogues(path)
    assert str(error.value).startswith("d.jsonl line 2")  # the file and the line, first
    path.write_text(good + "\n\n")
    assert len(read_dialogues(path)) == 1  # blank lines are fine


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n\n")
    with pytest.raises(ValueError, match="holds no conversation"):
        read_dialogues(tmp_path / "empty.jsonl")
    with pytest.raises(FileNotFoundError, match="no dialogue file"):
        read_dialogues(tmp_path / "none.jsonl")
    assert check_turns([{"role": "user", "content": "a"}]) == [{"role": "user", "content": "a"}]


def test_cornell_reader_on_the_corpus_format():
    conversations = read_cornell(CORNELL / "movie_lines.txt", CORNELL / "movie_conversations.txt")
    assert conversations[0] == [{"role": "user", "content": "They do to!"}, {"role": "assistant", "content": "They do not!"}]
    assert [t["content"] for t in conversations[3]] == [
        "Like my fear of wearing pastels?", 'I\'m kidding.  You know how sometimes you just become this "persona"?',
        "No", "Okay -- you're gonna need to learn how to lie."]
    assert [t["role"] for t in conversations[3]] == ["user", "assistant", "user", "assistant"]
    assert len(conversations) == 4  # the last one has an empty reply: fewer than two turns, dropped
    for conversation in conversations:
        check_turns(conversation)


def test_cornell_reader_errors(tmp_path):
    (tmp_path / "lines.txt").write_text("L1 +++$+++ u0 +++$+++ m0 +++$+++ A\n")
    with pytest.raises(ValueError, match="lines.txt line 1: expected 5 fields"):
        read_cornell(tmp_path / "lines.txt", CORNELL / "movie_conversations.txt")
    with pytest.raises(ValueError, match="line 1: line ids not in movie_lines.txt"):
        (tmp_path / "conv.txt").write_text("u0 +++$+++ u2 +++$+++ m0 +++$+++ ['L1', 'L2']\n")
        read_cornell(CORNELL / "movie_lines.txt", tmp_path / "conv.txt")
    with pytest.raises(ValueError, match="expected a list of line ids"):
        (tmp_path / "conv.txt").write_text("u0 +++$+++ u2 +++$+++ m0 +++$+++ L1, L2\n")
        read_cornell(CORNELL / "movie_lines.txt", tmp_path / "conv.txt")
    with pytest.raises(FileNotFoundError):
        read_cornell(tmp_path / "none.txt", tmp_path / "conv.txt")
