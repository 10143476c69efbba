#include "http/router.h"

namespace sb::http {

Router::Router(const config::ListenerConfig& listener)
    : routes_(listener.routes), default_pool_(listener.pool) {}

bool Router::host_matches(std::string_view pattern, std::string_view host) {
    if (pattern.empty()) return true;
    if (pattern.size() > 2 && pattern[0] == '*' && pattern[1] == '.') {
        std::string_view suffix = pattern.substr(1);  // ".example.com"
        return host.size() > suffix.size() && host.substr(host.size() - suffix.size()) == suffix;
    }
    return pattern == host;
}

const std::string* Router::route(std::string_view host_name, std::string_view path) const {
    for (const auto& r : routes_) {
        // Plain string prefix, as nginx `location` and HAProxy `path_beg` match.
        if (host_matches(r.host, host_name) &&
            path.substr(0, r.path_prefix.size()) == r.path_prefix) {
            return &r.pool;
        }
    }
    return default_pool_.empty() ? nullptr : &default_pool_;
}

}  // namespace sb::http
