#include "admin/admin_request.h"

#include <exception>

#include "admin/status_page.h"
#include "http/replies.h"
#include "http/request_key.h"
#include "log/logger.h"

namespace sb::admin {

namespace {

int hex_value(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string_view status_text(int status) {
    // http::Status lists the answers the proxy makes; 500 is the admin listener's own.
    if (status == 500) return "Internal Server Error";
    return http::status_text(static_cast<http::Status>(status));
}

// Builds a complete answer. A HEAD request gets the same head, Content-Length
// included, and no body (RFC 9110 §9.3.2).
AdminAnswer make_answer(int status, std::string_view content_type, std::string_view body,
                        bool head_only, bool stream = false) {
    AdminAnswer a;
    a.status = status;
    a.stream = stream && !head_only;
    std::string& out = a.bytes;
    out.reserve(160 + (head_only ? 0 : body.size()));
    out += "HTTP/1.1 ";
    out += std::to_string(status);
    out += ' ';
    out += status_text(status);
    out += "\r\nContent-Type: ";
    out += content_type;
    out += "\r\nCache-Control: no-store\r\n";
    if (status == 405) out += "Allow: GET, HEAD\r\n";
    // A stream has no length: it ends when the connection does.
    if (!stream) out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "Connection: close\r\n\r\n";
    if (!head_only) out += body;
    return a;
}

AdminAnswer answer_get(const AdminSources& sources, std::string_view path, std::string_view query,
                       bool head_only) {
    if (path == "/healthz") {
        bool draining = sources.draining();
        return make_answer(draining ? 503 : 200, "text/plain; charset=utf-8",
                           draining ? "draining\n" : "ok\n", head_only);
    }
    if (path == "/metrics") {
        return make_answer(200, "text/plain; version=0.0.4; charset=utf-8", metrics_text(sources),
                           head_only);
    }
    if (path == "/status") {
        return make_answer(200, "application/json", status_json(sources) + "\n", head_only);
    }
    if (path == "/route") {
        std::string_view pool, key;
        if (!http::find_query(query, "pool", pool) || !http::find_query(query, "key", key)) {
            return make_answer(400, "application/json",
                               "{\"error\": \"usage: /route?pool=NAME&key=KEY\"}\n", head_only);
        }
        bool found = false;
        std::string body =
            route_json(sources, decode_query_value(pool), decode_query_value(key), found);
        return make_answer(found ? 200 : 404, "application/json", body + "\n", head_only);
    }
    if (path == "/") {
        return make_answer(200, "text/html; charset=utf-8", status_page_html(), head_only);
    }
    if (path == "/events") {
        // Server-sent events: the first snapshot now, then one per second (AdminServer).
        return make_answer(200, "text/event-stream",
                           "retry: 2000\n\ndata: " + live_json(sources) + "\n\n", head_only, true);
    }
    return make_answer(404, "text/plain; charset=utf-8", "not found\n", head_only);
}

// The request target, printable, for a log line: it came from the network.
std::string printable(std::string_view text) {
    std::string out;
    for (char c : text.substr(0, 200))
        out.push_back(c >= 0x20 && c < 0x7F ? c : '?');
    return out;
}

}  // namespace

std::string decode_query_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (size_t i = 0; i < value.size(); ++i) {
        char c = value[i];
        int high = -1, low = -1;
        if (c == '%' && i + 2 < value.size()) {
            high = hex_value(value[i + 1]);
            low = hex_value(value[i + 2]);
        }
        if (c == '+') {
            out.push_back(' ');
        } else if (high >= 0 && low >= 0) {
            out.push_back(static_cast<char>(high * 16 + low));
            i += 2;
        } else {
            out.push_back(c);
        }
    }
    return out;
}

AdminAnswer answer(const AdminSources& sources, std::string_view method, std::string_view target) {
    try {
        bool head_only = method == "HEAD";
        if (method != "GET" && !head_only) {
            return make_answer(405, "text/plain; charset=utf-8",
                               "only GET and HEAD are served here\n", false);
        }
        auto question = target.find('?');
        std::string_view path = target.substr(0, question);
        std::string_view query =
            question == std::string_view::npos ? std::string_view() : target.substr(question + 1);
        return answer_get(sources, path, query, head_only);
    } catch (const std::exception& e) {
        // Nothing may leave a libuv callback: the client gets a 500, the operator a line.
        try {
            log::error("admin: cannot answer",
                       {{"target", printable(target)}, {"detail", e.what()}});
        } catch (...) {
        }
    } catch (...) {
        try {
            log::error("admin: cannot answer", {{"target", printable(target)}});
        } catch (...) {
        }
    }
    return make_answer(500, "text/plain; charset=utf-8", "internal error\n", method == "HEAD");
}

std::optional<AdminAnswer> RequestReader::read(const AdminSources& sources,
                                               std::string_view received) {
    // Nothing yet: nothing to parse (and llhttp must not see a null buffer).
    if (received.empty()) return std::nullopt;
    try {
        auto status = parser_.parse(received);
        if (status == http::MessageParser::Status::Error) {
            return make_answer(400, "text/plain; charset=utf-8", "bad request\n", false);
        }
        // The cap is on the head, however it arrived: in one read or in many.
        bool too_large = status == http::MessageParser::Status::Complete
                             ? parser_.head_length() > kMaxRequestBytes
                             : received.size() > kMaxRequestBytes;
        if (too_large) {
            return make_answer(431, "text/plain; charset=utf-8", "request too large\n", false);
        }
        if (status == http::MessageParser::Status::Complete) {
            return answer(sources, parser_.method().in(received), parser_.target().in(received));
        }
        return std::nullopt;
    } catch (...) {
        // Only memory can fail here; answer rather than let it reach the loop.
        return make_answer(500, "text/plain; charset=utf-8", "internal error\n", false);
    }
}

std::optional<AdminAnswer> answer_request(const AdminSources& sources, std::string_view request) {
    RequestReader reader;
    return reader.read(sources, request);
}

}  // namespace sb::admin
