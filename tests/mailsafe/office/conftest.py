"""One warm converter for the whole session: LibreOffice's start-up is paid once."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from mailsafe.office.converter import OfficeConverter


@pytest.fixture(scope="session")
def converter() -> Iterator[OfficeConverter]:
    with OfficeConverter() as warm:
        yield warm
