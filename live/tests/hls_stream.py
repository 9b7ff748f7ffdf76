"""A tiny HLS stream for tests: a live playlist and MPEG-TS segments (PAT + PMT + padding
packets, each table with its CRC), served over HTTP from a temp dir by a local thread, with
CORS so the player page on the live server may fetch it. It records the paths asked for."""

from __future__ import annotations

import functools
import http.server
import tempfile
import threading
from pathlib import Path

PLAYLIST = """#EXTM3U
#EXT-X-VERSION:3
#EXT-X-TARGETDURATION:2
#EXT-X-MEDIA-SEQUENCE:0
#EXTINF:2.000,
seg0.ts
#EXTINF:2.000,
seg1.ts
#EXTINF:2.000,
seg2.ts
"""


def _crc32_mpeg(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc


def _section(table_id: int, ext_id: int, body: bytes) -> bytes:
    length = 5 + len(body) + 4  # after section_length: ext id (2), version (1), numbers (2), body, CRC
    head = bytes([table_id, 0xB0 | (length >> 8), length & 0xFF, ext_id >> 8, ext_id & 0xFF, 0xC1, 0x00, 0x00])
    data = head + body
    return data + _crc32_mpeg(data).to_bytes(4, "big")


def _packet(pid: int, payload: bytes, cc: int, start: bool) -> bytes:
    header = bytes([0x47, (0x40 if start else 0) | (pid >> 8), pid & 0xFF, 0x10 | (cc & 0x0F)])
    return (header + payload).ljust(188, b"\xff")


def segment(seq: int) -> bytes:
    pat = _section(0x00, 1, bytes([0x00, 0x01, 0xF0, 0x00]))  # program 1 → PMT on PID 0x1000
    # PCR PID 0x100; one H.264 (0x1B) stream on PID 0x100.
    pmt = _section(0x02, 1, bytes([0xE1, 0x00, 0xF0, 0x00, 0x1B, 0xE1, 0x00, 0xF0, 0x00]))
    packets = [_packet(0x0000, b"\x00" + pat, seq, True), _packet(0x1000, b"\x00" + pmt, seq, True)]
    packets += [_packet(0x1FFF, b"", 0, False) for _ in range(8)]  # null packets
    return b"".join(packets)


class Stream:
    def __init__(self):
        self.dir = Path(tempfile.mkdtemp(prefix="uh-hls-"))
        (self.dir / "live.m3u8").write_text(PLAYLIST)
        for i in range(3):
            (self.dir / f"seg{i}.ts").write_bytes(segment(i))
        self.requests: list[str] = []
        stream = self

        class Handler(http.server.SimpleHTTPRequestHandler):
            def end_headers(self):
                self.send_header("Access-Control-Allow-Origin", "*")
                super().end_headers()

            def do_GET(self):
                stream.requests.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(self.dir))
        )
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/live.m3u8"

    def __enter__(self) -> Stream:
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
