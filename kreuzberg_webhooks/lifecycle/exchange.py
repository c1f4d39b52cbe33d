"""One request at the webhook path, before any I/O is done: the method, the headers, the body as it arrives.

An :class:`Exchange` knows nothing of the receiver: it is given the request's
method and headers, the body size limit, who observes the deliveries and,
optionally, the verifier. An adapter feeds it the body's chunks as it reads
them, and sends :attr:`Exchange.answer` as soon as there is one (405 for a
method other than ``POST``, 413 the moment the body passes the limit);
otherwise the complete body goes on to the lifecycle::

    exchange = receiver.exchange(method, headers)
    for chunk in stream:
        if not exchange.feed(chunk):
            break                      # the answer is decided: stop reading
    if exchange.answer is not None:
        send(exchange.answer)
    else:
        send(receiver.handle(exchange.delivery, headers))

Given the verifier, a large body is streamed (``kreuzberg_webhooks.protocol.body``):
its HMACs advance as it arrives and it is kept once, as the chunks it came in.
:attr:`Exchange.delivery` hands it to the verifier as it is, which decodes the
JSON from those chunks; without *keep_bytes* (no inbox: nothing needs the bytes
after) it frees each chunk as it decodes it. :attr:`Exchange.body` gives the
exact bytes (a guard replays them), joined once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from ..exceptions import MethodNotAllowed, PayloadTooLarge, WebhookError
from ..protocol.body import BodyReader, RequestBody
from ..protocol.headers import header_value
from .outcome import Observer, Outcome, conclude

if TYPE_CHECKING:
    from ..protocol.verify import Verifier

__all__ = ["Exchange"]


class Exchange:
    """The request side of one delivery: decides 405 and 413, and collects the body under *limit* bytes.

    A refusal is logged and reported to *observers* like every other answer.
    With *verifier*, a large body is streamed: see the module's documentation;
    *keep_bytes* says whether its bytes are wanted after it is verified.
    """

    __slots__ = ("_observers", "_reader", "answer", "headers")

    def __init__(
        self,
        method: str,
        headers: Mapping[str, str],
        limit: int,
        observers: Sequence[Observer] = (),
        verifier: Verifier | None = None,
        keep_bytes: bool = True,
    ) -> None:
        self._observers = observers
        self.headers = headers
        #: The answer to send now, without going further; ``None`` while the request may go on.
        self.answer: Outcome | None = None
        self._reader: BodyReader | None = None
        if method != "POST":
            self._refuse(MethodNotAllowed())
            return
        try:
            self._reader = BodyReader(
                limit, header_value(headers, "content-length"), verifier, headers, keep_bytes=keep_bytes
            )
        except PayloadTooLarge as error:
            self._refuse(error)

    @property
    def reading(self) -> bool:
        """Whether the body is still wanted."""
        return self.answer is None

    def feed(self, chunk: bytes) -> bool:
        """Add a chunk of the body; ``False`` once the answer is decided (stop reading)."""
        if self._reader is None:
            return False
        try:
            self._reader.feed(chunk)
        except PayloadTooLarge as error:
            self._refuse(error)
            return False
        return True

    @property
    def body(self) -> bytes:
        """The exact bytes of the body read so far."""
        return b"" if self._reader is None else self._reader.body()

    @property
    def delivery(self) -> RequestBody:
        """The complete body as the verifier takes it: bytes, or a streamed body kept as its chunks."""
        return b"" if self._reader is None else self._reader.delivery()

    def _refuse(self, error: WebhookError) -> None:
        self._reader = None
        self.answer = conclude(Outcome.from_error(error), "endpoint", self._observers)
