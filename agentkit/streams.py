"""Stream ids of several outer agents (issue 23; decision records D74, D75).

One outer agent and one inner agent talk on the pair ``inbound`` / ``outbound``. Each further
outer agent has an id of its own: it publishes on stream ``ID``, reads stream ``ID-out``, and
its audit events are kept inside under agent ``outer-ID``. Both agents derive these names here,
so the two configs only have to agree on the id.
"""

from __future__ import annotations

import re
from typing import Annotated, Final

from pydantic import AfterValidator

__all__ = [
    "PAIR_INBOUND",
    "PAIR_OUTBOUND",
    "StreamId",
    "check_stream_id",
    "outbound_stream",
    "outer_agent_name",
]

PAIR_INBOUND: Final = "inbound"  # the stream of the one outer agent of a pair
PAIR_OUTBOUND: Final = "outbound"
# Ten characters: "outer-" + id stays within the audit log's 16-character agent names, and
# "-out" within the protocol's stream ids.
MAX_ID_LEN: Final = 10
_ID = re.compile(r"[a-z0-9][a-z0-9-]{0,9}")


def check_stream_id(value: str) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError(f"{value!r} is not a stream id: 1-{MAX_ID_LEN} of [a-z0-9-], "
                         "the first a letter or digit")  # fmt: skip
    return value


StreamId = Annotated[str, AfterValidator(check_stream_id)]


def outbound_stream(stream_id: str) -> str:
    """The stream approved mail for this outer agent travels on."""
    return PAIR_OUTBOUND if stream_id == PAIR_INBOUND else f"{stream_id}-out"


def outer_agent_name(stream_id: str) -> str:
    """The agent name this outer agent's events are imported under inside."""
    return "outer" if stream_id == PAIR_INBOUND else f"outer-{stream_id}"
