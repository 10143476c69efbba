# Read by cpack before it builds each package (CPACK_PROJECT_CONFIG_FILE): refuse to
# build a package that would be incomplete or would carry a stale changelog.

foreach(page IN LISTS CPACK_SB_MAN_PAGES)
  if(NOT EXISTS "${page}")
    message(FATAL_ERROR "${page} is missing: build the project first, with Debian's "
                        "pandoc installed (tools/setup) when it was configured")
  endif()
endforeach()

# The newest entry of packaging/changelog must be this version: a release adds one.
file(STRINGS "${CPACK_SB_CHANGELOG}" sb_first_line LIMIT_COUNT 1)
set(sb_expected "${CPACK_PACKAGE_VERSION}-${CPACK_SB_RELEASE}")
if(NOT sb_first_line MATCHES "^switchboard \\(([^)]+)\\) ")
  message(FATAL_ERROR "${CPACK_SB_CHANGELOG}: the first line is not a Debian changelog entry")
endif()
if(NOT CMAKE_MATCH_1 STREQUAL sb_expected)
  message(FATAL_ERROR "${CPACK_SB_CHANGELOG}: the newest entry is ${CMAKE_MATCH_1}, "
                      "but this package is ${sb_expected}: add an entry for it")
endif()
