"""The hot path's two tricks, kept because benchmark row 1 (``verify``) needs them, each held equal
to the standard library by a property test in ``tests/test_hot_path.py``.

- :func:`slot_setter`: a frozen, slotted dataclass built on every delivery
  (``JobEvent``) is filled through its slots' setters instead of
  ``object.__setattr__`` — a third of the cost. Only for classes without a
  ``__post_init__``; the test builds every field both ways and compares.
- :func:`parse_uuid`: the value ``uuid.UUID(text)`` computes, stored in the
  UUID's two slots directly (as CPython 3.14's own ``uuid4`` does); ``UUID``'s
  general constructor was a fifth of a delivery's cost. :func:`project_uuid`
  remembers the few project ids an endpoint sees (a bounded LRU cache). A job
  id is a string (``events.canonical_job_id``): one already spelled as a
  canonical UUID is kept without building a ``UUID`` at all, and only another
  spelling goes through :func:`parse_uuid` to be rewritten.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any
from uuid import UUID, SafeUUID

__all__ = ["parse_uuid", "project_uuid", "slot_setter"]


def slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The setter of *cls*'s slot *name*."""
    setter: Callable[[Any, Any], None] = cls.__dict__[name].__set__
    return setter


_set_int = slot_setter(UUID, "int")
_set_is_safe = slot_setter(UUID, "is_safe")
# What UUID(text) records. Looked up once: reading an enum member off its
# class costs a quarter of a microsecond, a third of this whole function.
_UNKNOWN_SAFETY = SafeUUID.unknown


def parse_uuid(text: str) -> UUID | None:
    """``uuid.UUID(text)``, or ``None`` where it raises ``ValueError``."""
    # Exactly what UUID(text) does to the string. No length cut-off: UUID
    # accepts any number of hyphens and braces.
    digits = text.replace("urn:", "").replace("uuid:", "").strip("{}").replace("-", "")
    if len(digits) != 32:
        return None
    try:
        number = int(digits, 16)
    except ValueError:
        return None
    uuid = UUID.__new__(UUID)
    _set_int(uuid, number)
    _set_is_safe(uuid, _UNKNOWN_SAFETY)
    return uuid


#: ``parse_uuid`` for the ``project_id`` of every delivery: an endpoint sees one
#: project, or a few, so a small LRU cache answers with a dict look-up. UUIDs are
#: immutable, so handing out the same object is safe.
project_uuid = functools.lru_cache(maxsize=64)(parse_uuid)
