"""``python -m mocks.national_portal --host 127.0.0.1 --port 8081`` runs the fake national portal."""

from __future__ import annotations

import argparse
from pathlib import Path

import uvicorn

from mocks.national_portal.app import create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m mocks.national_portal",
        description="Fake national public-services portal (Cổng DVCQG).",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--catalogue", type=Path, default=None, help="procedures.json (default: the sample one)")
    parser.add_argument("--client-id", default=None, help="only accept this client id at /oauth2/token")
    parser.add_argument("--client-secret", default=None, help="only accept this client secret at /oauth2/token")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    app = create_app(args.catalogue, client_id=args.client_id, client_secret=args.client_secret)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
