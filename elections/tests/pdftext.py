"""Text out of the PDFs fpdf2 writes, for tests, with the standard library only.

fpdf2 embeds a font subset with 2-byte glyph codes and a ToUnicode CMap per font; page content
selects a font (`/F1 12 Tf`) and shows strings (`(...) Tj`). This reads exactly that: enough to
assert that a report says what it should, not a general PDF parser. (pdftotext, where installed,
is used beside it in the tests.)
"""

from __future__ import annotations

import re
import zlib

_OBJ = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.S)
_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)


def _stream(body: bytes) -> bytes:
    m = _STREAM.search(body)
    if m is None:
        return b""
    data = m.group(1)
    if b"/FlateDecode" in body[: m.start()]:
        data = zlib.decompress(data)
    return data


def _cmap(data: bytes) -> dict[int, str]:
    out: dict[int, str] = {}
    for block in re.findall(rb"beginbfchar(.*?)endbfchar", data, re.S):
        for src, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            out[int(src, 16)] = bytes.fromhex(dst.decode()).decode("utf-16-be")
    for block in re.findall(rb"beginbfrange(.*?)endbfrange", data, re.S):
        for lo, hi, dst in re.findall(rb"<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>\s*<([0-9A-Fa-f]+)>", block):
            start = int(dst, 16)
            for i, code in enumerate(range(int(lo, 16), int(hi, 16) + 1)):
                out[code] = chr(start + i)
    return out


def _unescape(raw: bytes) -> bytes:
    out = bytearray()
    i = 0
    while i < len(raw):
        c = raw[i]
        if c == 0x5C and i + 1 < len(raw):  # backslash
            n = raw[i + 1]
            simple = {ord("n"): 10, ord("r"): 13, ord("t"): 9, ord("b"): 8, ord("f"): 12}
            if n in simple:
                out.append(simple[n])
                i += 2
            elif 0x30 <= n <= 0x37:
                digits = re.match(rb"[0-7]{1,3}", raw[i + 1 : i + 4]).group(0)
                out.append(int(digits, 8) & 0xFF)
                i += 1 + len(digits)
            else:
                out.append(n)
                i += 2
        else:
            out.append(c)
            i += 1
    return bytes(out)


def extract_text(pdf: bytes) -> str:
    objects = {int(num): body for num, body in _OBJ.findall(pdf)}
    maps: dict[int, dict[int, str]] = {}
    for num, body in objects.items():
        m = re.search(rb"/ToUnicode (\d+) 0 R", body)
        if m:
            maps[num] = _cmap(_stream(objects[int(m.group(1))]))
    names: dict[bytes, dict[int, str]] = {}
    for body in objects.values():
        for fonts in re.findall(rb"/Font\s*<<(.*?)>>", body, re.S):
            for name, ref in re.findall(rb"/(\w+) (\d+) 0 R", fonts):
                if int(ref) in maps:
                    names[name] = maps[int(ref)]
    lines = []
    token = re.compile(rb"/(\w+) [\d.]+ Tf|\(((?:\\.|[^\\)])*)\) Tj", re.S)
    for body in objects.values():
        if b"stream" not in body:
            continue
        try:
            content = _stream(body)
        except zlib.error:
            continue
        if b"Tj" not in content:
            continue
        current: dict[int, str] = {}
        for m in token.finditer(content):
            if m.group(1) is not None:
                current = names.get(m.group(1), {})
                continue
            raw = _unescape(m.group(2))
            codes = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw) - 1, 2)]
            lines.append("".join(current.get(c, "\ufffd") for c in codes))
    return "\n".join(lines)
