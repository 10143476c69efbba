// uv::Slab: slots are distinct, aligned and writable; freed slots come back first;
// slabs are added only when one is full; churn stays within the peak; and under ASan
// a freed slot is poisoned (a session used after it is gone is still reported). Heap
// trims may start on several threads at once.
#include "uv/slab.h"

#include <gtest/gtest.h>

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <cstring>
#include <set>
#include <thread>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

namespace sb::uv {
namespace {

TEST(SlabTest, SlotsAreDistinctAlignedAndWritable) {
    Slab slab(37);  // rounded up to 40
    std::vector<char*> slots;
    for (int i = 0; i < 100; ++i) {
        auto* p = static_cast<char*>(slab.allocate());
        ASSERT_NE(p, nullptr);
        EXPECT_EQ(reinterpret_cast<uintptr_t>(p) % 8, 0u);
        std::memset(p, i, 37);
        slots.push_back(p);
    }
    for (size_t i = 1; i < slots.size(); ++i)
        EXPECT_GE(slots[i] - slots[i - 1], 40) << "slots overlap";
    for (int i = 0; i < 100; ++i)
        EXPECT_EQ(slots[static_cast<size_t>(i)][36], static_cast<char>(i)) << "slot " << i;
    EXPECT_EQ(slab.slabs(), 1u);
}

TEST(SlabTest, FreedSlotsAreReusedBeforeNewOnes) {
    Slab slab(64);
    void* a = slab.allocate();
    void* b = slab.allocate();
    slab.free(a);
    slab.free(b);
    // Last freed, first reused: the slot most likely still in cache.
    EXPECT_EQ(slab.allocate(), b);
    EXPECT_EQ(slab.allocate(), a);
}

TEST(SlabTest, GrowsByWholeSlabsWhenOneIsFull) {
    constexpr size_t kSlot = 1000;
    Slab slab(kSlot);
    const size_t per_slab = Slab::kSlabBytes / kSlot;
    std::set<void*> seen;
    for (size_t i = 0; i < per_slab; ++i)
        seen.insert(slab.allocate());
    EXPECT_EQ(slab.slabs(), 1u);
    seen.insert(slab.allocate());
    EXPECT_EQ(slab.slabs(), 2u);
    EXPECT_EQ(seen.size(), per_slab + 1);
}

TEST(SlabTest, ChurnKeepsMemoryAtThePeak) {
    // Sessions come and go: memory follows the most alive at once, not the total.
    Slab slab(900);
    std::vector<void*> live;
    for (int round = 0; round < 50; ++round) {
        for (int i = 0; i < 200; ++i)
            live.push_back(slab.allocate());
        for (void* p : live)
            slab.free(p);
        live.clear();
    }
    EXPECT_EQ(slab.slabs(), 1u);
}

// Every worker trims the heap after its own handshake burst, so the first trims can
// run at once on several threads. Under ASan, malloc_trim initialised glibc's own
// arena (which ASan's allocator never uses) on first call without a lock, and a second
// thread walked it half-built: the proxy crashed in mtrim (CI, stop 22). Each child
// process starts with that arena untouched and races its first trims.
TEST(SlabTest, FirstHeapTrimsOnSeveralThreadsAtOnce) {
    for (int child = 0; child < 40; ++child) {
        pid_t pid = ::fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            std::atomic<bool> go{false};
            std::vector<std::thread> threads;
            for (int t = 0; t < 8; ++t) {
                threads.emplace_back([&go] {
                    while (!go.load()) {
                    }
                    Slab::trim_heap();
                });
            }
            go = true;
            for (auto& t : threads)
                t.join();
            ::_exit(0);
        }
        int status = 0;
        ASSERT_EQ(::waitpid(pid, &status, 0), pid);
        ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
            << "child " << child << " status " << status;
    }
}

#if defined(__SANITIZE_ADDRESS__)
TEST(SlabTest, FreedSlotIsPoisonedUntilReused) {
    Slab slab(128);
    auto* p = static_cast<char*>(slab.allocate());
    EXPECT_FALSE(__asan_address_is_poisoned(p + 100));
    slab.free(p);
    EXPECT_TRUE(__asan_address_is_poisoned(p + 100));
    ASSERT_EQ(slab.allocate(), p);
    EXPECT_FALSE(__asan_address_is_poisoned(p + 100));
}
#endif

}  // namespace
}  // namespace sb::uv
