"""``python -m mocks.payment --port 8083 --callback-url http://127.0.0.1:8080/v1/callbacks/payment``."""

from __future__ import annotations

import argparse

import uvicorn

from mocks.payment.app import DEFAULT_PARTNER_CODE, DEFAULT_SECRET, create_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mocks.payment", description="Fake payment platform.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8083)
    parser.add_argument("--partner-code", default=DEFAULT_PARTNER_CODE, help="MaDoiTac of the hub's account")
    parser.add_argument("--secret", default=DEFAULT_SECRET, help="the partner secret (use a real one nowhere)")
    parser.add_argument("--callback-url", default=None, help="where results are posted (the hub's callback)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    app = create_app(partner_code=args.partner_code, secret=args.secret, callback_url=args.callback_url)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
