// Block and BlockPool: the relay's read buffers.
//
// A Pipe holds no buffer while idle: when libuv asks for memory to read into, the
// Pipe takes a Block from its worker's pool; the Block goes back as soon as its bytes
// are written. A Block also carries the uv_write_t for the (at most one) write in
// flight that still needs those bytes, so a write never allocates.
//
// One pool per worker thread; not thread-safe. The pool keeps up to `max_free` spare
// blocks and frees the rest, so a burst does not pin memory forever.
#pragma once

#include <uv.h>

#include <cstddef>
#include <cstdint>

namespace sb::uv {

struct Block {
    uv_write_t write;       // for the write that still needs this block's bytes
    Block* next = nullptr;  // free-list link while pooled
    uint32_t size = 0;      // bytes of data[] in use
    uint32_t capacity = 0;

    char* data() { return reinterpret_cast<char*>(this + 1); }
};

class BlockPool {
  public:
    // 16 KiB reads: as large as nginx's proxy_buffer_size, and what a client that
    // stopped reading can pin per direction before reading stops. kBlockSlack more
    // holds an Endpoint's headroom and tailroom around them (session/endpoint.h), so
    // that a full TLS record's plaintext (16 KiB) fits one block: one write toward the
    // backend per record, not two.
    static constexpr uint32_t kBlockSlack = 64;
    static constexpr uint32_t kBlockSize = 16 * 1024 + kBlockSlack;

    explicit BlockPool(size_t max_free = 256) : max_free_(max_free) {}
    ~BlockPool();
    BlockPool(const BlockPool&) = delete;
    BlockPool& operator=(const BlockPool&) = delete;

    // A block with size 0, or nullptr when memory is exhausted.
    Block* take();
    void give(Block* b);

    // Frees spare blocks beyond `keep`. A burst of handshakes (each read and each head
    // written goes through a block) fills the spare list; once the burst is over, an
    // idle worker should not hold megabytes of them (the worker calls this with its
    // heap trim).
    void trim(size_t keep);

    size_t in_use() const { return in_use_; }
    size_t free_count() const { return free_count_; }

  private:
    Block* free_ = nullptr;
    size_t free_count_ = 0;
    size_t in_use_ = 0;
    size_t max_free_;
};

}  // namespace sb::uv
