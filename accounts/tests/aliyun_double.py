"""A local stand-in for Alibaba Cloud's Dysmsapi that checks requests as the real one does:
required parameters, HMAC-SHA1 signature, fresh timestamp, unused nonce, known template."""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from accounts.sms import aliyun_signature

REQUIRED = [
    "AccessKeyId",
    "Action",
    "Format",
    "PhoneNumbers",
    "SignName",
    "SignatureMethod",
    "SignatureNonce",
    "SignatureVersion",
    "TemplateCode",
    "Timestamp",
    "Version",
    "Signature",
]


class AliyunSmsDouble:
    def __init__(self, key_id: str, secret: str, template: str, fail_with: str | None = None):
        self.key_id, self.secret, self.template, self.fail_with = key_id, secret, template, fail_with
        self.sent: list[dict] = []
        self.rejected: list[str] = []
        self.request_lines: list[str] = []
        self._nonces: set[str] = set()
        double = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                double.request_lines.append(self.requestline)

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                params = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
                code = double.check(params)
                body = {"RequestId": "double", "Code": code, "Message": code}
                if code == "OK":
                    body["BizId"] = f"biz{len(double.sent)}"
                raw = json.dumps(body).encode()
                self.send_response(200 if code == "OK" else 400)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/"

    def check(self, params: dict[str, str]) -> str:
        missing = [k for k in REQUIRED if not params.get(k)]
        if missing:
            code = "MissingParameter"
        elif params["AccessKeyId"] != self.key_id:
            code = "InvalidAccessKeyId.NotFound"
        elif (
            aliyun_signature({k: v for k, v in params.items() if k != "Signature"}, self.secret) != params["Signature"]
        ):
            code = "SignatureDoesNotMatch"
        elif params["SignatureNonce"] in self._nonces:
            code = "SignatureNonceUsed"
        elif (
            abs(
                (
                    dt.datetime.now(dt.UTC)
                    - dt.datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)
                ).total_seconds()
            )
            > 900
        ):
            code = "InvalidTimeStamp.Expired"
        elif params["TemplateCode"] != self.template:
            code = "isv.SMS_TEMPLATE_ILLEGAL"
        elif self.fail_with:
            code = self.fail_with
        else:
            code = "OK"
        if code == "OK":
            self._nonces.add(params["SignatureNonce"])
            self.sent.append({"phone": params["PhoneNumbers"], "param": json.loads(params.get("TemplateParam", "{}"))})
        else:
            self.rejected.append(code)
        return code

    def __enter__(self):
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
