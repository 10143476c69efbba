// Router: picks the pool for a request by host and path prefix, first match wins,
// falling back to the listener's default pool (SPEC §2 `routes`, `pool`).
//
// Built once per listener and configuration generation; immutable afterwards, so
// workers share it without locks.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace sb::http {

class Router {
  public:
    explicit Router(const config::ListenerConfig& listener);

    // The pool name for a lower-cased host name (without port) and a request path
    // (without query), or nullptr when nothing matches and there is no default.
    const std::string* route(std::string_view host_name, std::string_view path) const;

    // "*.example.com" matches one or more labels before ".example.com"; any other
    // pattern matches exactly.
    static bool host_matches(std::string_view pattern, std::string_view host);

  private:
    std::vector<config::Route> routes_;
    std::string default_pool_;
};

}  // namespace sb::http
