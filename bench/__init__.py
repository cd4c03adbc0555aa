"""Benchmarks of the hub against raw RabbitMQ, measured in the same run: ``python -m bench [--quick]``.

See ``bench/README.md``. Nothing here is imported by the hub.
"""

__all__: list[str] = []
