"""Execute every notebook top to bottom on this machine's best device and report, without storing.

For checking the course on a GPU (or any machine other than the one the stored outputs come from):
each notebook runs in a fresh kernel from a copy, on ``course_lib.get_device()`` (a CUDA GPU when
there is one, unless COURSE_DEVICE says otherwise). Prints one line per notebook: ok or the
error, and the seconds it took. The executed copies go to ``--out`` (default: a temporary folder).

    python tools/run_notebooks.py                 # all notebooks
    python tools/run_notebooks.py 07 08 --out /tmp/executed
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parent.parent


def run(path, out_dir, timeout=900):
    nb = nbformat.read(path, as_version=4)
    started = time.perf_counter()
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3",
                            resources={"metadata": {"path": str(ROOT / "notebooks")}})
    try:
        client.execute()
        status = "ok"
    except CellExecutionError as error:
        status = "FAILED: " + str(error).strip().splitlines()[-1][:300]
    seconds = time.perf_counter() - started
    nbformat.write(nb, Path(out_dir) / path.name)
    return status, seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("numbers", nargs="*", help="notebook numbers, e.g. 07 08 (default: all)")
    parser.add_argument("--out", type=Path, default=None, help="folder for the executed copies")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="executed-"))
    out.mkdir(parents=True, exist_ok=True)
    notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if args.numbers:
        notebooks = [p for p in notebooks if p.name[:2] in args.numbers]
    failures = 0
    for path in notebooks:
        status, seconds = run(path, out)
        failures += status != "ok"
        print(f"{path.name:45s} {seconds:7.1f} s  {status}", flush=True)
    print(f"executed copies in {out}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
