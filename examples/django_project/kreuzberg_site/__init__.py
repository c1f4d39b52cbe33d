"""A Django project that receives Kreuzberg Cloud webhooks (see settings.py)."""
