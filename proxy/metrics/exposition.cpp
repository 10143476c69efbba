#include "metrics/exposition.h"

#include <cmath>
#include <cstdio>

namespace sb::metrics {

std::string Exposition::escape_label_value(std::string_view value) {
    std::string out;
    out.reserve(value.size());
    for (char c : value) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out.push_back(c);
        }
    }
    return out;
}

std::string Exposition::format_value(double value) {
    if (std::isnan(value)) return "NaN";
    if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
    if (value == std::floor(value) && std::fabs(value) < 1e15) {
        return std::to_string(static_cast<long long>(value));
    }
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.9g", value);
    return buf;
}

void Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
    out_ += "# HELP ";
    out_ += name;
    out_ += ' ';
    // HELP text escapes only backslash and newline.
    for (char c : help) {
        if (c == '\\') {
            out_ += "\\\\";
        } else if (c == '\n') {
            out_ += "\\n";
        } else {
            out_.push_back(c);
        }
    }
    out_ += "\n# TYPE ";
    out_ += name;
    out_ += ' ';
    out_ += type;
    out_ += '\n';
}

void Exposition::write_sample(std::string_view name, const Labels& labels, std::string_view value,
                              const std::pair<std::string, std::string>* extra) {
    out_ += name;
    if (!labels.empty() || extra != nullptr) {
        out_ += '{';
        bool first = true;
        auto add = [&](const std::pair<std::string, std::string>& l) {
            if (!first) out_ += ',';
            first = false;
            out_ += l.first;
            out_ += "=\"";
            out_ += escape_label_value(l.second);
            out_ += '"';
        };
        for (const auto& l : labels)
            add(l);
        if (extra != nullptr) add(*extra);
        out_ += '}';
    }
    out_ += ' ';
    out_ += value;
    out_ += '\n';
}

void Exposition::sample(std::string_view name, const Labels& labels, double value) {
    write_sample(name, labels, format_value(value));
}

void Exposition::sample(std::string_view name, const Labels& labels, uint64_t value) {
    write_sample(name, labels, std::to_string(value));
}

void Exposition::sample(std::string_view name, const Labels& labels, int64_t value) {
    write_sample(name, labels, std::to_string(value));
}

void Exposition::histogram(std::string_view name, const Labels& labels,
                           const std::vector<double>& bounds, const std::vector<uint64_t>& counts,
                           double sum) {
    std::string bucket = std::string(name) + "_bucket";
    uint64_t cumulative = 0;
    for (size_t i = 0; i <= bounds.size() && i < counts.size(); ++i) {
        cumulative += counts[i];
        std::pair<std::string, std::string> le{
            "le", i < bounds.size() ? format_value(bounds[i]) : std::string("+Inf")};
        write_sample(bucket, labels, std::to_string(cumulative), &le);
    }
    write_sample(std::string(name) + "_sum", labels, format_value(sum));
    write_sample(std::string(name) + "_count", labels, std::to_string(cumulative));
}

}  // namespace sb::metrics
