"""HTTP header names and values: a header name is checked when it is given, a value is
found whatever the case of the mapping's keys."""

from __future__ import annotations

import re
from abc import abstractmethod
from collections.abc import Mapping
from typing import Any

from ..exceptions import ConfigurationError

__all__ = ["HeaderLookup", "find_header", "header_name", "header_value"]

# RFC 9110 §5.1: a field name is a token.
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def header_name(value: object, name: str = "the signature header name") -> str:
    """*value* if it is a valid HTTP field name (an RFC 9110 token: ASCII, no spaces, no colon)."""
    if not isinstance(value, str) or not _TOKEN.fullmatch(value):
        raise ConfigurationError(
            f"{name} must be an HTTP header name (letters, digits and -_.!#$%&'*+^`|~), got {value!r}"
        )
    return value


def header_value(headers: Mapping[str, str], name: str) -> str | None:
    """The value of header *name* in any mapping of headers, whatever the case of its keys."""
    return find_header(headers, name, name.lower())


def find_header(headers: Mapping[str, str], name: str, lower: str) -> str | None:
    value = headers.get(name)
    if value is None:
        value = headers.get(lower)
        if value is None:
            for key, candidate in headers.items():
                if key.lower() == lower:
                    return candidate
    return value


class HeaderLookup(Mapping[str, str]):
    """A read-only mapping of a request's headers that finds one name without decoding the others.

    The adapters' views of a server's raw headers (an ASGI scope's list, Django's
    ``request.META``) define :meth:`get`; ``headers[name]`` and ``name in headers``
    are answered through it.
    """

    __slots__ = ()

    @abstractmethod
    def get(self, key: str, default: Any = None) -> Any:
        """The header's value, or *default*: ``Mapping.get`` without a ``KeyError``."""

    def __getitem__(self, key: str) -> str:
        value: str | None = self.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None
