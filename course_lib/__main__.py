"""``python -m course_lib``: train and sample from the command line (see ``course_lib.cli``)."""
import sys

from .cli import main

sys.exit(main())
