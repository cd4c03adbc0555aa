"""A fake of the national population database's identity services: a real SOAP 1.1 server over HTTP.

* ``GET /dancu?wsdl`` the WSDL the population database publishes (address rewritten to this server),
  ``GET /dancu.xsd`` its schema. The mock keeps its own copy in ``wsdl/``, apart from the adapter's.
* ``POST /dancu`` SOAP requests ``XacMinhThongTinNhanThan`` (answers the citizen's record, or an
  empty ``CongdanCollection``) and ``XacThucThongTinCongDan`` (answers ``TonTai``).

The citizens are fake (``citizens.json``: every ID number starts with 000, no province's code).
Requests are parsed with a hardened lxml parser: a DTD or entity in a request is a SOAP fault.

Fault knobs (``POST /_mock/faults`` JSON, ``DELETE`` resets; applied in this order):

* ``latency_ms``: every call waits this long first;
* ``hang_next`` (count): the call sleeps ``hang_seconds`` (default 30) before answering - a timeout;
* ``throttle_next`` (count): HTTP 429 with ``Retry-After: retry_after`` (default 1), like the gateway;
* ``http_error_next`` (count): HTTP ``status`` (default 503) with an HTML error page;
* ``fault_next`` (count): a SOAP fault ``fault_code`` (``soap:Server`` default, or ``soap:Client``)
  with ``fault_string``;
* ``evil_next`` (count): the answer carries ``evil`` = ``billion_laughs`` (nested entities) or
  ``external_entity`` (an entity reading ``file:///etc/passwd``);
* ``garbage_next`` (count): HTTP 200 with a body that is not XML.

``GET /_mock/calls`` lists the calls received (operation, SoDinhDanh, MaCanBo, MaDVC, outcome);
``DELETE /_mock/calls`` forgets them. ``MaTichHop`` must equal the server's integration code.
"""

from __future__ import annotations

import asyncio
import json
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

from fastapi import FastAPI, Request
from fastapi.responses import PlainTextResponse, Response
from lxml import etree

from mocks._controls import add_call_log, add_health, add_loose_fault_knobs, use_one

__all__ = ["DEFAULT_INTEGRATION_CODE", "create_app"]

NS = "http://www.mic.gov.vn/dancu/1.0"
SOAP_NS = "http://schemas.xmlsoap.org/soap/envelope/"
DEFAULT_INTEGRATION_CODE = "LGSP-MOCK-TICHHOP"
_WSDL_DIR = Path(__file__).resolve().parent / "wsdl"
_ADDRESS_FIELDS = ("NoiDangKyKhaiSinh", "QueQuan", "ThuongTru", "NoiOHienTai")
_COUNTED_FAULTS = ("hang_next", "throttle_next", "http_error_next", "fault_next", "evil_next", "garbage_next")


def _parser() -> etree.XMLParser:
    """No entity expansion, no network, no DTD loading, no huge trees."""
    return etree.XMLParser(
        resolve_entities=False, no_network=True, huge_tree=False, load_dtd=False, dtd_validation=False
    )


class _ClientFaultError(Exception):
    pass


@dataclass
class _State:
    citizens: dict[str, dict[str, Any]]
    integration_code: str
    faults: dict[str, Any] = field(default_factory=dict)
    calls: list[dict[str, Any]] = field(default_factory=list)

    def take(self, knob: str) -> bool:
        """Use one of a counted fault; True when it applies to this call."""
        return use_one(self.faults, knob)


def load_citizens(path: Path | None = None) -> dict[str, dict[str, Any]]:
    if path is None:
        text = resources.files("mocks.population").joinpath("citizens.json").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    citizens = {}
    for item in json.loads(text)["citizens"]:
        if item.pop("_nfd", False):  # stored decomposed, as some older systems do
            item["HoVaTen"] = {k: unicodedata.normalize("NFD", v) for k, v in item["HoVaTen"].items()}
        citizens[item["SoDinhDanh"]] = item
    return citizens


def _nfc_fold(value: str) -> str:
    return " ".join(unicodedata.normalize("NFC", value).casefold().split())


def _full_name(citizen: dict[str, Any]) -> str:
    name = citizen["HoVaTen"]
    return " ".join(part for part in (name["Ho"], name.get("ChuDem", ""), name["Ten"]) if part)


def _element(tag: str, value: Any) -> str:
    if isinstance(value, dict):
        inner = "".join(_element(k, v) for k, v in value.items() if v not in (None, "") or k == "ChuDem")
        return f"<dc:{tag}>{inner}</dc:{tag}>"
    return f"<dc:{tag}>{escape(str(value))}</dc:{tag}>"


def _citizen_xml(citizen: dict[str, Any]) -> str:
    order = ["HoVaTen", "SoDinhDanh", "SoCMND", "NgayThangNamSinh", "GioiTinh", "DanToc", "TonGiao", "QuocTich"]
    parts = [_element(key, citizen[key]) for key in order if citizen.get(key)]
    parts += [_element(key, citizen[key]) for key in _ADDRESS_FIELDS if citizen.get(key)]
    return f"<dc:CongDan>{''.join(parts)}</dc:CongDan>"


def _envelope(body: str, prolog: str = "") -> str:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>{prolog}'
        f'<soap:Envelope xmlns:soap="{SOAP_NS}" xmlns:dc="{NS}"><soap:Body>{body}</soap:Body></soap:Envelope>'
    )


def _fault(code: str, message: str, status: int = 500) -> Response:
    body = f"<soap:Fault><faultcode>{escape(code)}</faultcode><faultstring>{escape(message)}</faultstring></soap:Fault>"
    return Response(_envelope(body), status_code=status, media_type="text/xml; charset=utf-8")


_BILLION_LAUGHS = (
    '<!DOCTYPE soap:Envelope [<!ENTITY lol "lol">'
    + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">' for i in range(1, 10))
    + "]>"
)
_EXTERNAL_ENTITY = '<!DOCTYPE soap:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'


def create_app(citizens_file: Path | None = None, *, integration_code: str = DEFAULT_INTEGRATION_CODE) -> FastAPI:
    state = _State(citizens=load_citizens(citizens_file), integration_code=integration_code)
    app = FastAPI(title="Mock population database (CSDLQG về dân cư)", docs_url=None, redoc_url=None)
    wsdl = (_WSDL_DIR / "dancu.wsdl").read_text(encoding="utf-8")
    xsd = (_WSDL_DIR / "dancu.xsd").read_text(encoding="utf-8")

    add_health(app)

    @app.get("/dancu")
    async def get_wsdl(request: Request) -> Response:
        base = str(request.base_url).rstrip("/")
        text = wsdl.replace("http://127.0.0.1:8082/dancu", f"{base}/dancu")
        return Response(text, media_type="text/xml; charset=utf-8")

    @app.get("/dancu.xsd")
    async def get_xsd() -> Response:
        return Response(xsd, media_type="text/xml; charset=utf-8")

    @app.post("/dancu")
    async def soap(request: Request) -> Response:
        faults = state.faults
        if faults.get("latency_ms"):
            await asyncio.sleep(int(faults["latency_ms"]) / 1000)
        raw = await request.body()
        call: dict[str, Any] = {"operation": None, "outcome": "pending"}
        state.calls.append(call)
        try:
            operation, fields = _parse_request(raw)
        except _ClientFaultError as exc:
            call["outcome"] = "client_fault"
            return _fault("soap:Client", str(exc))
        call.update(
            operation=operation,
            SoDinhDanh=fields.get("SoDinhDanh"),
            MaCanBo=fields.get("MaCanBo"),
            MaDVC=fields.get("MaDVC"),
        )
        if state.take("hang_next"):
            call["outcome"] = "hung"
            await asyncio.sleep(float(faults.get("hang_seconds", 30)))
        if state.take("throttle_next"):
            call["outcome"] = "throttled"
            retry_after = str(faults.get("retry_after", 1))
            body = '{"fault":{"code":900802,"message":"Message throttled out","description":"quota exceeded"}}'
            return Response(body, 429, {"Retry-After": retry_after}, media_type="application/json")
        if state.take("http_error_next"):
            status = int(faults.get("status", 503))
            call["outcome"] = f"http_{status}"
            return Response(f"<html><title>{status} Service Unavailable</title></html>", status, media_type="text/html")
        if state.take("fault_next"):
            call["outcome"] = "fault"
            code = str(faults.get("fault_code", "soap:Server"))
            return _fault(code, str(faults.get("fault_string", "Hệ thống CSDLQG về dân cư đang bận, thử lại sau.")))
        if state.take("garbage_next"):
            call["outcome"] = "garbage"
            return Response("<<<not xml at all", 200, media_type="text/xml")
        try:
            body = _answer(state, operation, fields)
        except _ClientFaultError as exc:
            call["outcome"] = "client_fault"
            return _fault("soap:Client", str(exc))
        call["outcome"] = "answered"
        prolog = ""
        if state.take("evil_next"):
            call["outcome"] = "evil"
            evil = faults.get("evil", "billion_laughs")
            if evil == "external_entity":
                prolog = _EXTERNAL_ENTITY
                body = body.replace("<dc:MaYeuCau>", "<dc:MaYeuCau>&xxe;", 1)
            else:
                prolog = _BILLION_LAUGHS
                body = body.replace("<dc:MaYeuCau>", "<dc:MaYeuCau>&lol9;", 1)
        return Response(_envelope(body, prolog), media_type="text/xml; charset=utf-8")

    add_loose_fault_knobs(app, state.faults)
    add_call_log(app, calls=lambda: state.calls, forget=state.calls.clear, forgotten=lambda: PlainTextResponse("ok"))
    return app


def _parse_request(raw: bytes) -> tuple[str, dict[str, str]]:
    if b"<!DOCTYPE" in raw.upper() or b"<!ENTITY" in raw.upper():
        raise _ClientFaultError("Yêu cầu chứa DTD/ENTITY: không được chấp nhận (DTDs and entities are refused).")
    try:
        root = etree.fromstring(raw, parser=_parser())
    except etree.XMLSyntaxError as exc:
        raise _ClientFaultError(f"Yêu cầu không phải XML hợp lệ: {exc}") from exc
    body = root.find(f"{{{SOAP_NS}}}Body")
    if body is None or len(body) == 0:
        raise _ClientFaultError("Thiếu soap:Body.")
    operation_element = body[0]
    operation = etree.QName(operation_element).localname
    if etree.QName(operation_element).namespace != NS or operation not in (
        "XacMinhThongTinNhanThan",
        "XacThucThongTinCongDan",
    ):
        raise _ClientFaultError(f"Không có dịch vụ {operation}.")
    fields = {etree.QName(child).localname: (child.text or "").strip() for child in operation_element}
    return operation, fields


def _answer(state: _State, operation: str, fields: dict[str, str]) -> str:
    for required in ("MaYeuCau", "MaDVC", "MaTichHop", "MaDonVi", "MaCanBo", "SoDinhDanh"):
        if not fields.get(required):
            raise _ClientFaultError(f"Thiếu trường bắt buộc {required}.")
    if fields["MaTichHop"] != state.integration_code:
        raise _ClientFaultError("MaTichHop không hợp lệ: hệ thống chưa được cấp quyền khai thác.")
    number = fields["SoDinhDanh"]
    if len(number) != 12 or not number.isdigit():
        raise _ClientFaultError("SoDinhDanh không hợp lệ (phải gồm 12 chữ số).")
    citizen = state.citizens.get(number)
    name = fields.get("HoVaTen")
    if citizen is not None and name and _nfc_fold(name) != _nfc_fold(_full_name(citizen)):
        citizen = None
    if (
        citizen is not None
        and fields.get("NgayThangNamSinh")
        and fields["NgayThangNamSinh"] != citizen["NgayThangNamSinh"]
    ):
        citizen = None
    request_id = _element("MaYeuCau", fields["MaYeuCau"])
    if operation == "XacThucThongTinCongDan":
        exists = citizen is not None and bool(fields.get("HoVaTen")) and bool(fields.get("NgayThangNamSinh"))
        return (
            f"<dc:XacThucThongTinCongDanResponse>{request_id}"
            f"<dc:TonTai>{str(exists).lower()}</dc:TonTai></dc:XacThucThongTinCongDanResponse>"
        )
    collection = _citizen_xml(citizen) if citizen is not None else ""
    return (
        f"<dc:XacMinhThongTinNhanThanResponse>{request_id}"
        f"<dc:CongdanCollection>{collection}</dc:CongdanCollection></dc:XacMinhThongTinNhanThanResponse>"
    )
