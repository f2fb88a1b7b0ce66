"""nbgrader add-ons that make autograding survive real submissions. Used by nbgrader_config.py.

- ``SurvivingExecute``: nbgrader's executor, except that a kernel that dies (``os._exit``, a
  segfault, running out of memory) or stays stuck after the cell time limit (a loop that catches
  ``BaseException`` swallows the interrupt) no longer aborts the student's whole notebook. The cell
  that killed or hung it gets an error output, every later code cell is marked "not run" (also with
  an error output, because nbgrader scores a test cell without an error as passed), the kernel is
  shut down, and grading goes on: tests that passed before keep their points.
- ``SandboxedKernelManager``: the kernel runs in bubblewrap, seeing neither the gradebook, nor the
  instructor's notebooks, nor other submissions, and taking every process it starts down with it.
- ``InjectCompletionTokens`` / ``CheckCompletionTokens``: a test cell that raised no error but did
  not run to its last line (rewritten by an input transformer, say) scores 0.
- ``HideHiddenTests``: for feedback only. Removes the hidden-test region from every graded cell and
  replaces tracebacks with one line, so neither the hidden tests' code nor, when a hidden test
  failed, its message reaches the student.
"""
import hashlib
import hmac
import os
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from traitlets import Unicode

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _error(ename, evalue, line):
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[line])


class SurvivingExecute(Execute):
    """nbgrader's Execute, continuing to grade after the kernel dies or hangs, with the kernel in a sandbox."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)

    def on_cell_execute(self, **kwargs):
        self._running_index = kwargs.get("cell_index")

    def preprocess(self, nb, resources=None, km=None):
        self._running_index = None
        try:
            return super().preprocess(nb, resources, km)
        except DeadKernelError:
            return self._mark_from(nb, resources, "DeadKernelError", "the kernel died",
                                   "the kernel died while running this cell (os._exit, a crash, or running out of memory)")
        except CellTimeoutError:
            return self._mark_from(nb, resources, "CellTimeoutError", "the cell did not stop",
                                   f"this cell was still running after the {self.timeout} s limit and did not stop when "
                                   "interrupted (a loop that catches BaseException or KeyboardInterrupt?)")

    def _mark_from(self, nb, resources, ename, evalue, message):
        stopped = self._running_index if self._running_index is not None else 0
        self.log.warning("%s in cell %s; later cells are marked as not run", ename, stopped)
        nb.cells[stopped].outputs = [_error(ename, evalue, f"{ename}: {message}")]
        for cell in nb.cells[stopped + 1:]:
            if cell.cell_type == "code":
                cell.outputs = [_error("NotRun", f"{evalue} in cell {stopped}",
                                       f"NotRun: not executed, because {evalue} in cell {stopped}")]
        return nb, resources


class HideHiddenTests(NbGraderPreprocessor):
    """Feedback-side: strip hidden tests and detailed tracebacks from graded test cells."""

    def preprocess_cell(self, cell, resources, cell_index):
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type != "code" or not meta.get("grade"):
            return cell, resources
        lines = cell.source.splitlines()
        hidden_from = next((i + 1 for i, line in enumerate(lines) if line.strip() == BEGIN_HIDDEN), None)
        if hidden_from is not None:
            kept, inside = [], False
            for line in lines:
                if line.strip() == BEGIN_HIDDEN:
                    inside = True
                    kept.append("# (hidden tests: not shown)")
                elif line.strip() == END_HIDDEN:
                    inside = False
                elif not inside:
                    kept.append(line)
            cell.source = "\n".join(kept)
        for i, output in enumerate(cell.get("outputs", [])):
            if output.output_type != "error":
                continue
            line = self._failing_line(output, cell.get("execution_count"))
            grader_error = output.ename in ("NotRun", "DeadKernelError", "CellTimeoutError", "IncompleteTest")
            if hidden_from is not None and not grader_error and (line is None or line >= hidden_from):
                cell.outputs[i] = _error(output.ename, "", f"{output.ename}: a hidden test failed (hidden tests are not shown)")
            else:
                message = output.evalue or ANSI.sub("", output.traceback[-1] if output.get("traceback") else "")
                cell.outputs[i] = _error(output.ename, output.evalue, f"{output.ename}: {message}".rstrip(": "))
        return cell, resources

    @staticmethod
    def _failing_line(output, execution_count):
        """The line of this cell where the error was raised, from IPython's traceback."""
        text = ANSI.sub("", "\n".join(output.get("traceback", [])))
        found = re.findall(rf"Cell In\[{execution_count}\], line (\d+)", text) if execution_count else []
        return int(found[-1]) if found else None


# --- Sandboxing the student's kernel ---------------------------------------------------------------

#: Folders of the course repository a submission must not see: solutions, hidden tests, the mutants.
PRIVATE_IN_REPOSITORY = ("notebooks", "notebook_sources", "instructor", "tests", ".git")
_SANDBOX_CHECKED = {}


def sandbox_available():
    """True when bubblewrap can start a process in new namespaces here (checked once per process)."""
    if "ok" not in _SANDBOX_CHECKED:
        bwrap = shutil.which("bwrap")
        ok = False
        if bwrap:
            probe = subprocess.run([bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--unshare-pid",
                                    "--die-with-parent", "true"], capture_output=True, timeout=30)
            ok = probe.returncode == 0
        _SANDBOX_CHECKED["ok"] = ok
    return _SANDBOX_CHECKED["ok"]


def sandbox_command(kernel_cmd, workdir, hidden):
    """``kernel_cmd`` wrapped in bubblewrap: the whole file system read-only, the ``hidden`` folders
    replaced by empty ones, the student's own folder writable, its own /tmp, and its own process
    namespace, so every process it starts dies with it."""
    connection = kernel_cmd[kernel_cmd.index("-f") + 1] if "-f" in kernel_cmd else None
    command = ["bwrap", "--ro-bind", "/", "/", "--dev", "/dev", "--tmpfs", "/dev/shm", "--proc", "/proc", "--tmpfs", "/tmp"]
    for folder in _needed_under_tmp(kernel_cmd):  # a course or a virtual environment may live in /tmp
        command += ["--ro-bind", str(folder), str(folder)]
    for folder in hidden:
        if Path(folder).is_dir():
            command += ["--tmpfs", str(folder)]
    if connection:  # other kernels' connection files (and keys) are hidden; this one is readable
        runtime = Path(connection).resolve().parent
        if not (runtime == Path("/tmp").resolve() or Path("/tmp").resolve() in runtime.parents):
            command += ["--tmpfs", str(runtime)]  # (under /tmp they are hidden already)
        command += ["--ro-bind", connection, connection]
    command += ["--bind", str(workdir), str(workdir), "--chdir", str(workdir),
                "--unshare-pid", "--unshare-ipc", "--die-with-parent", "--new-session",
                # In its own process namespace the kernel's parent is bubblewrap's init (pid 1), which
                # ipykernel would take for "my parent exited"; --die-with-parent does that job instead.
                "--unsetenv", "JPY_PARENT_PID", "--"]
    return command + list(kernel_cmd)


def _needed_under_tmp(kernel_cmd):
    """What the kernel needs that the sandbox's fresh /tmp would hide: its Python environment and the
    course repository (course_lib, data/), when they live under /tmp."""
    import course_lib

    needed = {Path(sys.prefix), Path(sys.base_prefix), Path(course_lib.__file__).resolve().parent.parent}
    if kernel_cmd and os.path.isabs(kernel_cmd[0]):
        needed.add(Path(kernel_cmd[0]).parent.parent)  # the interpreter's environment (…/bin/python)
        needed.add(Path(kernel_cmd[0]).resolve().parent.parent)
    tmp = Path("/tmp").resolve()
    under = sorted(p for p in needed if p.exists() and tmp in p.resolve().parents)
    return [p for p in under if not any(q != p and q in p.parents for q in under)]  # outermost only


class SandboxedKernelManager(AsyncKernelManager):
    """The kernel nbgrader runs a submission in, started inside bubblewrap (``sandbox_command``).

    The submission then cannot read the gradebook, the instructor's notebooks or hidden tests, or
    other students' submissions, cannot write anywhere but its own folder, and leaves no process
    behind. Where bubblewrap is missing or cannot run, the kernel starts as before and one warning
    line says so.
    """

    course_root = Unicode("", help="nbgrader's course folder, hidden from the kernel").tag(config=True)

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        if sandbox_available():
            import course_lib

            repository = Path(course_lib.__file__).resolve().parent.parent
            hidden = [self.course_root or os.getcwd()] + [repository / name for name in PRIVATE_IN_REPOSITORY]
            workdir = Path(kw.get("cwd") or os.getcwd()).resolve()
            kernel_cmd = sandbox_command(kernel_cmd, workdir, hidden)
            # A signal would reach bubblewrap, not the kernel: interrupt by message on the control
            # channel instead (the kernel then signals itself), so the cell time limit still works.
            self.kernel_spec.interrupt_mode = "message"
        else:
            # The plain directory sandbox: the kernel works in a throw-away copy of the student's
            # folder, away from the course folder, so relative paths (../../gradebook.db) lead nowhere.
            if "warned" not in _SANDBOX_CHECKED:
                _SANDBOX_CHECKED["warned"] = True
                self.log.warning("bubblewrap (bwrap) is not available: grading in a plain directory sandbox only "
                                 "(apt-get install bubblewrap for the real one; see INSTRUCTORS.md)")
            self._scratch = tempfile.mkdtemp(prefix="grading-")
            shutil.copytree(kw.get("cwd") or os.getcwd(), self._scratch, dirs_exist_ok=True)
            kw["cwd"] = self._scratch
        return await super()._async_launch_kernel(kernel_cmd, **kw)

    async def _async_cleanup_resources(self, restart=False):
        await super()._async_cleanup_resources(restart=restart)
        scratch = getattr(self, "_scratch", None)
        if scratch and not restart:
            shutil.rmtree(scratch, ignore_errors=True)


# --- Completion tokens: did every test cell run to its end? -----------------------------------------

TOKEN_MARK = "course-grader-completed:"


class InjectCompletionTokens(NbGraderPreprocessor):
    """Before execution: end every graded test cell with a line printing a token made from a secret
    drawn for this run. The secret is never written to disk; only nbgrader's process knows it."""

    def preprocess(self, nb, resources):
        secret = secrets.token_hex(16)
        resources["completion_tokens"] = {}
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            if cell.cell_type == "code" and meta.get("grade") and not meta.get("solution"):
                token = hmac.new(secret.encode(), meta["grade_id"].encode(), hashlib.sha256).hexdigest()[:32]
                resources["completion_tokens"][meta["grade_id"]] = token
                cell.source = f"{cell.source}\n{_token_line(token)}"
        return nb, resources


class CheckCompletionTokens(NbGraderPreprocessor):
    """After execution: a test cell that raised no error but did not print its token did not run its
    checks (an input transformer rewrote it, print or stdout was replaced, ...): it gets an error
    output, so nbgrader scores it 0. The token line and its output are removed either way."""

    def preprocess(self, nb, resources):
        tokens = resources.get("completion_tokens", {})
        for cell in nb.cells:
            meta = cell.metadata.get("nbgrader", {})
            token = tokens.get(meta.get("grade_id"))
            if cell.cell_type != "code" or token is None:
                continue
            line = _token_line(token)
            cell.source = cell.source[: -len(line) - 1] if cell.source.endswith("\n" + line) else cell.source
            printed = any(token in "".join(o.get("text", "")) for o in cell.outputs if o.output_type == "stream")
            for output in cell.outputs:
                if output.output_type == "stream" and token in output.get("text", ""):
                    output.text = "".join(t for t in output.text.splitlines(True) if token not in t)
            cell.outputs = [o for o in cell.outputs if not (o.output_type == "stream" and not o.text)]
            errored = any(o.output_type == "error" for o in cell.outputs)
            if not printed and not errored:
                cell.outputs.append(_error("IncompleteTest", "the test cell did not run to its end",
                                           "IncompleteTest: this test cell did not run to its end (was it changed while it "
                                           "ran, or was print replaced?), so it earns no points"))
        return nb, resources


def _token_line(token):
    return f"print({TOKEN_MARK + token!r})"
