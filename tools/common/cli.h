// Command-line helpers shared by the tools: long options written `--name VALUE` or
// `--name=VALUE`, and strict number parsing (the whole text must be a number).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace sb::tools {

class ArgReader {
  public:
    ArgReader(int argc, char** argv) : argc_(argc), argv_(argv) {}

    // Moves to the next argument. Returns false at the end. `name` is the option
    // without any `=VALUE` part.
    bool next(std::string_view& name);
    // The current option's value: the `=VALUE` part or the following argument.
    // Returns false (and sets error()) when there is none.
    bool value(std::string_view& out);
    const std::string& error() const { return error_; }

  private:
    int argc_;
    char** argv_;
    int index_ = 0;
    std::string_view current_;
    std::string_view inline_value_;
    bool has_inline_ = false;
    std::string error_;
};

// Parses a non-negative integer; rejects signs, blanks and trailing text.
bool parse_u64(std::string_view text, uint64_t& out);
// Parses a non-negative decimal number (seconds, rates).
bool parse_non_negative(std::string_view text, double& out);

// Raises the soft descriptor limit to the hard one: thousands of connections need
// thousands of descriptors, more than the usual shell default of 1,024.
void raise_descriptor_limit();

}  // namespace sb::tools
