"""Dialogue data: conversations as lists of turns, read and checked (introduced in notebook 13).

A conversation is a list of turns, each ``{"role": ..., "content": ...}``: an optional ``system``
turn first, then ``user`` and ``assistant`` turns alternating, starting with the user. That is the
shape chat models are trained on and the one OpenAI's chat API speaks. The readers below turn the
course's ``data/dialogues.jsonl`` (from the chatterbot corpus, ``tools/make_dialogues.py``) and the
Cornell Movie-Dialogs corpus (the first source document's) into it, and refuse bad data with an
error that names the file, the line and what was expected.
"""
import io
import json
from pathlib import Path

ROLES = ("system", "user", "assistant")
CORNELL_SEPARATOR = " +++$+++ "


def check_turns(turns, where="the conversation"):
    """Raise ValueError, naming ``where`` and the turn, unless ``turns`` is a well-formed conversation (notebook 13).

    Well-formed: a non-empty list of ``{"role", "content"}`` dicts; roles among ``ROLES``; content a
    non-empty string; ``system`` only as the first turn; then user and assistant alternating,
    the user first.
    """
    if not isinstance(turns, list) or not turns:
        raise ValueError(f"{where}: expected a non-empty list of turns, got {type(turns).__name__} {str(turns)[:60]}")
    expected = "user"
    for i, turn in enumerate(turns, start=1):
        if not isinstance(turn, dict) or set(turn) - {"role", "content"} or "role" not in turn or "content" not in turn:
            raise ValueError(f"{where}, turn {i}: expected {{\"role\": ..., \"content\": ...}}, got {str(turn)[:80]}")
        role, content = turn["role"], turn["content"]
        if role not in ROLES:
            raise ValueError(f"{where}, turn {i}: unknown role {role!r} (expected one of {', '.join(ROLES)})")
        if not isinstance(content, str) or not content.strip():
            raise ValueError(f"{where}, turn {i}: the {role}'s content is empty (expected some text)")
        if role == "system":
            if i != 1:
                raise ValueError(f"{where}, turn {i}: a system turn may only come first")
            continue
        if role != expected:
            raise ValueError(f"{where}, turn {i}: the turns do not alternate ({role} where the {expected} was expected)")
        expected = "assistant" if role == "user" else "user"
    return turns


def read_dialogues(path):
    """The conversations of a JSON-lines file, one ``{"turns": [...]}`` per line, checked (notebook 13).

    Blank lines are skipped; anything else that is not a well-formed conversation is a ValueError
    naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no dialogue file at {path}")
    conversations = []
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        raise ValueError(f"{path.name} line {line}: not UTF-8 text (byte 0x{raw[error.start]:02x}); save the file as "
                         "UTF-8") from None
    for number, line in enumerate(io.StringIO(text, newline=None), start=1):  # lines as open() reads them
        if not line.strip():
            continue
        where = f"{path.name} line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise ValueError(f"{where}: invalid JSON ({error.msg} at column {error.colno})") from None
        if not isinstance(record, dict) or "turns" not in record:
            raise ValueError(f"{where}: expected an object with \"turns\", got {line.strip()[:60]}")
        conversations.append(check_turns(record["turns"], where))
    if not conversations:
        raise ValueError(f"{path} holds no conversation")
    return conversations


def read_cornell(lines_path, conversations_path):
    """The Cornell Movie-Dialogs corpus as conversations of alternating user and assistant turns (notebook 13).

    ``movie_lines.txt`` has ``lineID +++$+++ characterID +++$+++ movieID +++$+++ name +++$+++ text``;
    ``movie_conversations.txt`` has ``char1 +++$+++ char2 +++$+++ movieID +++$+++ ['L1', 'L2', ...]``.
    Both are ISO-8859-1, as distributed. The speakers of a conversation alternate, so its first
    line becomes the user's turn, the second the assistant's, and so on. Lines with empty text
    are dropped (the corpus has a few), and a conversation left with fewer than two turns too.
    """
    texts = {}
    for number, line in enumerate(_lines(lines_path), start=1):
        fields = line.split(CORNELL_SEPARATOR)
        if len(fields) != 5:
            raise ValueError(f"{Path(lines_path).name} line {number}: expected 5 fields separated by "
                             f"'{CORNELL_SEPARATOR.strip()}', got {len(fields)}")
        texts[fields[0].strip()] = fields[4].strip()
    conversations = []
    for number, line in enumerate(_lines(conversations_path), start=1):
        fields = line.split(CORNELL_SEPARATOR)
        where = f"{Path(conversations_path).name} line {number}"
        if len(fields) != 4:
            raise ValueError(f"{where}: expected 4 fields separated by '{CORNELL_SEPARATOR.strip()}', got {len(fields)}")
        try:
            ids = json.loads(fields[3].strip().replace("'", '"'))
        except json.JSONDecodeError:
            raise ValueError(f"{where}: expected a list of line ids like ['L1', 'L2'], got {fields[3].strip()[:40]}") from None
        missing = [i for i in ids if i not in texts]
        if missing:
            raise ValueError(f"{where}: line ids not in {Path(lines_path).name}: {missing[:3]}")
        sentences = [texts[i] for i in ids if texts[i]]
        if len(sentences) >= 2:
            conversations.append([{"role": "user" if k % 2 == 0 else "assistant", "content": s}
                                  for k, s in enumerate(sentences)])
    return conversations


def _lines(path):
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no file at {path}")
    return [line for line in path.read_text(encoding="iso-8859-1").splitlines() if line.strip()]


# No doubled letters ("Anna", "apples"): a small model copies "pp" as "p" (notebook 14 measured it), which
# would measure copying, not whether the history is used.
MEMORY_NAMES = tuple("""Maria John Aisha Ken Olga Pedro Li Sara Tom Nina Omar Eva Raj Max Zoe Ivan Mia Leo Hugo Yuki
    Ali Kate Ben Lena Sam Rosa Ines Carl Dina Eric Fay Gus Hana Igor Jade Karl Lily Marco Nora Pia Rita Sven Tara Uma
    Vera Walt Xena Yara Zack Amir Bea Cole Dora Eli Flora Gil Ida Jon Kira Lars Mona Ned Oda Paul Rex Sue Ted Una Vic
    Wes Yves Zara""".split())
MEMORY_LIKES = tuple("""poetry cats rain painting tea dancing science history gardens films maps boats kites snow soup
    rice trains birds stars clocks bread honey music golf plums opera yoga tango""".split())
_INTRODUCTIONS = ("I am {name} and I like {like}.", "Hi! I'm {name}. I love {like}.", "My name is {name}; I like {like}.")
_GREETINGS = ("Hello, {name}!", "Nice to meet you, {name}.")
_SMALL_TALK = (("How are you?", "Very well."), ("What can you do?", "I can chat."), ("Do you sleep?", "Never."),
               ("Is it late?", "I have no clock."), ("Tell me a joke.", "Knock knock!"))
_QUESTIONS = (("What do I like?", "You like {like}."), ("What is my name?", "You are {name}."),
              ("What do I love?", "You love {like}."))


def memory_dialogues(seed=0, held_out_fraction=0.2):
    """A generated set of conversations whose last answer needs the history: ``(train, held_out)`` (notebook 14).

    The user says their name and what they like, talks about something else, then asks about
    it; the assistant's last turn repeats the right fact. Every (name, like) pair is one
    conversation, with random wording; the held-out pairs never occur in training (each name and
    each like does), so answering them means reading the history, not remembering a pair.
    """
    import random

    if not 0 < held_out_fraction < 1:
        raise ValueError(f"held_out_fraction must be in (0, 1), got {held_out_fraction!r}")
    rng = random.Random(seed)
    pairs = [(name, like) for name in MEMORY_NAMES for like in MEMORY_LIKES]
    rng.shuffle(pairs)
    conversations = []
    for name, like in pairs:
        small_talk = rng.choice(_SMALL_TALK)
        question, answer = rng.choice(_QUESTIONS)
        texts = [rng.choice(_INTRODUCTIONS), rng.choice(_GREETINGS), *small_talk, question, answer]
        conversations.append([{"role": "user" if i % 2 == 0 else "assistant", "content": text.format(name=name, like=like)}
                              for i, text in enumerate(texts)])
    cut = round(len(conversations) * held_out_fraction)
    return conversations[cut:], conversations[:cut]
