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

#include "http/message_parser.h"

namespace sb::http {

struct ForwardInfo {
    bool add_forwarded_headers = true;
    std::string_view client_ip;
    std::string_view proto;  // "http" or "https"
};

std::string backend_request(std::string_view buffer, const MessageParser& parser,
                            const ForwardInfo& info);

}  // namespace sb::http
