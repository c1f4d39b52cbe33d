"""Reading a request body under a size limit, chunk by chunk, and keeping it once.

A small body (every event) is collected and joined, as it always was. A large
one (a job document carrying its text) is streamed once it reaches
:data:`STREAM_FROM` bytes, when a :class:`~kreuzberg_webhooks.protocol.signing.StreamingMac`
could be started for it: its HMACs advance as the chunks arrive, and the
chunks are kept as they came, never joined. Once the signature is checked the
JSON is decoded straight from them (:func:`~kreuzberg_webhooks.protocol.decoding.decode_json_chunks`):
when nothing will ask for the bytes again (no inbox), each chunk is dropped as
soon as it is decoded, so the body and the document it becomes are never held
whole together; when something will (an inbox stores them), they are joined
once and the document is decoded from that one copy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

from ..exceptions import PayloadTooLarge
from .decoding import decode_json_chunks

if TYPE_CHECKING:
    from .signing import StreamingMac

__all__ = ["DEFAULT_MAX_BODY_SIZE", "STREAM_FROM", "BodyReader", "RequestBody", "StreamedBody"]

#: Job documents carry the extracted text, so the default is generous.
DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024
#: From this size on a body is streamed (HMAC per chunk, kept as its chunks);
#: below it, it is joined and checked whole, which is faster for the small events.
STREAM_FROM = 256 * 1024
#: How much of a streamed body the JSON decoder reads at a time: small chunks are joined up to it,
#: a joined body is read in slices of it.
DECODE_WINDOW = 64 * 1024


class StreamedBody:
    """A body read by streaming: its chunks, kept as they came, with the HMACs they advanced (:attr:`mac`).

    :meth:`bytes` gives the exact body (joined once, and kept joined);
    :meth:`decode` decodes it as JSON from the chunks.

    :param keep: whether the bytes must stay available after :meth:`decode`
        (an inbox stores them); else a releasing decode frees them as it goes.
    """

    __slots__ = ("_chunks", "keep", "mac", "size")

    def __init__(self, size: int, mac: StreamingMac, chunks: list[bytes], keep: bool = True) -> None:
        self.size = size
        self.mac = mac
        self.keep = keep
        self._chunks: list[bytes] | None = chunks

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"<StreamedBody {self.size} bytes>"

    @property
    def released(self) -> bool:
        """Whether a releasing :meth:`decode` dropped the bytes (:meth:`bytes` cannot give them back)."""
        return self._chunks is None

    def bytes(self) -> bytes:
        """The exact body that was signed; kept joined from now on."""
        if self._chunks is None:
            raise RuntimeError("this streamed body was released as it was decoded: its bytes are gone")
        if len(self._chunks) != 1:
            self._chunks = [b"".join(self._chunks)]
        return self._chunks[0]

    def decode(self, release: bool = False) -> Any:
        """The body decoded as JSON, as :func:`~kreuzberg_webhooks.protocol.decoding.decode_json` decodes it.

        With *release*, unless the body is to be kept (:attr:`keep`), each chunk is
        dropped once it is decoded and the body is :attr:`released`. Otherwise the
        bytes are joined first (the one copy an inbox stores) and decoded a slice at a time.
        """
        chunks = self._chunks
        if chunks is None:
            raise RuntimeError("this streamed body was released as it was decoded: its bytes are gone")
        if release and not self.keep and len(chunks) > 1:
            self._chunks = None
            chunks.reverse()  # popped from the end: each chunk is freed once the decoder has read it
            return decode_json_chunks(_Popped(chunks))
        del chunks  # the joined bytes replace the chunks: nothing else may hold them
        body = self.bytes()
        return decode_json_chunks(body[start : start + DECODE_WINDOW] for start in range(0, len(body), DECODE_WINDOW))


class _Popped:
    """The chunks (given in reverse order) popped one at a time, small ones joined up to :data:`DECODE_WINDOW`.

    An iterator rather than a generator: a generator would hold the chunk it
    yielded until asked for the next, while the decoder reads the next window.
    """

    __slots__ = ("_chunks",)

    def __init__(self, chunks: list[bytes]) -> None:
        self._chunks = chunks

    def __iter__(self) -> _Popped:
        return self

    def __next__(self) -> bytes:
        chunks = self._chunks
        if not chunks:
            raise StopIteration
        chunk = chunks.pop()
        if len(chunk) >= DECODE_WINDOW or not chunks or len(chunks[-1]) >= DECODE_WINDOW:
            return chunk
        parts = [chunk]
        size = len(chunk)
        while chunks and size < DECODE_WINDOW:
            parts.append(chunks.pop())
            size += len(parts[-1])
        return b"".join(parts)


#: A body as the verifier takes it: bytes, or a :class:`StreamedBody` read by streaming.
RequestBody: TypeAlias = "bytes | StreamedBody"


class MacSource(Protocol):
    """What starts the HMACs of a streamed body: a :class:`~kreuzberg_webhooks.Verifier`."""

    def streaming_mac(self, headers: Mapping[str, str]) -> StreamingMac | None:
        """The HMACs to advance for a delivery with *headers*, or ``None`` when they cannot start before its body."""
        ...


class BodyReader:
    """Accumulates a request body chunk by chunk and stops at the size limit.

    Adapters feed it as they read, so an oversized body is refused before it
    is buffered whole::

        reader = verifier.body_reader(headers.get("content-length"))
        for chunk in stream:
            reader.feed(chunk)        # raises PayloadTooLarge past the limit
        body = reader.body()

    :param verifier: asked once the body reaches *stream_from* bytes
        (:data:`STREAM_FROM`) for the HMACs of a delivery with *headers*; a
        :class:`~kreuzberg_webhooks.protocol.signing.StreamingMac` it returns
        makes the reader stream (see :meth:`delivery`), ``None`` keeps collecting.
    :param keep_bytes: whether the exact bytes of a streamed body are wanted
        after it is decoded (an inbox stores them, a guard replays them): they
        are then kept (:attr:`StreamedBody.keep`); ``False`` lets the verifier
        free them as it decodes them.
    """

    __slots__ = (
        "_chunks",
        "_headers",
        "_keep_bytes",
        "_limit",
        "_mac",
        "_size",
        "_stream_from",
        "_streamed",
        "_verifier",
    )

    def __init__(
        self,
        limit: int,
        content_length: str | None = None,
        verifier: MacSource | None = None,
        headers: Mapping[str, str] | None = None,
        *,
        stream_from: int = STREAM_FROM,
        keep_bytes: bool = True,
    ) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self._verifier = verifier
        self._headers = headers
        self._stream_from = stream_from
        self._keep_bytes = keep_bytes
        self._mac: StreamingMac | None = None
        self._streamed: StreamedBody | None = None
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
        if not chunk:
            return
        self._chunks.append(chunk)
        if self._mac is not None:
            self._mac.update(chunk)
        elif self._verifier is not None and self._size >= self._stream_from:
            self._begin_streaming(self._verifier.streaming_mac(self._headers or {}))

    def _begin_streaming(self, mac: StreamingMac | None) -> None:
        self._verifier = None  # asked once
        if mac is None:
            return
        self._mac = mac
        for chunk in self._chunks:
            mac.update(chunk)

    def body(self) -> bytes:
        """The whole body read so far."""
        if self._mac is not None:
            return self._finish().bytes()
        body = b"".join(self._chunks)
        # Keep the joined body instead of its parts: the reader lives as long as the
        # request, and two copies of a 50 MiB document would both stay alive.
        self._chunks = [body]
        return body

    def delivery(self) -> RequestBody:
        """The complete body for the verifier: a :class:`StreamedBody` when it was streamed, else :meth:`body`.

        Call it once the body is complete.
        """
        if self._mac is not None:
            return self._finish()
        body = b"".join(self._chunks)
        self._chunks = [body]  # kept joined, as body() does
        return body

    def _finish(self) -> StreamedBody:
        assert self._mac is not None  # called only once streaming began
        if self._streamed is None:
            # The streamed body owns the chunks from now on: a releasing decode frees them.
            self._streamed = StreamedBody(self._size, self._mac, self._chunks, self._keep_bytes)
            self._chunks = []
        return self._streamed
