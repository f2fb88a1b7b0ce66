"""nbgrader configuration for the GPT-from-scratch course. Run nbgrader from this folder.

See INSTRUCTORS.md at the repository root for the whole workflow.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from grading import CheckCompletionTokens, HideHiddenTests, InjectCompletionTokens, SurvivingExecute  # noqa: E402
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor  # noqa: E402
from nbgrader.preprocessors import (  # noqa: E402
    AssignLatePenalties,
    CheckCellMetadata,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    SaveAutoGrades,
)

c = get_config()  # noqa: F821 (nbgrader provides it)

# Kernels started by nbgrader inherit this: notebooks 14-16 then train their (ungraded) demonstrations
# for a few steps only (course_lib.grading_run), so a class's submissions grade in minutes.
os.environ.setdefault("COURSE_GRADING", "1")

c.CourseDirectory.course_id = "gpt-from-scratch"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))

# Every notebook cell finishes in seconds on a laptop CPU; a cell still running after this many
# seconds (an infinite loop) is interrupted, marked as an error, and grading goes on.
c.Execute.timeout = 60

# nbgrader's own pipeline, with: completion tokens around the execution (a test cell that did not
# run to its end scores 0), and the executor that survives a dead or stuck kernel and starts it in a
# bubblewrap sandbox that hides this folder (the gradebook, source/, other submissions).
c.SandboxedKernelManager.course_root = c.CourseDirectory.root
c.Autograde.autograde_preprocessors = [
    InjectCompletionTokens, SurvivingExecute, CheckCompletionTokens, IgnorePattern, ClearMetadataPreprocessor,
    LimitOutput, SaveAutoGrades, AssignLatePenalties, CheckCellMetadata,
]

# Feedback shows the student's work and scores, never the hidden tests.
c.GenerateFeedback.preprocessors = [HideHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]
