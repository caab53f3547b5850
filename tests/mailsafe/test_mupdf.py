"""PyMuPDF without its ML add-ons: what a render worker really loads."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# What importing PyMuPDF 2.0 pulls in through the add-ons when they are not kept out.
ML_MODULES = ("onnxruntime", "pymupdf4llm", "pymupdf.layout", "numpy", "networkx")


def _loaded_after(code: str) -> dict[str, bool]:
    probe = f"{code}\nimport json, sys\nprint(json.dumps({{m: sys.modules.get(m) is not None for m in {ML_MODULES!r}}}))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                            timeout=120, check=True)  # fmt: skip
    loaded: dict[str, bool] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def test_a_render_worker_loads_no_ml_runtime() -> None:
    """The worker's imports (rendering, PDF text) load PyMuPDF, but no ONNX model or runtime."""
    loaded = _loaded_after(
        "import mailsafe.workers, mailsafe.render, mailsafe.extract.pdf\n"
        "from mailsafe.mupdf import pymupdf\n"
        "assert pymupdf.Story is not None"
    )
    assert loaded == dict.fromkeys(ML_MODULES, False)


def test_without_the_boundary_this_pymupdf_loads_them() -> None:
    """The test above checks something that would happen without mailsafe.mupdf: a plain
    ``import pymupdf`` of an installed PyMuPDF 2 with its add-ons loads the ML runtime."""
    assert _loaded_after("import pymupdf")["pymupdf4llm"] is _addons_installed()


def _addons_installed() -> bool:
    """From package metadata, without importing anything."""
    names = {"pymupdf4llm", "pymupdf-layout", "pymupdf_layout"}
    found = {d.metadata["Name"].lower() for d in metadata.distributions()} & names
    return bool(found) and int(metadata.version("pymupdf").split(".")[0]) >= 2


def test_a_tuned_render_process_reuses_its_page_buffers() -> None:
    """tune_allocator(): after the first mails, rendering another one takes (almost) no fresh
    pages from the kernel; with glibc's defaults each mail of the benchmark's newsletter
    (one 800x1145 page) faults in megabytes (~2300 pages). Different mails, as in real traffic:
    the same mail again and again lets glibc's own threshold settle on its sizes. The median
    mail counts: a one-time cost (a lazily built cache) on one mail is not what this is about."""
    code = """
import resource, sys
from mailsafe.workers import tune_allocator
tuned = tune_allocator() if sys.argv[1] == "tuned" else False
from mailsafe.render import RenderOptions, render_message
from tests.support.mailmaker import html_mail, newsletter_html
for number in range(3):
    render_message(html_mail(newsletter_html(number)), RenderOptions())
per_mail = []
for number in range(3, 10):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    render_message(html_mail(newsletter_html(number)), RenderOptions())
    per_mail.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(tuned, sorted(per_mail)[len(per_mail) // 2])
"""

    def faults(mode: str) -> tuple[str, int]:
        out = subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                             timeout=120, check=True, cwd=ROOT).stdout.split()  # fmt: skip
        return out[0], int(out[1])

    tuned, tuned_faults = faults("tuned")
    _, default_faults = faults("default")
    assert tuned == "True"  # glibc, as on every supported system
    assert tuned_faults < 100
    assert default_faults > 10 * max(tuned_faults, 1)
