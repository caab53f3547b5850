"""Every runtime dependency in pyproject.toml is imported by product code, and nothing else is.

A declared dependency nobody imports is weight an offline installation carries for nothing (and
a licence to review for nothing); an import of something undeclared works on a developer's
machine and fails on a fresh one.
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

from tests.test_layering import OURS, ROOT, all_imports, modules_of

# distribution name -> the top-level module it provides, where the two differ
MODULE_OF = {
    "pillow": "PIL",
    "pymupdf": "pymupdf",
    "msgpack": "msgpack",
    "argon2-cffi": "argon2",
    "python-multipart": "python_multipart",
    "dkimpy": "dkim",
    "dnspython": "dns",
    "pyspf": "spf",
    "prometheus-client": "prometheus_client",
}


# extras that are part of the product (the rest, dev and bench, are for developers)
PRODUCT_EXTRAS = ("chromium",)


def declared() -> dict[str, str]:
    """Runtime dependency (required, or in a product extra) -> its module."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    specs = list(project["dependencies"])
    for extra in PRODUCT_EXTRAS:
        specs += project["optional-dependencies"][extra]
    names = [re.split(r"[<>=!~;\[ ]", spec, maxsplit=1)[0] for spec in specs]
    return {name: MODULE_OF.get(name, name.replace("-", "_")) for name in names}


def imported_top_level() -> set[str]:
    return {
        name.split(".")[0]
        for package in sorted(OURS)
        for path in modules_of(package)
        for name in all_imports(path)
    }


def test_every_declared_dependency_is_imported() -> None:
    used = imported_top_level()
    unused = sorted(name for name, module in declared().items() if module not in used)
    assert unused == []


def test_every_third_party_import_is_declared() -> None:
    stdlib = set(sys.stdlib_module_names)
    provided = set(declared().values())
    undeclared = sorted(
        name
        for name in imported_top_level()
        if name not in stdlib and name not in OURS and name not in provided
    )
    assert undeclared == []


def test_the_check_sees_an_unused_dependency() -> None:
    assert "aiosmtplib" not in declared()  # dropped: declared, never imported
    assert declared()["python-multipart"] == "python_multipart"
    assert "tomllib" not in imported_top_level() or "tomllib" in sys.stdlib_module_names


def test_test_only_libraries_are_not_runtime_dependencies() -> None:
    assert "python-docx" not in declared()
    assert not any(Path(p).name == "docx" for p in imported_top_level())
