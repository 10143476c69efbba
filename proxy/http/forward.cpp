#include "http/forward.h"

#include "http/handshake.h"

namespace sb::http {

std::string backend_request(std::string_view buffer, const MessageParser& parser,
                            const ForwardInfo& info) {
    if (!info.add_forwarded_headers) return std::string(buffer.substr(0, parser.head_length()));

    std::string out;
    out.reserve(parser.head_length() + 128);
    out.append(parser.method().in(buffer));
    out.push_back(' ');
    out.append(parser.target().in(buffer));
    out.append(" HTTP/1.1\r\n");

    std::string forwarded_for;
    for (const auto& h : parser.headers()) {
        auto name = h.name.in(buffer);
        auto value = h.value.in(buffer);
        if (iequals(name, "x-forwarded-for")) {
            if (!forwarded_for.empty()) forwarded_for += ", ";
            forwarded_for.append(value);
            continue;
        }
        if (iequals(name, "x-forwarded-proto") || iequals(name, "x-forwarded-host")) continue;
        out.append(name);
        out.append(": ");
        out.append(value);
        out.append("\r\n");
    }
    if (!forwarded_for.empty()) forwarded_for += ", ";
    forwarded_for.append(info.client_ip);
    out.append("X-Forwarded-For: ").append(forwarded_for).append("\r\n");
    out.append("X-Forwarded-Proto: ").append(info.proto).append("\r\n");
    // check_upgrade refuses a request without exactly one valid Host; checked again
    // here so that no other caller can make a backend trust a Host that is not one.
    std::string_view host;
    if (count_headers(parser.headers(), buffer, "host") == 1 &&
        find_header(buffer, parser.headers(), "host", host) && valid_host(host)) {
        out.append("X-Forwarded-Host: ").append(host).append("\r\n");
    }
    out.append("\r\n");
    return out;
}

}  // namespace sb::http
