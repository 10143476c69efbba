#include "uv/block_pool.h"

#include <cstdlib>
#include <new>

namespace sb::uv {

BlockPool::~BlockPool() {
    while (free_ != nullptr) {
        Block* b = free_;
        free_ = b->next;
        b->~Block();
        std::free(b);
    }
}

Block* BlockPool::take() {
    ++in_use_;
    if (free_ != nullptr) {
        Block* b = free_;
        free_ = b->next;
        --free_count_;
        b->next = nullptr;
        b->size = 0;
        return b;
    }
    void* memory = std::malloc(sizeof(Block) + kBlockSize);
    if (memory == nullptr) {
        --in_use_;
        return nullptr;  // libuv then reports UV_ENOBUFS to the reader
    }
    auto* b = new (memory) Block();
    b->capacity = kBlockSize;
    return b;
}

void BlockPool::trim(size_t keep) {
    while (free_count_ > keep) {
        Block* b = free_;
        free_ = b->next;
        --free_count_;
        b->~Block();
        std::free(b);
    }
}

void BlockPool::give(Block* b) {
    --in_use_;
    if (free_count_ >= max_free_) {
        b->~Block();
        std::free(b);
        return;
    }
    b->next = free_;
    free_ = b;
    ++free_count_;
}

}  // namespace sb::uv
