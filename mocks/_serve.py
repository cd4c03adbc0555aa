"""Run an ASGI app with uvicorn in a background thread, for tests and demos.

Usage::

    with serve_app(create_app()) as base_url:
        httpx.get(f"{base_url}/healthz")

The listening socket is bound before the server starts (port 0 picks a free port), so
there is no race between choosing a port and another process taking it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

__all__ = ["serve_app"]


@contextmanager
def serve_app(
    app: ASGIApp,
    host: str = "127.0.0.1",
    *,
    port: int = 0,
    log_level: str = "warning",
    startup_timeout: float = 10.0,
    shutdown_timeout: float = 5.0,
) -> Iterator[str]:
    """Serve ``app`` on ``host:port`` in a daemon thread; yield its base URL (no trailing slash).

    The server is stopped, and the thread joined, when the ``with`` block ends. Requests
    still running at that moment get ``shutdown_timeout`` seconds to finish.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    bound_port: int = sock.getsockname()[1]
    config = uvicorn.Config(
        app,
        host=host,
        port=bound_port,
        log_level=log_level,
        lifespan="off",
        timeout_graceful_shutdown=int(shutdown_timeout),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name=f"uvicorn-{bound_port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive():
            sock.close()
            raise RuntimeError(f"The test server on {host}:{bound_port} stopped while starting; see its log.")
        if time.monotonic() > deadline:
            server.should_exit = True
            thread.join(shutdown_timeout)
            sock.close()
            raise RuntimeError(f"The test server on {host}:{bound_port} did not start within {startup_timeout}s.")
        time.sleep(0.01)
    url_host = f"[{host}]" if family == socket.AF_INET6 else host
    try:
        yield f"http://{url_host}:{bound_port}"
    finally:
        server.should_exit = True
        thread.join(shutdown_timeout + 5)
        sock.close()
