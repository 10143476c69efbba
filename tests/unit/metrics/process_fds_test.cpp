// Counting this process's open descriptors (/proc/self/fd) and reading their limit.
#include "metrics/process_fds.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

namespace sb::metrics {
namespace {

TEST(ProcessFds, CountsADescriptorOpenedAndClosed) {
    FdUsage before = process_fds();
    ASSERT_GT(before.open, 2u);  // stdin, stdout, stderr at least
    int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    ASSERT_GE(fd, 0);
    FdUsage during = process_fds();
    ::close(fd);
    FdUsage after = process_fds();
    EXPECT_EQ(during.open, before.open + 1);
    EXPECT_EQ(after.open, before.open);
}

TEST(ProcessFds, MaxIsTheSoftLimit) {
    rlimit limit{};
    ASSERT_EQ(getrlimit(RLIMIT_NOFILE, &limit), 0);
    EXPECT_EQ(process_fds().max, static_cast<uint64_t>(limit.rlim_cur));
}

}  // namespace
}  // namespace sb::metrics
