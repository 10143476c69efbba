#include "reference_framer.h"

namespace sb::fuzz {

namespace {

// SPEC §3: lengths (Content-Length, chunk-size) must fit a signed 64-bit integer.
constexpr uint64_t kMaxLength = 0x7FFF'FFFF'FFFF'FFFFull;
// SPEC §3: chunk extensions take at most 4 KiB per chunk line.
constexpr size_t kMaxExtension = 4096;

// RFC 9110 §5.6.2: tchar.
bool is_tchar(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
    switch (c) {
        case '!':
        case '#':
        case '$':
        case '%':
        case '&':
        case '\'':
        case '*':
        case '+':
        case '-':
        case '.':
        case '^':
        case '_':
        case '`':
        case '|':
        case '~':
            return true;
        default:
            return false;
    }
}
bool is_vchar(unsigned char c) {
    return c >= 0x21 && c <= 0x7E;
}  // RFC 5234 VCHAR
bool is_obs_text(unsigned char c) {
    return c >= 0x80;
}  // RFC 9110 §5.5
bool is_ws(unsigned char c) {
    return c == ' ' || c == '\t';
}  // SP / HTAB
bool is_digit(unsigned char c) {
    return c >= '0' && c <= '9';
}
int hex_value(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

std::string_view trim_ows(std::string_view s) {
    while (!s.empty() && is_ws(static_cast<unsigned char>(s.front())))
        s.remove_prefix(1);
    while (!s.empty() && is_ws(static_cast<unsigned char>(s.back())))
        s.remove_suffix(1);
    return s;
}

// RFC 9110 §5.6.1: a list; empty elements are parsed and ignored by a recipient.
std::vector<std::string> list_elements(std::string_view value) {
    std::vector<std::string> out;
    while (true) {
        size_t comma = value.find(',');
        std::string_view element = trim_ows(value.substr(0, comma));
        if (!element.empty()) out.push_back(lower(element));
        if (comma == std::string_view::npos) break;
        value.remove_prefix(comma + 1);
    }
    return out;
}

struct Field {
    std::string name;        // lower case
    std::string_view value;  // OWS trimmed
};

enum class Step { Ok, Incomplete, Invalid };

class Framer {
  public:
    Framer(std::string_view s, bool responses) : s_(s), responses_(responses) {}

    ReferenceResult run() {
        size_t pos = 0;
        while (pos < s_.size()) {
            ReferenceMessage m;
            m.begin = pos;
            Step st = message(pos, m);
            if (st != Step::Ok) {
                result_.last = m;
                if (st == Step::Incomplete) result_.end = ReferenceResult::End::Incomplete;
                return result_;
            }
            m.total_length = pos - m.begin;
            result_.messages.push_back(m);
            // What follows an upgrade, CONNECT or a close-delimited body is not HTTP.
            if (m.switches_protocol || m.framing == Framing::UntilClose) break;
        }
        result_.end = ReferenceResult::End::Clean;
        return result_;
    }

  private:
    Step invalid(size_t at, const char* why) {
        result_.end = ReferenceResult::End::Invalid;
        result_.offset = at;
        result_.in_head = in_head_;
        result_.reason = why;
        return Step::Invalid;
    }
    Step incomplete() {
        result_.in_head = in_head_;
        return Step::Incomplete;
    }

    // RFC 9112 §2.2: a line ends in CRLF. A bare CR is invalid, and SPEC §3 refuses the
    // bare LF that §2.2 lets a recipient take as a line end. Sets [pos, end) to the
    // line's content and next to the start of the following line.
    Step line(size_t pos, size_t& end, size_t& next) {
        for (size_t i = pos; i < s_.size(); ++i) {
            if (s_[i] == '\n') return invalid(i, "bare LF (RFC 9112 §2.2, SPEC §3)");
            if (s_[i] != '\r') continue;
            if (i + 1 == s_.size()) return incomplete();
            if (s_[i + 1] != '\n') return invalid(i, "bare CR (RFC 9112 §2.2)");
            end = i;
            next = i + 2;
            return Step::Ok;
        }
        return incomplete();
    }

    // One CRLF at pos, which it steps over.
    Step crlf(size_t& pos, const char* what) {
        if (pos >= s_.size()) return incomplete();
        if (s_[pos] != '\r') return invalid(pos, what);
        if (pos + 1 >= s_.size()) return incomplete();
        if (s_[pos + 1] != '\n') return invalid(pos + 1, "bare CR (RFC 9112 §2.2)");
        pos += 2;
        return Step::Ok;
    }

    // RFC 9112 §3: request-line = method SP request-target SP HTTP-version. The
    // request-target is read loosely (any visible bytes): which targets are valid does
    // not move a message's end.
    bool request_line(std::string_view l) {
        size_t i = 0;
        while (i < l.size() && is_tchar(static_cast<unsigned char>(l[i])))
            ++i;  // §9.1 method = token
        if (i == 0 || i == l.size() || l[i] != ' ') return false;
        method_ = l.substr(0, i);
        size_t t = ++i;
        while (i < l.size() && (is_vchar(static_cast<unsigned char>(l[i])) ||
                                is_obs_text(static_cast<unsigned char>(l[i]))))
            ++i;
        if (i == t || i == l.size() || l[i] != ' ') return false;
        return version(l.substr(i + 1)) && l.size() == i + 1 + 8;
    }

    // RFC 9112 §2.3: HTTP-version = "HTTP" "/" DIGIT "." DIGIT (case-sensitive).
    bool version(std::string_view v) {
        if (v.size() < 8 || v.substr(0, 5) != "HTTP/" ||
            !is_digit(static_cast<unsigned char>(v[5])) || v[6] != '.' ||
            !is_digit(static_cast<unsigned char>(v[7])))
            return false;
        major_ = v[5] - '0';
        minor_ = v[7] - '0';
        return true;
    }

    // RFC 9112 §4: status-line = HTTP-version SP status-code SP [ reason-phrase ].
    // Without the second SP when the reason is empty too ("HTTP/1.1 200"): many servers
    // send that, and it does not move the message's end.
    bool status_line(std::string_view l, int& status) {
        if (!version(l) || l.size() < 12 || l[8] != ' ') return false;
        for (size_t i = 9; i < 12; ++i)
            if (!is_digit(static_cast<unsigned char>(l[i]))) return false;
        status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
        if (status < 100 || status > 599) return false;  // RFC 9110 §15
        if (l.size() == 12) return true;
        if (l[12] != ' ') return false;
        for (size_t i = 13; i < l.size(); ++i) {  // reason-phrase
            auto c = static_cast<unsigned char>(l[i]);
            if (!is_ws(c) && !is_vchar(c) && !is_obs_text(c)) return false;
        }
        return true;
    }

    // RFC 9112 §5: field-line = field-name ":" OWS field-value OWS.
    Step field_line(size_t pos, size_t end, std::vector<Field>& fields) {
        // §5.2: obs-fold (a line starting with SP or HTAB) is refused (SPEC §3).
        if (is_ws(static_cast<unsigned char>(s_[pos]))) {
            return invalid(pos, "obsolete line folding (RFC 9112 §5.2)");
        }
        size_t i = pos;
        while (i < end && is_tchar(static_cast<unsigned char>(s_[i])))
            ++i;
        // §5.1: no whitespace between field-name and colon; field-name = token.
        if (i == pos || i == end || s_[i] != ':') {
            return invalid(i, "field-name is a token followed by ':' (RFC 9112 §5.1)");
        }
        std::string_view value = s_.substr(i + 1, end - i - 1);
        for (size_t k = 0; k < value.size(); ++k) {
            auto c = static_cast<unsigned char>(value[k]);
            // RFC 9110 §5.5: field-value is field-vchar, SP and HTAB.
            if (!is_ws(c) && !is_vchar(c) && !is_obs_text(c)) {
                return invalid(i + 1 + k, "invalid field-value byte (RFC 9110 §5.5)");
            }
        }
        fields.push_back({lower(s_.substr(pos, i - pos)), trim_ows(value)});
        return Step::Ok;
    }

    Step head(size_t& pos, ReferenceMessage& m, std::vector<Field>& fields) {
        in_head_ = true;
        size_t end = 0, next = 0;
        while (true) {
            Step st = line(pos, end, next);
            if (st != Step::Ok) return st;
            // RFC 9112 §2.2: a server SHOULD ignore empty lines before a request-line.
            if (end == pos && !responses_) {
                pos = next;
                if (pos == s_.size()) return incomplete();
                continue;
            }
            break;
        }
        std::string_view start = s_.substr(pos, end - pos);
        if (responses_ ? !status_line(start, m.status) : !request_line(start)) {
            return invalid(pos, responses_ ? "invalid status-line (RFC 9112 §4)"
                                           : "invalid request-line (RFC 9112 §3)");
        }
        pos = next;
        while (true) {
            Step st = line(pos, end, next);
            if (st != Step::Ok) return st;
            if (end == pos) break;  // RFC 9112 §2.1: the empty line ends the head
            st = field_line(pos, end, fields);
            if (st != Step::Ok) return st;
            pos = next;
        }
        pos = next;
        m.head_length = pos - m.begin;
        return Step::Ok;
    }

    // RFC 9112 §6.3: the length of a message body, rule by rule.
    Step framing(size_t at, ReferenceMessage& m, const std::vector<Field>& fields) {
        std::vector<std::string> codings;
        std::vector<std::string_view> lengths;
        bool upgrade_field = false, connection_upgrade = false;
        for (const auto& f : fields) {
            if (f.name == "transfer-encoding") {
                for (auto& c : list_elements(f.value))
                    codings.push_back(c);
                has_te_ = true;
            } else if (f.name == "content-length") {
                lengths.push_back(f.value);
            } else if (f.name == "upgrade") {
                upgrade_field = true;
            } else if (f.name == "connection") {
                for (auto& c : list_elements(f.value))
                    connection_upgrade |= c == "upgrade";
            }
        }
        if (!responses_) {
            // RFC 9110 §9.3.6, §7.8: CONNECT and an upgrade end HTTP on the connection.
            m.switches_protocol = method_ == "CONNECT" || (upgrade_field && connection_upgrade);
        } else {
            m.switches_protocol = m.status == 101;
        }
        // (1) A 1xx, 204 or 304 response has no body (a response to HEAD neither, which
        // a response stream alone cannot know).
        if (responses_ && (m.status / 100 == 1 || m.status == 204 || m.status == 304)) {
            m.framing = Framing::None;
            return Step::Ok;
        }
        if (!responses_ && m.switches_protocol) {
            m.framing = Framing::None;
            return Step::Ok;
        }
        // (3) Transfer-Encoding and Content-Length together "ought to be handled as an
        // error"; SPEC §3 does so.
        if (has_te_ && !lengths.empty()) {
            return invalid(at, "Transfer-Encoding with Content-Length (RFC 9112 §6.3 (3))");
        }
        if (has_te_) {
            // RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing.
            if (major_ == 1 && minor_ == 0) {
                return invalid(at, "Transfer-Encoding in HTTP/1.0 (RFC 9112 §6.1)");
            }
            // §6.1: chunked is applied at most once (a sender MUST NOT apply it twice).
            size_t chunked = 0;
            for (auto& c : codings)
                chunked += c == "chunked" ? 1 : 0;
            // (4) chunked last: the chunked coding frames the body. Otherwise a request
            // is invalid, and a response, which the RFC reads until close, is refused
            // by SPEC §3.
            if (codings.empty() || codings.back() != "chunked" || chunked != 1) {
                return invalid(at,
                               "Transfer-Encoding does not end in chunked once (RFC 9112 "
                               "§6.3 (4), SPEC §3)");
            }
            m.framing = Framing::Chunked;
            return Step::Ok;
        }
        if (!lengths.empty()) {
            // (5) RFC 9110 §8.6 lets a recipient take a list of equal values as one; this
            // reference, like SPEC §3, refuses any second value (one field, one number).
            if (lengths.size() > 1) return invalid(at, "Content-Length twice (RFC 9112 §6.3 (5))");
            std::string_view v = lengths[0];
            if (v.empty()) return invalid(at, "empty Content-Length (RFC 9110 §8.6)");
            uint64_t n = 0;
            for (char c : v) {
                if (!is_digit(static_cast<unsigned char>(c))) {
                    return invalid(at, "Content-Length is 1*DIGIT (RFC 9110 §8.6)");
                }
                auto d = static_cast<uint64_t>(c - '0');
                if (n > (kMaxLength - d) / 10)
                    return invalid(at, "Content-Length over 2^63 (SPEC §3)");
                n = n * 10 + d;
            }
            // (6) that many bytes.
            m.framing = Framing::ContentLength;
            m.content_length = n;
            return Step::Ok;
        }
        // (7) a request without either has no body; (8) a response is read until close.
        m.framing = responses_ ? Framing::UntilClose : Framing::None;
        return Step::Ok;
    }

    // RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name
    //                                 [ BWS "=" BWS chunk-ext-val ] ),
    // from pos up to (not over) the CR ending the line. RFC 9110 §5.6.3: BWS is parsed
    // by a recipient; llhttp refuses it, which is recorded.
    Step chunk_ext(size_t& pos, ReferenceMessage& m) {
        // SPEC §3: over 4 KiB of extensions on one line is invalid, however it goes on.
        size_t limit = pos + kMaxExtension;
        if (s_.size() > limit &&
            s_.substr(pos, kMaxExtension + 1).find('\r') == std::string_view::npos) {
            return invalid(limit, "chunk extension over 4 KiB (SPEC §3)");
        }
        auto peek = [&]() -> int {
            return pos < s_.size() ? static_cast<unsigned char>(s_[pos]) : -1;
        };
        // llhttp refuses BWS anywhere in a chunk-ext, even where it is still incomplete.
        auto skip_ws = [&]() {
            bool any = false;
            while (peek() == ' ' || peek() == '\t') {
                ++pos;
                any = true;
            }
            if (any) m.extension_llhttp_refuses = true;
            return any;
        };
        bool pending_ws = false;  // BWS already read, to be followed by ";"
        bool after_token_value = false;
        while (true) {
            bool ws = skip_ws() || pending_ws;
            pending_ws = false;
            int c = peek();
            if (c < 0) return incomplete();
            if (c == '\r') {
                if (ws)
                    return invalid(pos,
                                   "whitespace before the end of a chunk line (RFC 9112 §7.1.1)");
                return Step::Ok;
            }
            if (c != ';') return invalid(pos, "chunk-ext starts with ';' (RFC 9112 §7.1.1)");
            if (ws || after_token_value) m.extension_llhttp_refuses = true;
            after_token_value = false;
            ++pos;
            if (skip_ws()) m.extension_llhttp_refuses = true;
            // chunk-ext-name = token
            if (peek() < 0) return incomplete();
            if (!is_tchar(static_cast<unsigned char>(peek()))) {
                return invalid(pos, "chunk-ext-name is a token (RFC 9112 §7.1.1)");
            }
            while (peek() >= 0 && is_tchar(static_cast<unsigned char>(peek())))
                ++pos;
            ws = skip_ws();
            c = peek();
            if (c < 0) return incomplete();
            if (c != '=') {
                pending_ws = ws;
                continue;
            }
            if (ws) m.extension_llhttp_refuses = true;
            ++pos;
            if (skip_ws()) m.extension_llhttp_refuses = true;
            c = peek();
            if (c < 0) return incomplete();
            // chunk-ext-val = token / quoted-string
            if (c == '"') {
                ++pos;
                while (true) {  // RFC 9110 §5.6.4 quoted-string
                    c = peek();
                    if (c < 0) return incomplete();
                    ++pos;
                    if (c == '"') break;
                    if (c == '\\') {  // quoted-pair = "\" ( HTAB / SP / VCHAR / obs-text )
                        m.extension_llhttp_refuses = true;
                        c = peek();
                        if (c < 0) return incomplete();
                        if (!is_ws(static_cast<unsigned char>(c)) &&
                            !is_vchar(static_cast<unsigned char>(c)) &&
                            !is_obs_text(static_cast<unsigned char>(c)))
                            return invalid(pos, "invalid quoted-pair (RFC 9110 §5.6.4)");
                        ++pos;
                        continue;
                    }
                    // qdtext = HTAB / SP / %x21 / %x23-5B / %x5D-7E / obs-text
                    auto u = static_cast<unsigned char>(c);
                    if (is_obs_text(u)) {
                        m.extension_llhttp_refuses = true;
                    } else if (!is_ws(u) && !is_vchar(u)) {
                        return invalid(pos - 1, "invalid qdtext (RFC 9110 §5.6.4)");
                    }
                }
            } else if (is_tchar(static_cast<unsigned char>(c))) {
                while (peek() >= 0 && is_tchar(static_cast<unsigned char>(peek())))
                    ++pos;
                after_token_value = true;
            } else {
                return invalid(pos, "chunk-ext-val is a token or quoted-string (RFC 9112 §7.1.1)");
            }
        }
    }

    // RFC 9112 §7.1: chunked-body = *chunk last-chunk trailer-section CRLF.
    Step chunked(size_t& pos, ReferenceMessage& m) {
        while (true) {
            // chunk-size = 1*HEXDIG
            size_t digits = pos;
            uint64_t size = 0;
            while (pos < s_.size() && hex_value(static_cast<unsigned char>(s_[pos])) >= 0) {
                auto d = static_cast<uint64_t>(hex_value(static_cast<unsigned char>(s_[pos])));
                if (size > (kMaxLength - d) / 16)
                    return invalid(pos, "chunk-size over 2^63 (SPEC §3)");
                size = size * 16 + d;
                ++pos;
            }
            if (pos == s_.size()) return incomplete();
            if (pos == digits) return invalid(pos, "chunk-size is 1*HEXDIG (RFC 9112 §7.1)");
            Step st = chunk_ext(pos, m);
            if (st != Step::Ok) return st;
            st = crlf(pos, "chunk line ends in CRLF (RFC 9112 §7.1)");
            if (st != Step::Ok) return st;
            if (size == 0) break;  // last-chunk = 1*("0") [ chunk-ext ] CRLF
            if (s_.size() - pos < size) return incomplete();
            pos += size;
            m.payload_length += size;
            st = crlf(pos, "chunk-data is followed by CRLF (RFC 9112 §7.1)");
            if (st != Step::Ok) return st;
        }
        // RFC 9112 §7.1.2: trailer-section = *( field-line CRLF ), then the final CRLF.
        while (true) {
            if (pos >= s_.size()) return incomplete();
            if (s_[pos] == '\r') return crlf(pos, "");
            if (s_[pos] == '\n') return invalid(pos, "bare LF (RFC 9112 §2.2, SPEC §3)");
            // Char by char, not line by line: a trailer that cannot be valid is invalid
            // before its line ends, as it is for an incremental reader.
            if (is_ws(static_cast<unsigned char>(s_[pos]))) {
                return invalid(pos, "obsolete line folding (RFC 9112 §5.2)");
            }
            size_t name = pos;
            while (pos < s_.size() && is_tchar(static_cast<unsigned char>(s_[pos])))
                ++pos;
            if (pos == s_.size()) return incomplete();
            if (pos == name || s_[pos] != ':') {
                return invalid(pos, "field-name is a token followed by ':' (RFC 9112 §5.1)");
            }
            std::string field = lower(s_.substr(name, pos - name));
            if (field == "transfer-encoding" || field == "content-length") {
                m.framing_field_in_trailers = true;
            }
            ++pos;
            while (pos < s_.size() && s_[pos] != '\r') {
                auto c = static_cast<unsigned char>(s_[pos]);
                if (c == '\n') return invalid(pos, "bare LF (RFC 9112 §2.2, SPEC §3)");
                if (!is_ws(c) && !is_vchar(c) && !is_obs_text(c)) {
                    return invalid(pos, "invalid field-value byte (RFC 9110 §5.5)");
                }
                ++pos;
            }
            Step st = crlf(pos, "");
            if (st != Step::Ok) return st;
        }
    }

    Step message(size_t& pos, ReferenceMessage& m) {
        has_te_ = false;
        method_ = {};
        major_ = minor_ = 0;
        std::vector<Field> fields;
        Step st = head(pos, m, fields);
        if (st != Step::Ok) return st;
        // The framing is decided from the head: its errors are the head's.
        st = framing(m.begin + m.head_length, m, fields);
        if (st != Step::Ok) return st;
        in_head_ = false;
        switch (m.framing) {
            case Framing::None:
                return Step::Ok;
            case Framing::ContentLength:
                if (s_.size() - pos < m.content_length) return incomplete();
                pos += m.content_length;
                m.payload_length = m.content_length;
                return Step::Ok;
            case Framing::UntilClose:
                m.payload_length = s_.size() - pos;
                pos = s_.size();
                return Step::Ok;
            case Framing::Chunked:
                return chunked(pos, m);
        }
        return Step::Ok;
    }

    std::string_view s_;
    bool responses_;
    ReferenceResult result_;
    bool in_head_ = false;
    bool has_te_ = false;
    std::string_view method_;
    int major_ = 0, minor_ = 0;
};

}  // namespace

ReferenceResult reference_frame(std::string_view stream, bool responses) {
    return Framer(stream, responses).run();
}

}  // namespace sb::fuzz
