// Rewrites a client's request head for its backend: the request line and every
// header as received (Sec-WebSocket-* untouched, so subprotocols and extensions are
// negotiated end to end), plus the forwarded headers.
//
// X-Forwarded-For gets the client address appended to any value the client sent
// (the HAProxy and nginx `$proxy_add_x_forwarded_for` convention); X-Forwarded-Proto
// and X-Forwarded-Host are replaced, since a client could otherwise forge them.
// X-Forwarded-Host is the request's one Host, trimmed, and only when valid_host()
// accepts it (RFC 9112 §3.2); otherwise it is left out.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "http/message_parser.h"

namespace sb::http {

struct ForwardInfo {
    bool add_forwarded_headers = true;
    std::string_view client_ip;
    std::string_view proto;  // "http" or "https"
};

std::string backend_request(std::string_view buffer, const MessageParser& parser,
                            const ForwardInfo& info);

// A plain HTTP request for its backend (SPEC §3 HTTP requests): the request line as
// received, every end-to-end header, the forwarded headers as above, and none of the
// hop-by-hop ones (RFC 9110 §7.6.1: Connection and every header it names, Keep-Alive,
// Proxy-Connection, TE, Trailer, Upgrade). The connection to the backend is ours to
// keep alive: an HTTP/1.1 request says nothing about it.
std::string backend_http_request(std::string_view buffer, const MessageParser& parser,
                                 const ForwardInfo& info);

// A backend's answer head for the client: the status line as received, without the
// hop-by-hop headers, then `Connection: close` when the proxy will close the client
// connection after this answer, or `Connection: keep-alive` when it keeps an HTTP/1.0
// client's connection open (HTTP/1.1 keeps it by default).
std::string client_response(std::string_view buffer, const MessageParser& parser, bool keep_alive,
                            bool http10_client);

// Whether the header `name` is hop-by-hop in a message whose Connection headers are
// `connection_values` (each a comma-separated list). Content-Length, Transfer-Encoding
// and Host never are, whatever Connection names: they frame and address the message.
bool hop_by_hop(std::string_view name, const std::vector<std::string_view>& connection_values);

// A Connection header that names Content-Length, Transfer-Encoding or Host, or "" when
// none does. A message that asks a proxy to drop its own framing would reach the next
// hop framed differently from how the proxy read it (request smuggling): refused.
std::string_view connection_names_framing(std::string_view buffer, const MessageParser& parser);

}  // namespace sb::http
