"""Import a framework for an adapter, or say which pip extra provides it."""

from __future__ import annotations

import importlib
from types import ModuleType

__all__ = ["require"]


def require(module_name: str, extra: str) -> ModuleType:
    """Import ``module_name``; if it is not installed, raise :class:`ImportError` naming the extra.

    Only a missing ``module_name`` (or one of its parent packages) is translated:
    an ImportError raised from *inside* an installed framework is a real bug in
    the environment and propagates unchanged, so it is not hidden behind advice
    to install something that is already there.
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        missing = exc.name or ""
        if missing != module_name and not module_name.startswith(missing + "."):
            raise
        raise ImportError(
            f"{module_name!r} is not installed; this adapter needs it. "
            f'Install it with: pip install "kreuzberg-webhooks[{extra}]"',
            name=module_name,
        ) from exc
