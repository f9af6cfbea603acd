"""A server-sent events parser that follows the WHATWG rules, to read streams as a browser would.

Lines end in CRLF, LF or CR; `field: value` strips one space after the colon; `data` lines of one event
are joined with LF; a blank line dispatches the event (none if it has no data); a line starting with
`:` is a comment. Comments and field names are recorded so tests can check what the server sent.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field


@dataclass
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None


@dataclass
class SSEParser:
    comments: list[str] = field(default_factory=list)
    fields: set[str] = field(default_factory=set)
    _buffer: str = ""
    _data: list[str] = field(default_factory=list)
    _event: str = ""
    _id: str | None = None

    def events(self, chunks: Iterable[str]) -> Iterator[SSEEvent]:
        """Events from text chunks split anywhere (even between the CR and LF of a CRLF)."""
        for chunk in chunks:
            self._buffer += chunk
            yield from self._lines(final=False)
        yield from self._lines(final=True)

    def _lines(self, *, final: bool) -> Iterator[SSEEvent]:
        while True:
            cut = _line_end(self._buffer, final)
            if cut is None:
                return
            end, skip = cut
            line, self._buffer = self._buffer[:end], self._buffer[end + skip :]
            event = self._line(line)
            if event is not None:
                yield event

    def _line(self, line: str) -> SSEEvent | None:
        if line == "":
            event = None
            if self._data:
                event = SSEEvent("\n".join(self._data), self._event or "message", self._id)
            self._data, self._event = [], ""
            return event
        if line.startswith(":"):
            self.comments.append(line[1:].removeprefix(" "))
            return None
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        self.fields.add(name)
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        return None


def _line_end(buffer: str, final: bool) -> tuple[int, int] | None:
    """(index of the line end, its length), or None until a whole line is buffered."""
    for index, char in enumerate(buffer):
        if char == "\n":
            return index, 1
        if char == "\r":
            if index + 1 < len(buffer):
                return index, 2 if buffer[index + 1] == "\n" else 1
            return (index, 1) if final else None  # a CR at the end may be half of a CRLF
    return None
