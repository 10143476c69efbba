#include "config/prescan.h"

namespace sb::config {

namespace {

// The scanner's one piece of state besides counters: which kind of text it is in.
enum class Mode {
    Code,                // keys, values, brackets
    Comment,             // '#' to the end of the line
    BasicString,         // "...": backslash escapes; ends at '"' or, if malformed, at the line end
    LiteralString,       // '...': no escapes; ends at '\'' or at the line end
    MultiBasicString,    // """...""": backslash escapes; ends at """
    MultiLiteralString,  // '''...''': ends at '''
};

class Scanner {
  public:
    explicit Scanner(std::string_view text) : text_(text) {}

    std::optional<PrescanError> run() {
        // toml11 3.7 reads out of bounds when it reports invalid UTF-8 inside a
        // multi-line string (parse_ml_literal_string resets a location over the token to
        // an iterator of the whole file), so bad UTF-8 never reaches it.
        if (size_t bad = first_invalid_utf8(); bad != std::string_view::npos) {
            return error(bad, "invalid UTF-8 (a configuration file is UTF-8 text)");
        }
        // Checked as the scan reaches the limit, so the error points at the first byte
        // past it (and a huge file costs one megabyte of scanning, not all of it).
        const size_t end = text_.size() > kMaxFileBytes ? kMaxFileBytes : text_.size();
        while (at_ < end) {
            if (at_ - line_start_ >= kMaxLineBytes && text_[at_] != '\n') {
                return error(line_start_ + kMaxLineBytes,
                             "a line is longer than 4096 bytes (the limit keeps parsing fast)");
            }
            if (auto e = step()) return e;
        }
        if (text_.size() > kMaxFileBytes) {
            return error(kMaxFileBytes,
                         "the file is larger than 1 MiB (a configuration is never "
                         "that long; is this the right file?)");
        }
        return std::nullopt;
    }

  private:
    // The offset of the first byte that is not part of well-formed UTF-8 (RFC 3629: no
    // overlong forms, no surrogates, nothing above U+10FFFF), or npos.
    size_t first_invalid_utf8() const {
        const size_t end = text_.size() > kMaxFileBytes ? kMaxFileBytes : text_.size();
        size_t i = 0;
        while (i < end) {
            const auto b = static_cast<unsigned char>(text_[i]);
            if (b < 0x80) {
                ++i;
                continue;
            }
            size_t n = 0;
            unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
            if (b >= 0xC2 && b <= 0xDF) {
                n = 1;
            } else if (b >= 0xE0 && b <= 0xEF) {
                n = 2;
                if (b == 0xE0) lo = 0xA0;
                if (b == 0xED) hi = 0x9F;
            } else if (b >= 0xF0 && b <= 0xF4) {
                n = 3;
                if (b == 0xF0) lo = 0x90;
                if (b == 0xF4) hi = 0x8F;
            } else {
                return i;
            }
            if (i + n >= text_.size()) return i;
            for (size_t k = 1; k <= n; ++k) {
                const auto c = static_cast<unsigned char>(text_[i + k]);
                if (k == 1 ? (c < lo || c > hi) : (c < 0x80 || c > 0xBF)) return i;
            }
            i += n + 1;
        }
        return std::string_view::npos;
    }

    char peek(size_t offset) const {
        return at_ + offset < text_.size() ? text_[at_ + offset] : '\0';
    }
    bool starts(std::string_view s) const { return text_.substr(at_, s.size()) == s; }

    PrescanError error(size_t offset, const char* message) const {
        // Counted again from the start: this runs once, and it stays right whatever
        // token the scan was in the middle of.
        size_t line = 1;
        size_t start = 0;
        for (size_t i = 0; i < offset && i < text_.size(); ++i) {
            if (text_[i] == '\n') {
                ++line;
                start = i + 1;
            }
        }
        return {static_cast<unsigned>(line), static_cast<unsigned>(offset - start + 1), message};
    }

    // A line end ends any key too (a key never spans lines; a multi-line string in
    // one is toml11's to reject).
    void newline() {
        line_start_ = at_ + 1;
        end_key();
    }

    // Consumes one byte (or one token such as """) and reports a limit it crosses.
    std::optional<PrescanError> step() {
        const char c = text_[at_];
        switch (mode_) {
            case Mode::Comment:
                if (c == '\n') {
                    mode_ = Mode::Code;
                    newline();
                }
                ++at_;
                return std::nullopt;
            case Mode::BasicString:
            case Mode::LiteralString:
                if (c == '\n') {  // malformed (toml11 says so); resynchronise here
                    mode_ = Mode::Code;
                    newline();
                } else if (c == '\\' && mode_ == Mode::BasicString && peek(1) != '\n') {
                    ++at_;  // the escaped byte cannot end the string
                } else if (c == (mode_ == Mode::BasicString ? '"' : '\'')) {
                    mode_ = Mode::Code;
                }
                ++at_;
                return std::nullopt;
            case Mode::MultiBasicString:
            case Mode::MultiLiteralString: {
                const bool basic = mode_ == Mode::MultiBasicString;
                if (c == '\n') {
                    newline();
                } else if (c == '\\' && basic) {
                    if (peek(1) == '\n') {
                        ++at_;
                        newline();
                    }
                    ++at_;  // skip the escaped byte
                } else if (starts(basic ? "\"\"\"" : "'''")) {
                    // Up to two more quotes belong to the string ("""a"""" ends in a quote).
                    at_ += 3;
                    for (int i = 0; i < 2 && peek(0) == (basic ? '"' : '\''); ++i)
                        ++at_;
                    mode_ = Mode::Code;
                    return std::nullopt;
                }
                ++at_;
                return std::nullopt;
            }
            case Mode::Code:
                break;
        }
        return code(c);
    }

    std::optional<PrescanError> code(char c) {
        switch (c) {
            case '#':
                mode_ = Mode::Comment;
                break;
            case '"':
            case '\'':
                start_key_part();
                if (starts(c == '"' ? "\"\"\"" : "'''")) {
                    mode_ = c == '"' ? Mode::MultiBasicString : Mode::MultiLiteralString;
                    at_ += 3;
                    return std::nullopt;
                }
                mode_ = c == '"' ? Mode::BasicString : Mode::LiteralString;
                break;
            case '[':
            case '{':
                end_key();
                if (++depth_ > kMaxNesting) {
                    return error(at_, "arrays and inline tables are nested more than 32 deep");
                }
                break;
            case ']':
            case '}':
                end_key();
                if (depth_ > 0) --depth_;  // unbalanced text is toml11's to report
                break;
            case '\n':
                newline();
                break;
            case '=':
            case ',':
                end_key();
                break;
            case '.':
                // A run of dots not separated by any of = , [ ] { } or a line end is a
                // dotted key: values hold at most one (1.5, 07:32:00.999).
                start_key_part();
                if (++dots_ >= kMaxKeyParts) {
                    return error(key_start_, "a dotted key has more than 32 parts");
                }
                break;
            case ' ':
            case '\t':
            case '\r':
                break;
            default:
                start_key_part();
                break;
        }
        ++at_;
        return std::nullopt;
    }

    void start_key_part() {
        if (!in_key_) {
            in_key_ = true;
            key_start_ = at_;
        }
    }
    void end_key() {
        in_key_ = false;
        dots_ = 0;
    }

    std::string_view text_;
    size_t at_ = 0;
    size_t line_start_ = 0;
    Mode mode_ = Mode::Code;
    size_t depth_ = 0;
    bool in_key_ = false;
    size_t key_start_ = 0;
    size_t dots_ = 0;
};

}  // namespace

std::optional<PrescanError> prescan(std::string_view text) {
    return Scanner(text).run();
}

}  // namespace sb::config
