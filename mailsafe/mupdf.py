"""PyMuPDF, imported without its machine-learning add-ons. Import it from here, never directly.

PyMuPDF 2.0 depends on ``pymupdf-layout`` and ``pymupdf4llm`` and imports both when it is
imported, if they are installed (pip installs them with it). Importing them loads onnxruntime,
numpy and networkx and builds three ONNX inference sessions for a page-layout model: measured
here, 0.6 s of CPU, about 90 MB of memory and five extra threads in every process that imports
PyMuPDF, for ``Page.get_layout()`` and ``to_markdown()``, which we never call. Those processes
are the render workers, which read hostile mail and are restarted after every crash or limit
kill, and the agents. So the two add-ons are marked as absent before PyMuPDF is imported (a
``None`` entry in ``sys.modules`` makes their import fail, which PyMuPDF handles as "not
installed"): the workers start in about 0.1 s, and no ML runtime is loaded beside hostile input.

The marks are set with ``setdefault`` only: a process that imported the add-ons on purpose
before this module keeps them. PyMuPDF ships no type hints; it is typed ``Any`` here, at the
one boundary.
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["OPTIONAL_ADDONS", "pymupdf"]

# Imported by PyMuPDF 2.0 at import time when installed; used only by APIs we do not call.
OPTIONAL_ADDONS = ("pymupdf.layout", "pymupdf4llm")

for _name in OPTIONAL_ADDONS:
    sys.modules.setdefault(_name, None)  # type: ignore[arg-type]

import pymupdf as _pymupdf  # noqa: E402 - must follow the marks above

pymupdf: Any = _pymupdf
# Without the add-on, PyMuPDF 2.0 may print a hint recommending it (from find_tables); a print
# on a render worker's stdout would land in its reply pipe.
getattr(pymupdf, "no_recommend_layout", lambda: None)()
