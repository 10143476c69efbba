#include "http/request_key.h"

namespace sb::http {

namespace {

std::string_view trim_spaces(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
        s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
        s.remove_suffix(1);
    return s;
}

// Finds `name=value` in a list separated by `sep`; pieces without '=' are skipped.
bool find_pair(std::string_view list, char sep, std::string_view name, std::string_view& value) {
    while (!list.empty()) {
        auto end = list.find(sep);
        auto item = list.substr(0, end);
        auto eq = item.find('=');
        if (eq != std::string_view::npos && trim_spaces(item.substr(0, eq)) == name) {
            value = trim_spaces(item.substr(eq + 1));
            return true;
        }
        if (end == std::string_view::npos) break;
        list.remove_prefix(end + 1);
    }
    return false;
}

}  // namespace

bool find_cookie(std::string_view cookie_header, std::string_view name, std::string_view& value) {
    if (!find_pair(cookie_header, ';', name, value)) return false;
    // RFC 6265 allows the value in double quotes.
    if (value.size() >= 2 && value.front() == '"' && value.back() == '"') {
        value = value.substr(1, value.size() - 2);
    }
    return true;
}

bool find_query(std::string_view query, std::string_view name, std::string_view& value) {
    return find_pair(query, '&', name, value);
}

bool path_segment(std::string_view path, unsigned n, std::string_view& segment) {
    unsigned index = 0;
    while (!path.empty()) {
        auto start = path.find_first_not_of('/');
        if (start == std::string_view::npos) break;
        path.remove_prefix(start);
        auto end = path.find('/');
        if (++index == n) {
            segment = path.substr(0, end);
            return true;
        }
        if (end == std::string_view::npos) break;
        path.remove_prefix(end);
    }
    return false;
}

std::string balancing_key(const config::HashKey& key, const KeySource& source, bool& fell_back) {
    using Kind = config::HashKey::Kind;
    std::string_view value;
    bool found = false;
    switch (key.kind) {
        case Kind::ClientIp:
            break;
        case Kind::Header:
            found = source.headers && find_header(source.buffer, *source.headers, key.name, value);
            break;
        case Kind::Cookie:
            if (source.headers) {
                // Several Cookie headers are allowed (HTTP/2 style); look in each.
                for (const auto& h : *source.headers) {
                    if (iequals(h.name.in(source.buffer), "cookie") &&
                        find_cookie(h.value.in(source.buffer), key.name, value)) {
                        found = true;
                        break;
                    }
                }
            }
            break;
        case Kind::Query:
            found = find_query(source.query, key.name, value);
            break;
        case Kind::Path:
            value = source.path;
            found = true;
            break;
        case Kind::PathSegment:
            found = path_segment(source.path, key.segment, value);
            break;
    }
    // An empty value names no room either: hash by the client instead.
    fell_back = !found || value.empty();
    return std::string(fell_back ? source.client_ip : value);
}

}  // namespace sb::http
