#include "metrics/process_fds.h"

#include <dirent.h>
#include <sys/resource.h>

namespace sb::metrics {

FdUsage process_fds() {
    FdUsage usage;
    if (DIR* dir = ::opendir("/proc/self/fd")) {
        uint64_t entries = 0;
        while (const dirent* entry = ::readdir(dir)) {
            if (entry->d_name[0] != '.') ++entries;
        }
        // The directory stream holds a descriptor of its own while it is read: it is
        // not one the process had open.
        usage.open = entries > 0 ? entries - 1 : 0;
        ::closedir(dir);
    }
    rlimit limit{};
    if (::getrlimit(RLIMIT_NOFILE, &limit) == 0) usage.max = static_cast<uint64_t>(limit.rlim_cur);
    return usage;
}

}  // namespace sb::metrics
