"""URL converters shared by every blueprint."""

from __future__ import annotations

from typing import Any

from werkzeug.routing import IntegerConverter, Map

# Row ids are 32-bit INTEGER columns on PostgreSQL. A larger number in a URL cannot name a
# row, and looking it up fails inside the database (a 500), so such URLs simply do not
# match: 404, like any other id that names nothing.
MAX_ROW_ID = 2**31 - 1


class RowIdConverter(IntegerConverter):
    """`<int:...>` bounded to the ids the database can hold."""

    def __init__(self, map: Map, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("max", MAX_ROW_ID)
        super().__init__(map, *args, **kwargs)
