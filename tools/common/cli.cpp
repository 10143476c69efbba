#include "common/cli.h"

#include <sys/resource.h>

#include <charconv>
#include <cmath>

namespace sb::tools {

bool ArgReader::next(std::string_view& name) {
    if (++index_ >= argc_) return false;
    current_ = argv_[index_];
    has_inline_ = false;
    auto eq = current_.find('=');
    if (current_.substr(0, 2) == "--" && eq != std::string_view::npos) {
        inline_value_ = current_.substr(eq + 1);
        current_ = current_.substr(0, eq);
        has_inline_ = true;
    }
    name = current_;
    return true;
}

bool ArgReader::value(std::string_view& out) {
    if (has_inline_) {
        out = inline_value_;
        has_inline_ = false;
        return true;
    }
    if (index_ + 1 >= argc_) {
        error_ = "option " + std::string(current_) + " needs a value";
        return false;
    }
    out = argv_[++index_];
    return true;
}

bool parse_u64(std::string_view text, uint64_t& out) {
    if (text.empty()) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size();
}

bool parse_non_negative(std::string_view text, double& out) {
    if (text.empty()) return false;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
    return ec == std::errc() && end == text.data() + text.size() && std::isfinite(out) &&
           out >= 0.0;
}

void raise_descriptor_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

}  // namespace sb::tools
