#include "http/forward.h"

#include <vector>

#include "http/handshake.h"

namespace sb::http {

namespace {

// The request's headers for its backend, then the empty line: in order and as received,
// but without the hop-by-hop ones (when `connection` is given: the Connection values
// naming them) and, with forwarded headers on, with the client's X-Forwarded-For
// appended to and X-Forwarded-Proto and X-Forwarded-Host replaced.
void append_headers(std::string& out, std::string_view buffer, const MessageParser& parser,
                    const ForwardInfo& info, const std::vector<std::string_view>* connection) {
    std::string forwarded_for;
    for (const auto& h : parser.headers()) {
        auto name = h.name.in(buffer);
        auto value = h.value.in(buffer);
        if (connection != nullptr && hop_by_hop(name, *connection)) continue;
        if (info.add_forwarded_headers) {
            if (iequals(name, "x-forwarded-for")) {
                if (!forwarded_for.empty()) forwarded_for += ", ";
                forwarded_for.append(value);
                continue;
            }
            if (iequals(name, "x-forwarded-proto") || iequals(name, "x-forwarded-host")) continue;
        }
        out.append(name).append(": ").append(value).append("\r\n");
    }
    if (info.add_forwarded_headers) {
        if (!forwarded_for.empty()) forwarded_for += ", ";
        forwarded_for.append(info.client_ip);
        out.append("X-Forwarded-For: ").append(forwarded_for).append("\r\n");
        out.append("X-Forwarded-Proto: ").append(info.proto).append("\r\n");
        // The checks refuse a request without exactly one valid Host; checked again here
        // so that no other caller can make a backend trust a Host that is not one.
        std::string_view host;
        if (count_headers(parser.headers(), buffer, "host") == 1 &&
            find_header(buffer, parser.headers(), "host", host) && valid_host(host)) {
            out.append("X-Forwarded-Host: ").append(host).append("\r\n");
        }
    }
    out.append("\r\n");
}

}  // namespace

std::string backend_request(std::string_view buffer, const MessageParser& parser,
                            const ForwardInfo& info) {
    if (!info.add_forwarded_headers) return std::string(buffer.substr(0, parser.head_length()));

    std::string out;
    out.reserve(parser.head_length() + 128);
    out.append(parser.method().in(buffer));
    out.push_back(' ');
    out.append(parser.target().in(buffer));
    out.append(" HTTP/1.1\r\n");

    append_headers(out, buffer, parser, info, {});
    return out;
}

bool hop_by_hop(std::string_view name, const std::vector<std::string_view>& connection_values) {
    static constexpr std::string_view kFixed[] = {"connection", "keep-alive", "proxy-connection",
                                                  "te",         "trailer",    "upgrade"};
    for (auto fixed : kFixed) {
        if (iequals(name, fixed)) return true;
    }
    if (iequals(name, "content-length") || iequals(name, "transfer-encoding") ||
        iequals(name, "host")) {
        return false;
    }
    for (auto list : connection_values) {
        if (has_token(list, name)) return true;
    }
    return false;
}

std::string_view connection_names_framing(std::string_view buffer, const MessageParser& parser) {
    for (const auto& h : parser.headers()) {
        if (!iequals(h.name.in(buffer), "connection")) continue;
        auto list = h.value.in(buffer);
        for (std::string_view name : {"content-length", "transfer-encoding", "host"}) {
            if (has_token(list, name)) return name;
        }
    }
    return {};
}

namespace {

std::vector<std::string_view> connection_values(std::string_view buffer,
                                                const MessageParser& parser) {
    std::vector<std::string_view> out;
    for (const auto& h : parser.headers()) {
        if (iequals(h.name.in(buffer), "connection")) out.push_back(h.value.in(buffer));
    }
    return out;
}

}  // namespace

std::string backend_http_request(std::string_view buffer, const MessageParser& parser,
                                 const ForwardInfo& info) {
    auto connection = connection_values(buffer, parser);
    std::string out;
    out.reserve(parser.head_length() + 128);
    // The request line as received (method, target, version), from the method on: the
    // empty lines a client may send before a request (RFC 9112 §2.2) are not part of it.
    std::string_view line = buffer.substr(parser.method().offset);
    out.append(line.substr(0, line.find("\r\n") + 2));
    append_headers(out, buffer, parser, info, &connection);
    return out;
}

std::string client_response(std::string_view buffer, const MessageParser& parser, bool keep_alive,
                            bool http10_client) {
    auto connection = connection_values(buffer, parser);
    std::string out;
    out.reserve(parser.head_length() + 32);
    std::string_view head = buffer.substr(parser.head_begin(), parser.head_length());
    // The proxy is the client's server: its own version, then the backend's status
    // code and reason (an HTTP/1.0 backend's status line would tell an HTTP/1.1 client
    // that this connection cannot persist).
    std::string_view line = head.substr(0, head.find("\r\n") + 2);
    out.append("HTTP/1.1").append(line.substr(line.find(' ')));
    for (const auto& h : parser.headers()) {
        auto name = h.name.in(buffer);
        if (hop_by_hop(name, connection)) continue;
        out.append(name).append(": ").append(h.value.in(buffer)).append("\r\n");
    }
    if (!keep_alive) {
        out.append("Connection: close\r\n");
    } else if (http10_client) {
        out.append("Connection: keep-alive\r\n");
    }
    out.append("\r\n");
    return out;
}

}  // namespace sb::http
