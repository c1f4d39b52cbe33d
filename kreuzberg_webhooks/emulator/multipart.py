"""Read a ``multipart/form-data`` body with the standard library's :mod:`email` parser."""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser

__all__ = ["FormError", "FormPart", "parse_form"]


class FormError(ValueError):
    """The body is not a readable ``multipart/form-data`` form."""


@dataclass(frozen=True, slots=True)
class FormPart:
    """One field of a form: its name, the file name when it is a file, and its bytes."""

    name: str
    filename: str | None
    content_type: str
    data: bytes


def parse_form(content_type: str, body: bytes) -> list[FormPart]:
    """The fields of a ``multipart/form-data`` *body* sent with *content_type* (which names the boundary)."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise FormError("expected multipart/form-data")
    try:
        header = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    except UnicodeEncodeError:
        raise FormError("the Content-Type header is not Latin-1") from None
    message = BytesParser(policy=policy.HTTP).parsebytes(header + body)
    if not isinstance(message, EmailMessage) or not message.is_multipart() or message.defects:
        raise FormError("the form has no parts or a malformed boundary")
    parts: list[FormPart] = []
    for part in message.iter_parts():
        if not isinstance(part, EmailMessage):
            continue
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str) or not name:
            raise FormError("a form part has no name")
        payload = part.get_payload(decode=True)
        data = payload if isinstance(payload, bytes) else b""
        parts.append(FormPart(name, part.get_filename(), part.get_content_type(), data))
    return parts
