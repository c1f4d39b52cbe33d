"""Reading a request body under a size limit, chunk by chunk, before it is buffered whole."""

from __future__ import annotations

from ..exceptions import PayloadTooLarge

__all__ = ["DEFAULT_MAX_BODY_SIZE", "BodyReader"]

#: Job documents carry the extracted text, so the default is generous.
DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024


class BodyReader:
    """Accumulates a request body chunk by chunk and stops at the size limit.

    Adapters feed it as they read, so an oversized body is refused before it
    is buffered whole::

        reader = verifier.body_reader(headers.get("content-length"))
        for chunk in stream:
            reader.feed(chunk)        # raises PayloadTooLarge past the limit
        body = reader.body()
    """

    __slots__ = ("_chunks", "_limit", "_size")

    def __init__(self, limit: int, content_length: str | None = None) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        if content_length is not None:
            # A declared length over the limit is refused before reading anything.
            # A malformed one is left to the server: the body is still counted.
            value = content_length.strip()
            if value.isdigit() and value.isascii() and int(value) > limit:
                raise PayloadTooLarge()

    def feed(self, chunk: bytes) -> None:
        """Add a chunk; raise :class:`PayloadTooLarge` once the total passes the limit."""
        self._size += len(chunk)
        if self._size > self._limit:
            raise PayloadTooLarge()
        if chunk:
            self._chunks.append(chunk)

    def body(self) -> bytes:
        """The whole body read so far."""
        body = b"".join(self._chunks)
        # Keep the joined body instead of its parts: the reader lives as long as the
        # request, and two copies of a 50 MiB document would both stay alive.
        self._chunks = [body]
        return body
