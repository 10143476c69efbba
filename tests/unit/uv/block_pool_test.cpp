// uv::BlockPool: blocks come back for reuse, the spare list is bounded, and trim()
// gives spare blocks back so an idle worker does not keep a handshake burst's blocks.
#include "uv/block_pool.h"

#include <gtest/gtest.h>

#include <vector>

namespace sb::uv {
namespace {

TEST(BlockPoolTest, GivenBlocksAreReusedAndCounted) {
    BlockPool pool;
    Block* a = pool.take();
    ASSERT_NE(a, nullptr);
    EXPECT_EQ(a->capacity, BlockPool::kBlockSize);
    EXPECT_EQ(pool.in_use(), 1u);
    pool.give(a);
    EXPECT_EQ(pool.in_use(), 0u);
    EXPECT_EQ(pool.free_count(), 1u);
    Block* b = pool.take();
    EXPECT_EQ(b, a);
    EXPECT_EQ(b->size, 0u);
    EXPECT_EQ(b->next, nullptr);
    pool.give(b);
}

TEST(BlockPoolTest, SpareListIsBoundedByMaxFree) {
    BlockPool pool(4);
    std::vector<Block*> blocks;
    for (int i = 0; i < 10; ++i)
        blocks.push_back(pool.take());
    for (Block* b : blocks)
        pool.give(b);
    EXPECT_EQ(pool.free_count(), 4u);
}

// Once: every handshake's reads and heads went through blocks, and after a burst of
// 5,000 the worker kept 256 spare 16 KiB blocks: 640 bytes more per idle connection.
TEST(BlockPoolTest, TrimKeepsOnlyTheGivenNumberOfSpareBlocks) {
    BlockPool pool;
    std::vector<Block*> blocks;
    for (int i = 0; i < 100; ++i)
        blocks.push_back(pool.take());
    for (Block* b : blocks)
        pool.give(b);
    EXPECT_EQ(pool.free_count(), 100u);
    pool.trim(16);
    EXPECT_EQ(pool.free_count(), 16u);
    pool.trim(0);
    EXPECT_EQ(pool.free_count(), 0u);
    Block* again = pool.take();  // still works after a trim
    ASSERT_NE(again, nullptr);
    pool.give(again);
}

}  // namespace
}  // namespace sb::uv
