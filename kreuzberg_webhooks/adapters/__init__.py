"""Thin adapters that expose the receiver core to web frameworks.

Each adapter lives in its own module and imports its framework only when that
module is imported, so ``import kreuzberg_webhooks`` never pulls one in:

- :mod:`kreuzberg_webhooks.adapters.asgi` — pure ASGI middleware (Starlette, FastAPI, any ASGI app)
- :mod:`kreuzberg_webhooks.adapters.fastapi` — a FastAPI dependency that gives a route the typed event
- :mod:`kreuzberg_webhooks.adapters.flask` — a view decorator and a Flask extension
- :mod:`kreuzberg_webhooks.adapters.wsgi` — werkzeug-based WSGI middleware
- Django: :mod:`kreuzberg_webhooks.django` — a view mixin, a URLconf include and a cache store (its old path
  ``kreuzberg_webhooks.adapters.django`` still works, deprecated)

Importing an adapter whose framework is not installed raises :class:`ImportError`
naming the pip extra to install.
"""
