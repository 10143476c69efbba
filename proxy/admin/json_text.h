// JSON text for the admin listener's answers, written by hand from an nlohmann tree
// so that no string can make the writer fail.
//
// nlohmann::json throws type_error 316 while dumping a string that is not valid
// UTF-8, and the admin answers quote bytes that came from the network (a /route key
// such as %FF) or from files. Here every string, object keys included, is written
// through append_json_string(), which escapes each byte that is not part of a valid
// UTF-8 sequence as `\udcXX` (XX its value in hex): the lone low surrogate U+DC00 +
// byte, the convention of Python's "surrogateescape" (PEP 383). Valid UTF-8 never
// encodes a surrogate, so an escaped byte can never be confused with real text, and
// the exact bytes come back with
//     json.loads(body)["key"].encode("utf-8", "surrogateescape")
//
// Pure functions; any thread.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <string_view>

namespace sb::admin {

// `value` as JSON text: indent < 0 is compact (no spaces, like dump()), indent >= 0
// puts each member on its own line, indented by that many spaces per level (like
// dump(indent)). Never throws on any content (memory aside).
std::string json_text(const nlohmann::ordered_json& value, int indent = -1);

// Appends `bytes` as a JSON string literal, quotes included: valid UTF-8 as it is
// (not \u-escaped), `"` and `\` and control characters escaped as JSON requires, and
// every other byte as `\udcXX` (see above).
void append_json_string(std::string& out, std::string_view bytes);

// The length of the valid UTF-8 sequence that starts `bytes` (1 to 4), or 0 when its
// first byte does not start one (a stray continuation byte, an overlong form, a
// surrogate, a code point over U+10FFFF, or a sequence cut short). RFC 3629 §4.
size_t utf8_sequence_length(std::string_view bytes);

}  // namespace sb::admin
