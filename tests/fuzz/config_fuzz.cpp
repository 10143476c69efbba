// libFuzzer target: a configuration file's text through config::load_string, the code
// --check, startup and SIGHUP run on every file (load_file reads the file and calls it).
//
// Asserts that nothing crashes, hangs or throws, whatever the bytes, and that every
// error names the file and a real position (line and column from 1): an operator must
// always be told where. Certificates are not loaded here (Generation::build reads the
// files a configuration names, which a fuzzer must not open).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "config/loader.h"
#include "fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    std::string_view text(reinterpret_cast<const char*>(data), size);
    auto result = sb::config::load_string(text, "fuzz.toml");
    SB_FUZZ_CHECK(result.ok() == (result.config != nullptr), "a config with errors, or none");
    for (const auto& e : result.errors) {
        SB_FUZZ_CHECK(e.file == "fuzz.toml", "%s", e.to_string().c_str());
        SB_FUZZ_CHECK(e.line > 0 && e.column > 0, "no position: %s", e.to_string().c_str());
        SB_FUZZ_CHECK(!e.message.empty(), "no message: %s", e.to_string().c_str());
    }
    return 0;
}
