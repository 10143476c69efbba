#include "http/replies.h"

namespace sb::http {

int status_code(Status s) {
    return static_cast<int>(s);
}

std::string_view status_text(Status s) {
    switch (s) {
        case Status::Ok:
            return "OK";
        case Status::BadRequest:
            return "Bad Request";
        case Status::Forbidden:
            return "Forbidden";
        case Status::NotFound:
            return "Not Found";
        case Status::MethodNotAllowed:
            return "Method Not Allowed";
        case Status::UpgradeRequired:
            return "Upgrade Required";
        case Status::PayloadTooLarge:
            return "Content Too Large";
        case Status::TooManyRequests:
            return "Too Many Requests";
        case Status::HeadersTooLarge:
            return "Request Header Fields Too Large";
        case Status::BadGateway:
            return "Bad Gateway";
        case Status::ServiceUnavailable:
            return "Service Unavailable";
        case Status::GatewayTimeout:
            return "Gateway Timeout";
    }
    return "Error";
}

std::string reply(Status s, std::string_view detail, unsigned retry_after) {
    std::string body = std::to_string(status_code(s)) + " " + std::string(status_text(s));
    if (!detail.empty()) {
        body += ": ";
        // The detail is ours, but it may quote request bytes: keep it printable.
        for (char c : detail)
            body.push_back(c >= 0x20 && c < 0x7F ? c : '?');
    }
    body += "\n";
    std::string out =
        "HTTP/1.1 " + std::to_string(status_code(s)) + " " + std::string(status_text(s)) + "\r\n";
    if (s == Status::UpgradeRequired) out += "Sec-WebSocket-Version: 13\r\n";
    if (s == Status::MethodNotAllowed) out += "Allow: GET\r\n";
    if (retry_after > 0) out += "Retry-After: " + std::to_string(retry_after) + "\r\n";
    out += "Content-Type: text/plain; charset=utf-8\r\n";
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
    out += "Connection: close\r\n\r\n";
    out += body;
    return out;
}

}  // namespace sb::http
