// The live status page served at GET / on the admin listener: one HTML document with
// its CSS and script inline (no external assets), which reads /status once and then
// follows /events (server-sent events) to show connection and message rates live.
#pragma once

#include <string_view>

namespace sb::admin {

std::string_view status_page_html();

}  // namespace sb::admin
