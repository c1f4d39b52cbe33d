"""The applications the HTTP benchmarks serve: ours, and the hand-written equivalent of each.

Every app answers ``POST /webhooks/kreuzberg`` and is configured with
:data:`benchmarks.deliveries.SECRET`.
"""
