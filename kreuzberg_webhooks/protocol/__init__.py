"""The protocol, sans I/O: signatures, the replay window, the body limit, JSON
decoding, per-project secrets, the dedupe key, headers, and the
:class:`~kreuzberg_webhooks.protocol.verify.Verifier` that puts them together
(bytes, headers and a clock in; an event or an error out).

Standard library only. The public names are exported from the package root
(``from kreuzberg_webhooks import Verifier``).
"""
