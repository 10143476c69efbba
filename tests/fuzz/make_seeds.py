#!/usr/bin/env python3
"""Writes the seed corpora of the fuzzers in tests/fuzz/corpus/ (run from anywhere).

Seeds are real inputs: frame streams a browser or a backend sends, request and response
heads as clients and backends write them. Each seed file is one byte N, N decision
bytes (fuzz_util.h: how the fuzzer cuts the input into chunks; N = 0 lets a generator
choose), then the subject. Rewriting a seed is harmless: libFuzzer only reads them.
"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
MASK = bytes([0x37, 0xFA, 0x21, 0x3D])


def frame(opcode, payload=b"", fin=True, mask=None, rsv=0, form=None):
    """One frame; `form` forces a length form ('16' or '64') or a raw 64-bit value."""
    out = bytes([(0x80 if fin else 0) | (rsv << 4) | opcode])
    bit = 0x80 if mask else 0
    n = len(payload)
    if form is None:
        form = "7" if n < 126 else "16" if n < 65536 else "64"
    if form == "7":
        out += bytes([bit | n])
    elif form == "16":
        out += bytes([bit | 126]) + struct.pack(">H", n)
    elif form == "64":
        out += bytes([bit | 127]) + struct.pack(">Q", n)
    else:  # a raw 64-bit length, whatever the payload
        out += bytes([bit | 127]) + struct.pack(">Q", form)
    if mask:
        out += mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    else:
        out += payload
    return out


def seed(subject, choices=b""):
    return bytes([len(choices)]) + choices + subject


def write(name, seeds):
    folder = os.path.join(HERE, "corpus", name)
    os.makedirs(folder, exist_ok=True)
    for file_name, data in seeds.items():
        with open(os.path.join(folder, file_name), "wb") as f:
            f.write(data)


def frame_scanner_seeds():
    one_byte_chunks = bytes([0] * 64)  # chunk mode 0: one byte at a time
    return {
        # RFC 6455 §5.7 examples.
        "rfc_masked_hello": seed(frame(0x1, b"Hello", mask=MASK)),
        "rfc_unmasked_hello": seed(frame(0x1, b"Hello")),
        "rfc_fragmented_hello": seed(frame(0x1, b"Hel", fin=False) + frame(0x0, b"lo")),
        "rfc_ping_pong": seed(frame(0x9, b"Hello") + frame(0xA, b"Hello", mask=MASK)),
        "rfc_binary_256_16bit": seed(frame(0x2, bytes(range(256)))),
        "binary_64k_64bit_truncated": seed(frame(0x2, bytes(70000), mask=MASK)[:3000]),
        "close_1000_masked": seed(frame(0x8, struct.pack(">H", 1000) + b"bye", mask=MASK)),
        "close_1001_from_backend": seed(frame(0x8, struct.pack(">H", 1001) + b"going away")),
        "fragmented_with_ping_masked": seed(
            frame(0x1, b"chat: he", fin=False, mask=MASK) + frame(0x9, b"t", mask=MASK)
            + frame(0x0, b"llo ", fin=False, mask=MASK) + frame(0x0, b"room", mask=MASK)),
        "one_byte_at_a_time": seed(
            frame(0x1, b'{"op":"join","room":42}', mask=MASK) + frame(0x8, b"\x03\xe8", mask=MASK),
            one_byte_chunks),
        "empty_frames": seed(frame(0x1, mask=MASK) + frame(0x9, mask=MASK) + frame(0x8, mask=MASK)),
        "deflate_rsv1": seed(frame(0x1, b"\xf2\x48\xcd\xc9\xc9\x07\x00", mask=MASK, rsv=4)),
        # RFC 6455 §5.2 violations the scanner must still follow.
        "pong_8_bytes_64bit_form": seed(frame(0xA, b"12345678", mask=MASK, form="64"), one_byte_chunks),
        "hello_16bit_form": seed(frame(0x1, b"Hello", mask=MASK, form="16")),
        "length_top_bit_set": seed(frame(0x2, b"abc", mask=MASK, form=(1 << 63) | 3) + b"abcdefgh"),
        "reserved_opcodes": seed(frame(0x3, b"x", mask=MASK) + frame(0xB, b"y", mask=MASK)),
        "control_too_long": seed(frame(0x9, bytes(200), mask=MASK)),
        "continuation_first": seed(frame(0x0, b"orphan", mask=MASK)),
    }


KEY = "dGhlIHNhbXBsZSBub25jZQ=="  # RFC 6455 §1.3


def head(start_line, headers):
    return (start_line + "\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers) + "\r\n").encode()


def upgrade(target="/chat", host="server.example.com", extra=(), version="13", start=None):
    return head(start or f"GET {target} HTTP/1.1", [
        ("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", KEY), ("Sec-WebSocket-Version", version), *extra])


def request_seeds():
    one_byte_chunks = bytes([0] * 200)
    chrome = head("GET /ws/rooms/42?room=lobby&token=abc HTTP/1.1", [
        ("Host", "chat.example.com"), ("Connection", "Upgrade"), ("Pragma", "no-cache"),
        ("Cache-Control", "no-cache"),
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537.36"),
        ("Upgrade", "websocket"), ("Origin", "https://chat.example.com"),
        ("Sec-WebSocket-Version", "13"), ("Accept-Encoding", "gzip, deflate, br"),
        ("Accept-Language", "en-US,en;q=0.9"), ("Cookie", "session=s3cr3t; room=\"lobby\""),
        ("Sec-WebSocket-Key", "x3JJHMbDL1EzLkh9GBhXDw=="),
        ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits")])
    firefox = head("GET /game/match/7 HTTP/1.1", [
        ("Host", "[2001:db8::1]:8443"), ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0"),
        ("Accept", "*/*"), ("Sec-WebSocket-Version", "13"), ("Origin", "https://game.example.com"),
        ("Sec-WebSocket-Protocol", "game.v2, game.v1"), ("Sec-WebSocket-Key", "AQIDBAUGBwgJCgsMDQ4PEA=="),
        ("Connection", "keep-alive, Upgrade"), ("Upgrade", "websocket"), ("X-Room", "match-7"),
        ("X-Forwarded-For", "198.51.100.9")])
    python_ws = head("GET /feed HTTP/1.1", [
        ("Host", "127.0.0.1:8080"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "E4WSEcseoWr4csPLS2QJHA=="), ("Sec-WebSocket-Version", "13"),
        ("Sec-WebSocket-Extensions", "permessage-deflate; client_max_window_bits"),
        ("User-Agent", "Python/3.11 websockets/10.4")])
    masked_hello = bytes([0x81, 0x85, 0x37, 0xFA, 0x21, 0x3D, 0x7F, 0x9F, 0x4D, 0x51, 0x58])
    return {
        "rfc6455_example": seed(upgrade(extra=[("Origin", "http://example.com"),
                                               ("Sec-WebSocket-Protocol", "chat, superchat")])),
        "chrome": seed(chrome),
        "chrome_one_byte_at_a_time": seed(chrome, one_byte_chunks),
        "firefox_ipv6_host": seed(firefox),
        "python_websockets": seed(python_ws),
        "with_frame_behind": seed(python_ws + masked_hello),
        "version_8": seed(upgrade(version="8")),
        "http10": seed(upgrade(start="GET /chat HTTP/1.0")),
        "post_with_body": seed(head("POST /chat HTTP/1.1", [
            ("Host", "a.example"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Content-Length", "5")]) + b"hello"),
        "transfer_encoding_chunked": seed(upgrade(extra=[("Transfer-Encoding", "chunked")]) + b"0\r\n\r\n"),
        "transfer_encoding_gzip": seed(upgrade(extra=[("Transfer-Encoding", "gzip")])),
        "host_with_space": seed(upgrade(host="a b")),
        "bare_lf": seed(upgrade().replace(b"\r\nUpgrade", b"\nUpgrade")),
        "obs_fold": seed(upgrade(extra=[("X-Long", "a\r\n continued")])),
        "plain_get": seed(head("GET /index.html HTTP/1.1", [("Host", "example.com"), ("Accept", "*/*")])),
        "absolute_target": seed(upgrade(start="GET http://chat.example.com/chat HTTP/1.1")),
        "two_hosts": seed(upgrade(extra=[("Host", "other.example")])),
    }


def response_seeds():
    accept = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="  # RFC 6455 §1.3, for KEY
    switching = head("HTTP/1.1 101 Switching Protocols", [
        ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept)])
    hello = bytes([0x81, 0x05]) + b"Hello"
    nginx_404 = head("HTTP/1.1 404 Not Found", [
        ("Server", "nginx/1.22.1"), ("Date", "Thu, 03 Dec 2026 14:29:34 GMT"),
        ("Content-Type", "text/html"), ("Content-Length", "153"), ("Connection", "keep-alive")])
    body_404 = (b"<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n"
                b"<center><h1>404 Not Found</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n"
                b"</body>\r\n</html>\r\n")
    one_byte_chunks = bytes([0] * 200)
    return {
        "rfc6455_101": seed(switching),
        "101_with_protocol_and_frame": seed(head("HTTP/1.1 101 Switching Protocols", [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept),
            ("Sec-WebSocket-Protocol", "chat"),
            ("Sec-WebSocket-Extensions", "permessage-deflate; server_no_context_takeover")]) + hello),
        "101_one_byte_at_a_time": seed(switching + hello, one_byte_chunks),
        "100_then_101": seed(head("HTTP/1.1 100 Continue", []) + switching),
        "103_early_hints_then_101": seed(head("HTTP/1.1 103 Early Hints", [
            ("Link", "</style.css>; rel=preload; as=style")]) + switching),
        "101_wrong_accept": seed(head("HTTP/1.1 101 Switching Protocols", [
            ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Accept", "dGhlIHNhbXBsZSBub25jZQ==")])),
        "101_http10": seed(switching.replace(b"HTTP/1.1", b"HTTP/1.0", 1)),
        "nginx_404_content_length": seed(nginx_404 + body_404),
        "401_chunked": seed(head("HTTP/1.1 401 Unauthorized", [
            ("WWW-Authenticate", 'Bearer realm="chat"'), ("Transfer-Encoding", "chunked"),
            ("Content-Type", "text/plain")]) + b"d\r\nunauthorized\n\r\n0\r\n\r\n"),
        "403_chunked_trailer": seed(head("HTTP/1.1 403 Forbidden", [
            ("Transfer-Encoding", "chunked")]) + b"9\r\nforbidden\r\n0\r\nX-Trace: 42\r\n\r\n"),
        "200_until_close": seed(head("HTTP/1.1 200 OK", [("Content-Type", "text/plain")]) + b"not a websocket server\n"),
        "503_http10": seed(head("HTTP/1.0 503 Service Unavailable", [("Retry-After", "5")]) + b"busy"),
        "204_no_body": seed(head("HTTP/1.1 204 No Content", [("Connection", "close")])),
        "garbage": seed(b"SSH-2.0-OpenSSH_9.2p1 Debian-2\r\n"),
    }


V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_v2(command, family, body):
    return V2_SIGNATURE + bytes([0x20 | command, family]) + struct.pack(">H", len(body)) + body


def proxy_header_seeds():
    one_byte_chunks = bytes([0] * 64)
    v4 = bytes([192, 168, 0, 1, 10, 0, 0, 2]) + struct.pack(">HH", 56324, 443)
    v6 = bytes(15) + b"\x01" + bytes([0x20, 0x01, 0x0d, 0xb8]) + bytes(11) + b"\x05" + struct.pack(">HH", 1, 2)
    tlvs = b"\x01\x00\x02h2" + b"\x04\x00\x03abc" + b"\x20\x00\x05\x01\x00\x00\x00\x00"
    request = b"GET /chat HTTP/1.1\r\nHost: example.com\r\n\r\n"
    return {
        # proxy-protocol.txt §2.1 examples, and HAProxy's send-proxy output.
        "v1_tcp4": seed(b"PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n" + request),
        "v1_tcp6": seed(b"PROXY TCP6 2001:db8::1 ::1 65535 0\r\n"),
        "v1_unknown": seed(b"PROXY UNKNOWN\r\n"),
        "v1_unknown_worst_case": seed(b"PROXY UNKNOWN " + b"ffff:" * 7 + b"ffff " + b"ffff:" * 7
                                      + b"ffff 65535 65535\r\n"),
        "v1_one_byte_at_a_time": seed(b"PROXY TCP4 127.0.0.2 127.0.0.1 40000 8080\r\n", one_byte_chunks),
        "v1_lf_only": seed(b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n"),
        # HAProxy's send-proxy-v2 and its health checks (LOCAL).
        "v2_tcp4": seed(proxy_v2(1, 0x11, v4) + b"\x16\x03\x01\x00\xc8"),
        "v2_tcp6": seed(proxy_v2(1, 0x21, v6)),
        "v2_tcp4_tlvs": seed(proxy_v2(1, 0x11, v4 + tlvs) + request),
        "v2_local": seed(proxy_v2(0, 0x00, b"")),
        "v2_unix": seed(proxy_v2(1, 0x31, b"/run/a.sock".ljust(108, b"\0") + b"/run/b.sock".ljust(108, b"\0"))),
        "v2_one_byte_at_a_time": seed(proxy_v2(1, 0x11, v4 + tlvs), one_byte_chunks),
        "v2_udp": seed(proxy_v2(1, 0x12, v4)),
        "v2_short_length": seed(proxy_v2(1, 0x21, v4)),
        "v2_4k": seed(proxy_v2(0, 0x00, bytes(4096 - 16))),
        "no_header_tls": seed(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
    }


def http_stream_seeds():
    """Pipelined requests (and responses) with every framing, for http_stream_fuzz.cpp."""
    byte_reads = bytes([0] * 200)  # chunk mode 0: every read one byte
    get = b"GET /a HTTP/1.1\r\nHost: example.com\r\n\r\n"
    post = b"POST /b HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello"
    chunked = (b"POST /c HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
               b"5\r\nhello\r\n6;name=value\r\n world\r\n0\r\n\r\n")
    trailers = (b"PUT /d HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
                b"3\r\nabc\r\n0\r\nX-Checksum: 1234\r\nX-Other: a b\r\n\r\n")
    te_head = b"POST /e HTTP/1.1\r\nHost: example.com\r\nTransfer-Encoding: chunked\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
    return {
        "pipelined_get_post_chunked": seed(get + post + chunked + get),
        "pipelined_bytewise": seed(get + post + chunked + trailers + get, byte_reads),
        "trailers": seed(trailers + get),
        "http10_keepalive": seed(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" + post),
        "empty_lines_before_request": seed(post + b"\r\n\r\n" + get),
        "upgrade_then_frames": seed(get + b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n"
                                    b"Connection: Upgrade\r\n\r\n\x81\x85abcd"),
        "obs_fold": seed(b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 1\r\n 2\r\n\r\n" + get),
        "obs_fold_trailer": seed(te_head + b"0\r\nX-A: 1\r\n 2\r\n\r\n" + get),
        "bare_lf_chunk_size": seed(te_head + b"5\nhello\r\n0\r\n\r\n" + get),
        "bare_lf_last_chunk": seed(te_head + b"0\n\r\n" + get),
        "bare_lf_final_line": seed(te_head + b"0\r\n\n" + get),
        "bare_lf_trailer": seed(te_head + b"0\r\nX: 1\n\r\n" + get),
        "bare_cr_after_data": seed(te_head + b"5\r\nhello\r0\r\n\r\n" + get),
        "junk_after_data": seed(te_head + b"5\r\nhelloXX0\r\n\r\n" + get),
        "long_extension": seed(te_head + b"5;" + b"x" * 4095 + b"\r\nhello\r\n0\r\n\r\n" + get),
        "extension_over_4k": seed(te_head + b"5;" + b"x" * 4096 + b"\r\nhello\r\n0\r\n\r\n" + get),
        "extension_quoted": seed(te_head + b'5;a="x;y";b\r\nhello\r\n0;c=d\r\n\r\n' + get),
        "extension_bws": seed(te_head + b"5 ; a = b\r\nhello\r\n0\r\n\r\n" + get),
        "chunk_size_overflow": seed(te_head + b"10000000000000005\r\nhello\r\n0\r\n\r\n" + get),
        "chunk_size_2_63": seed(te_head + b"8000000000000000\r\nhello\r\n0\r\n\r\n"),
        "chunk_size_leading_zeros": seed(te_head + b"000000000000000000005\r\nhello\r\n0\r\n\r\n" + get),
        "chunk_size_0x": seed(te_head + b"0x5\r\nhello\r\n0\r\n\r\n" + get),
        "cl_te": seed(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\n"
                      b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\n\r\n"),
        "te_cl": seed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                      b"Content-Length: 4\r\n\r\n5c\r\nGPOST / HTTP/1.1\r\n\r\n0\r\n\r\n"),
        "te_te": seed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n"
                      b"Transfer-Encoding: identity\r\n\r\n0\r\n\r\n" + get),
        "te_space_colon": seed(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n"
                               b"\r\n0\r\n\r\n" + get),
        "te_http10": seed(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + get),
        "two_content_lengths": seed(b"POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab" + get),
        "content_length_list": seed(b"POST / HTTP/1.1\r\nContent-Length: 2, 2\r\n\r\nab" + get),
        "content_length_huge": seed(b"POST / HTTP/1.1\r\nContent-Length: 9223372036854775808\r\n\r\nab"),
        "content_length_plus": seed(b"POST / HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello" + get),
        "bare_lf_head": seed(b"GET / HTTP/1.1\nHost: a\r\n\r\n" + get),
        "responses_pipelined": seed(b"HTTP/1.1 100 Continue\r\n\r\n" + ok
                                    + b"HTTP/1.1 204 No Content\r\n\r\n"
                                    + b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                                      b"2\r\nok\r\n0\r\nX: y\r\n\r\n"
                                    + b"HTTP/1.1 304 Not Modified\r\nContent-Length: 9\r\n\r\n"
                                    + b"HTTP/1.1 200 OK\r\n\r\nuntil close"),
        "framing_fields_in_trailers": seed(te_head + b"0\r\nTransfer-Encoding: gzip\r\n"
                                           b"Content-Length: 5\r\n\r\n" + get),
        "response_empty_until_close": seed(b"HTTP/1.1 200 OK\r\nServer: x\r\n\r\n"),
        "response_smuggled_second": seed(ok + b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad", byte_reads),
    }


def provider_seeds(tag, sizes):
    """Seeds for the fuzzers that read their whole input through FuzzedDataProvider
    (tls_records, tls_record_parser): decisions come from the input's end and payload
    bytes from its front, so any bytes are a valid plan; these cover every suite, op and
    plan length, and libFuzzer steers from there. Deterministic, so rewriting them is a
    no-op."""
    import random
    rng = random.Random(tag)
    out = {}
    for i, n in enumerate(sizes):
        body = bytes(rng.randrange(256) for _ in range(n))
        # The last byte picks the suite (0..5) in both fuzzers: cycle through them.
        out[f"plan_{i:02d}_{n}_bytes"] = body[:-1] + bytes([i % 6])
    return out


if __name__ == "__main__":
    write("frame_scanner", frame_scanner_seeds())
    write("request", request_seeds())
    write("response", response_seeds())
    write("proxy_header", proxy_header_seeds())
    write("http_stream", http_stream_seeds())
    write("tls_records",
          provider_seeds("tls_records", [16, 48, 96, 200, 400, 800, 1600, 3200, 6400, 64, 128]))
    write("tls_record_parser",
          provider_seeds("tls_record_parser", [8, 32, 64, 128, 256, 512, 1024, 2048, 4096]))
