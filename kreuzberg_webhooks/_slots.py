"""Fast construction of the frozen, slotted dataclasses built on every delivery."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["slot_setter"]


def slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The setter of *cls*'s slot *name*.

    A frozen dataclass's ``__init__`` stores each field through
    ``object.__setattr__``; the slot's own setter stores the same value for a
    third of the cost. Only for classes without ``__post_init__``.
    """
    setter: Callable[[Any, Any], None] = cls.__dict__[name].__set__
    return setter
