"""pytest set-up shared by the tests and the docstring examples (``--doctest-modules``)."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
