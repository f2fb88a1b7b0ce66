"""nbgrader add-ons that make autograding survive real submissions. Used by nbgrader_config.py.

- ``SurvivingExecute``: nbgrader's executor, except that a kernel that dies (``os._exit``, a
  segfault, running out of memory) or stays stuck after the cell time limit (a loop that catches
  ``BaseException`` swallows the interrupt) no longer aborts the student's whole notebook. The cell
  that killed or hung it gets an error output, every later code cell is marked "not run" (also with
  an error output, because nbgrader scores a test cell without an error as passed), the kernel is
  shut down, and grading goes on: tests that passed before keep their points.
- ``HideHiddenTests``: for feedback only. Removes the hidden-test region from every graded cell and
  replaces tracebacks with one line, so neither the hidden tests' code nor, when a hidden test
  failed, its message reaches the student.
"""
import re

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.preprocessors import Execute, NbGraderPreprocessor

BEGIN_HIDDEN = "### BEGIN HIDDEN TESTS"
END_HIDDEN = "### END HIDDEN TESTS"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _error(ename, evalue, line):
    return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[line])


class SurvivingExecute(Execute):
    """nbgrader's Execute, continuing to grade after the kernel dies."""

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
            grader_error = output.ename in ("NotRun", "DeadKernelError", "CellTimeoutError")
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
