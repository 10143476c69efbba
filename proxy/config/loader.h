// load(): TOML text → validated Config, or every error with its position.
//
// Startup, `--check` and SIGHUP all call this same function (the `nginx -t` rule), so a
// file that passes `--check` is exactly a file that loads. Certificates are not read
// here: tls/ does that on top of a loaded Config.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"
#include "config/decoder.h"

namespace sb::config {

struct LoadResult {
    ConfigPtr config;                 // set only when errors is empty
    std::vector<ConfigError> errors;  // sorted by position

    bool ok() const { return errors.empty(); }
};

// Reads and decodes the file at `path`. A file that cannot be read is one error at 0:0.
LoadResult load_file(const std::string& path);

// Decodes TOML text; `name` stands for the file name in error positions. Text past the
// bounds of config/prescan.h (size, line length, nesting, dotted keys) is one error at
// its position, and never reaches toml11. load_file() reads the file and calls this.
LoadResult load_string(std::string_view text, const std::string& name);

// Every dotted key the schema knows ("server.workers", "pools.*.websocket.ping_interval"),
// with whether it is implemented; tests check docs/configuration.md covers them all.
struct SchemaKey {
    std::string path;
    bool supported;
};
std::vector<SchemaKey> schema_keys();

}  // namespace sb::config
