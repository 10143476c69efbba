// Every HTTP answer switchboard makes up itself, defined once: status line, a short
// text body and `Connection: close` (SPEC §3 "Proxy-generated answers").
#pragma once

#include <string>
#include <string_view>

namespace sb::http {

enum class Status {
    Ok = 200,
    BadRequest = 400,
    Forbidden = 403,
    NotFound = 404,
    MethodNotAllowed = 405,
    UpgradeRequired = 426,
    PayloadTooLarge = 413,
    TooManyRequests = 429,
    HeadersTooLarge = 431,
    BadGateway = 502,
    ServiceUnavailable = 503,
    GatewayTimeout = 504,
};

int status_code(Status s);
std::string_view status_text(Status s);

// A complete response: status line, Content-Type: text/plain, Content-Length,
// Connection: close (and Sec-WebSocket-Version: 13 for 426; `Retry-After:
// retry_after` when it is not 0: refusals by admission control and rate limits),
// then a body of the status text and, when given, `detail` on the same line.
std::string reply(Status s, std::string_view detail = {}, unsigned retry_after = 0);

}  // namespace sb::http
