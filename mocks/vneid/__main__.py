"""``python -m mocks.vneid --host 127.0.0.1 --port 8086`` runs the fake VNeID provider."""

from __future__ import annotations

import argparse

import uvicorn

from mocks.vneid.app import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mocks.vneid", description="Fake VNeID OIDC provider.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8086)
    parser.add_argument("--issuer", default=None, help="issuer URL (default: the URL it is reached at)")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument("--redirect-uri", action="append", default=None, help="allowed redirect URI prefix")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    app = create_app(
        issuer=args.issuer,
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uris=args.redirect_uri,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
