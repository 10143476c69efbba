// The balancing key of a request (SPEC §2 `hash_key`, §3 Balancing): a header, a
// cookie, a query parameter, the path or one path segment, falling back to the
// client's address when the request lacks it. Pure; the result is what gets hashed
// and what names the request's room.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "http/message_parser.h"

namespace sb::http {

struct KeySource {
    std::string_view buffer;  // the request head bytes
    const std::vector<HeaderSpan>* headers = nullptr;
    std::string_view path;   // without the query
    std::string_view query;  // without '?'
    std::string_view client_ip;
};

// The key for `hash_key`; `fell_back` tells whether the client address was used.
std::string balancing_key(const config::HashKey& key, const KeySource& source, bool& fell_back);

// Cookie `name` from a Cookie header value ("a=1; b=2"), as sent.
bool find_cookie(std::string_view cookie_header, std::string_view name, std::string_view& value);
// Query parameter `name` from a query string ("a=1&b=2"), as sent (not decoded).
bool find_query(std::string_view query, std::string_view name, std::string_view& value);
// The Nth non-empty segment of `path`, counting from 1 ("/rooms/42/ws", 2 → "42").
bool path_segment(std::string_view path, unsigned n, std::string_view& segment);

}  // namespace sb::http
