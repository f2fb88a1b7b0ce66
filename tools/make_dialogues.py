"""Assemble data/dialogues.jsonl (2,026 English conversations) from the `chatterbot-corpus` package.

    python tools/make_dialogues.py           # download, check, extract, check, write
    python tools/make_dialogues.py --check   # the same, but only compare with the committed files

The source distribution of `chatterbot-corpus` 1.3.3 on the package registry holds its English
conversations as YAML in `chatterbot_corpus/data/english/*.yml`: each conversation a list of
sentences, the speakers alternating, the first one the user's. Its licence is BSD-3-Clause; the
notice is kept, word for word, in data/CHATTERBOT_CORPUS_LICENSE.

Deterministic: the download's sha256 is checked, the files are read in sorted order, each
conversation becomes one JSON line ``{"turns": [{"role": "user", "content": ...}, {"role":
"assistant", ...}, ...], "source": "<file>"}`` with the text stripped (non-string entries, which a
few YAML files have for numbers, are written as text), and the output's sha256 is checked. Nothing
downloads at run time: the output files are committed. Needs PyYAML (a dependency of Jupyter).
"""
import argparse
import hashlib
import json
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sdist import download_sdist  # noqa: E402 - the tools folder, put on the path above

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "data" / "dialogues.jsonl"
LICENSE = ROOT / "data" / "CHATTERBOT_CORPUS_LICENSE"
PACKAGE = "chatterbot-corpus==1.3.3"
SDIST_SHA256 = "615b5c4c605154f60ae51d03ed918ed92e9d32bc2b144b759bbc64ecdbe18481"
OUTPUT_SHA256 = "44995be8dd77f1b81c08f57ccd55425e8a1b18278613fb9c16a50842fcd570dc"


def extract(sdist):
    """(the JSON lines, the licence text) of the package's English conversations."""
    import yaml

    lines, licence = [], None
    with tarfile.open(sdist) as archive:
        members = sorted((m for m in archive.getmembers() if "/data/english/" in m.name and m.name.endswith(".yml")),
                         key=lambda m: m.name)
        for member in members:
            data = yaml.safe_load(archive.extractfile(member).read().decode("utf-8"))
            for conversation in data.get("conversations") or []:
                sentences = [str(s).strip() for s in conversation if str(s).strip()]
                if len(sentences) < 2:
                    continue
                turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": s} for i, s in enumerate(sentences)]
                lines.append(json.dumps({"turns": turns, "source": Path(member.name).stem}, ensure_ascii=False))
        licence_member = next(m for m in archive.getmembers() if Path(m.name).name.lower() == "license.md")
        licence = archive.extractfile(licence_member).read().decode("utf-8")
    return "\n".join(lines) + "\n", licence


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the committed files instead of writing them")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        text, licence = extract(download_sdist(PACKAGE, SDIST_SHA256, folder))
    data = text.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    if digest != OUTPUT_SHA256:
        raise SystemExit(f"extracted dialogues: sha256 {digest}, expected {OUTPUT_SHA256}")
    if args.check:
        same = OUTPUT.read_bytes() == data and LICENSE.read_text(encoding="utf-8") == licence
        print("data/dialogues.jsonl matches the package" if same else "data/dialogues.jsonl differs from the package")
        return 0 if same else 1
    OUTPUT.write_bytes(data)
    LICENSE.write_text(licence, encoding="utf-8")
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {text.count(chr(10)):,} conversations, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
