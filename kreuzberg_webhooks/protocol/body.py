"""Reading a request body under a size limit, chunk by chunk, and keeping it once.

A small body (every event) is collected and joined, as it always was. A large
one (a job document carrying its text) is streamed once it reaches
:data:`STREAM_FROM` bytes, when a :class:`~kreuzberg_webhooks.protocol.signing.StreamingMac`
could be started for it: its HMACs advance as the chunks arrive, and each
chunk is decoded as UTF-8 and dropped, so what is kept is the text the JSON
parser reads, never the bytes beside it. The exact bytes are given back on
demand (an inbox stores them; a guard replays them): re-encoding valid UTF-8
gives the bytes that were signed.
"""

from __future__ import annotations

import codecs
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, TypeAlias

from ..exceptions import PayloadTooLarge

if TYPE_CHECKING:
    from .signing import StreamingMac

__all__ = ["DEFAULT_MAX_BODY_SIZE", "STREAM_FROM", "BodyReader", "RequestBody", "StreamedBody"]

#: Job documents carry the extracted text, so the default is generous.
DEFAULT_MAX_BODY_SIZE = 64 * 1024 * 1024
#: From this size on a body is streamed (HMAC per chunk, kept as its decoded text);
#: below it, it is joined and checked whole, which is faster for the small events.
STREAM_FROM = 256 * 1024

_new_decoder = codecs.getincrementaldecoder("utf-8")


class StreamedBody:
    """A body read by streaming: kept once, with the HMACs its chunks advanced (:attr:`mac`).

    Kept as the text it decodes to when it is valid UTF-8 (the bytes were
    dropped chunk by chunk), else as its bytes. :meth:`bytes` gives the exact
    body either way; asked for once, the body is kept as bytes from then on.
    """

    __slots__ = ("_bytes", "_parts", "_text", "mac", "size")

    def __init__(self, size: int, mac: StreamingMac, text: list[str] | None, chunks: list[bytes] | None) -> None:
        self.size = size
        self.mac = mac
        self._parts = text
        self._text: str | None = None
        self._bytes: list[bytes] | None = chunks

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"<StreamedBody {self.size} bytes>"

    @property
    def text(self) -> str | None:
        """The body decoded as UTF-8; ``None`` when it is kept as bytes (not UTF-8, or asked for as bytes)."""
        if self._parts is not None:
            self._text = "".join(self._parts)
            self._parts = None
        return self._text

    def bytes(self) -> bytes:
        """The exact body that was signed; kept as bytes from now on (the text is dropped)."""
        if self._bytes is None:
            text = self.text
            assert text is not None
            self._bytes = [text.encode("utf-8")]  # valid UTF-8 decoded strictly: the same bytes again
            self._text = None
        elif len(self._bytes) != 1:
            self._bytes = [b"".join(self._bytes)]
        return self._bytes[0]


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
    """

    __slots__ = (
        "_chunks",
        "_decoder",
        "_headers",
        "_limit",
        "_mac",
        "_size",
        "_stream_from",
        "_streamed",
        "_text",
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
    ) -> None:
        self._limit = limit
        self._chunks: list[bytes] = []
        self._size = 0
        self._verifier = verifier
        self._headers = headers
        self._stream_from = stream_from
        # The streaming state (_decoder, _text, _streamed) is set when streaming begins:
        # a small body, every event, pays for none of it.
        self._mac: StreamingMac | None = None
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
        if self._mac is not None:
            self._mac.update(chunk)
            self._keep(chunk)
            return
        self._chunks.append(chunk)
        if self._verifier is not None and self._size >= self._stream_from:
            self._begin_streaming(self._verifier.streaming_mac(self._headers or {}))

    def _begin_streaming(self, mac: StreamingMac | None) -> None:
        self._verifier = None  # asked once
        if mac is None:
            return
        self._mac = mac
        self._decoder: codecs.IncrementalDecoder | None = _new_decoder()
        self._text: list[str] | None = []
        self._streamed: StreamedBody | None = None
        chunks, self._chunks = self._chunks, []
        for chunk in chunks:
            mac.update(chunk)
            self._keep(chunk)

    def _keep(self, chunk: bytes) -> None:
        """Keep a streamed chunk once: as its text while the body is valid UTF-8, else as bytes."""
        if self._decoder is None:
            self._chunks.append(chunk)
            return
        assert self._text is not None
        try:
            self._text.append(self._decoder.decode(chunk))
        except UnicodeDecodeError:
            self._keep_bytes(chunk)

    def _keep_bytes(self, chunk: bytes) -> None:
        # Not UTF-8 (the verifier will answer invalid_json once the signature is checked):
        # the bytes so far are the text's encoding plus what the decoder still held.
        assert self._decoder is not None
        assert self._text is not None
        pending = self._decoder.getstate()[0]
        self._chunks = ["".join(self._text).encode("utf-8"), pending, chunk]
        self._decoder = None
        self._text = None

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

        Call it once the body is complete: it ends the decoding.
        """
        if self._mac is not None:
            return self._finish()
        body = b"".join(self._chunks)
        self._chunks = [body]  # kept joined, as body() does
        return body

    def _finish(self) -> StreamedBody:
        assert self._mac is not None  # called only once streaming began
        if self._streamed is None:
            if self._decoder is not None:
                try:
                    tail = self._decoder.decode(b"", final=True)
                except UnicodeDecodeError:  # the body ends inside a character
                    self._keep_bytes(b"")
                else:
                    assert self._text is not None
                    if tail:
                        self._text.append(tail)
            self._streamed = StreamedBody(
                self._size, self._mac, self._text, None if self._text is not None else self._chunks
            )
            self._text = None
            self._chunks = []
            self._decoder = None
        return self._streamed
