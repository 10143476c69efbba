// docs/configuration.md (which becomes switchboard.toml(5)) documents every key the
// schema knows: a key added to a schema table without documentation fails here.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "config/loader.h"

namespace sb::config {
namespace {

TEST(ConfigurationReference, DocumentsEverySchemaKey) {
    std::ifstream in(std::string(SB_SOURCE_DIR) + "/docs/configuration.md");
    ASSERT_TRUE(in) << "docs/configuration.md not found";
    std::stringstream text;
    text << in.rdbuf();
    const std::string doc = text.str();
    for (const auto& key : schema_keys()) {
        // A key appears as `key` in a table row; a sub-table as a [... .key] heading.
        std::string leaf = key.path.substr(key.path.rfind('.') + 1);
        bool documented = doc.find("`" + leaf + "`") != std::string::npos ||
                          doc.find("." + leaf + "]`") != std::string::npos;
        EXPECT_TRUE(documented) << key.path << " is not documented";
    }
}

}  // namespace
}  // namespace sb::config
