#include "admin/json_text.h"

namespace sb::admin {

namespace {

constexpr char kHex[] = "0123456789abcdef";

bool is_continuation(unsigned char c) {
    return (c & 0xC0) == 0x80;
}

void append_indent(std::string& out, int indent, int depth) {
    out.push_back('\n');
    out.append(static_cast<size_t>(indent) * static_cast<size_t>(depth), ' ');
}

void write(std::string& out, const nlohmann::ordered_json& value, int indent, int depth) {
    if (value.is_string()) {
        append_json_string(out, value.get_ref<const std::string&>());
    } else if (value.is_object() || value.is_array()) {
        bool object = value.is_object();
        if (value.empty()) {
            out += object ? "{}" : "[]";
            return;
        }
        out.push_back(object ? '{' : '[');
        bool first = true;
        for (auto it = value.begin(); it != value.end(); ++it) {
            if (!first) out.push_back(',');
            first = false;
            if (indent >= 0) append_indent(out, indent, depth + 1);
            if (object) {
                append_json_string(out, it.key());
                out += indent >= 0 ? ": " : ":";
            }
            write(out, it.value(), indent, depth + 1);
        }
        if (indent >= 0) append_indent(out, indent, depth);
        out.push_back(object ? '}' : ']');
    } else {
        // Numbers, booleans and null hold no text: nlohmann's own writer cannot fail
        // on them (a NaN is written as null).
        out += value.dump();
    }
}

}  // namespace

size_t utf8_sequence_length(std::string_view bytes) {
    if (bytes.empty()) return 0;
    auto at = [&](size_t i) { return static_cast<unsigned char>(bytes[i]); };
    unsigned char c = at(0);
    if (c < 0x80) return 1;
    size_t length;
    // The second byte's range rules out overlong forms (E0, F0), surrogates (ED) and
    // code points over U+10FFFF (F4); RFC 3629 §4, the table of well-formed sequences.
    unsigned char low = 0x80, high = 0xBF;
    if (c >= 0xC2 && c <= 0xDF) {
        length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        length = 3;
        if (c == 0xE0) low = 0xA0;
        if (c == 0xED) high = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        length = 4;
        if (c == 0xF0) low = 0x90;
        if (c == 0xF4) high = 0x8F;
    } else {
        return 0;  // a continuation byte, C0, C1 (always overlong) or F5..FF
    }
    if (bytes.size() < length) return 0;
    if (at(1) < low || at(1) > high) return 0;
    for (size_t i = 2; i < length; ++i) {
        if (!is_continuation(at(i))) return 0;
    }
    return length;
}

void append_json_string(std::string& out, std::string_view bytes) {
    out.push_back('"');
    size_t i = 0;
    while (i < bytes.size()) {
        auto c = static_cast<unsigned char>(bytes[i]);
        if (c >= 0x80) {
            size_t n = utf8_sequence_length(bytes.substr(i));
            if (n > 0) {
                out.append(bytes.substr(i, n));
                i += n;
            } else {
                // Not UTF-8: one escape per byte, so the bytes can be recovered.
                out += "\\udc";
                out.push_back(kHex[c >> 4]);
                out.push_back(kHex[c & 0x0F]);
                ++i;
            }
            continue;
        }
        switch (c) {
            case '"':
                out += "\\\"";
                break;
            case '\\':
                out += "\\\\";
                break;
            case '\b':
                out += "\\b";
                break;
            case '\f':
                out += "\\f";
                break;
            case '\n':
                out += "\\n";
                break;
            case '\r':
                out += "\\r";
                break;
            case '\t':
                out += "\\t";
                break;
            default:
                if (c < 0x20) {
                    out += "\\u00";
                    out.push_back(kHex[c >> 4]);
                    out.push_back(kHex[c & 0x0F]);
                } else {
                    out.push_back(static_cast<char>(c));
                }
        }
        ++i;
    }
    out.push_back('"');
}

std::string json_text(const nlohmann::ordered_json& value, int indent) {
    std::string out;
    write(out, value, indent, 0);
    return out;
}

}  // namespace sb::admin
