// Slab: fixed-size slots for one kind of long-lived object (a Session), carved from
// large mmap'd slabs of their own.
//
// Sessions live for hours; the handshake that precedes each one allocates and frees
// a few kilobytes. From the general heap, the long-lived objects end up interleaved
// with the freed handshake memory, and those half-used pages stay resident for good.
// Slots from their own slabs keep the two apart: the general heap's free pages can
// then be given back (see Slab::trim_heap), and a session costs its size, no header.
//
// One Slab per worker thread (thread_local in the owner's allocation functions); not
// thread-safe. Slabs are kept once made: freed slots are reused by later sessions, so
// memory follows the peak number of sessions, as a preallocated connection table would.
#pragma once

#include <cstddef>
#include <vector>

namespace sb::uv {

class Slab {
  public:
    static constexpr size_t kSlabBytes = 256 * 1024;

    explicit Slab(size_t slot_size);
    ~Slab();
    Slab(const Slab&) = delete;
    Slab& operator=(const Slab&) = delete;

    // A slot, or nullptr when no memory can be mapped.
    void* allocate();
    void free(void* slot);

    size_t slabs() const { return slabs_.size(); }

    // Returns the general heap's free pages to the kernel (glibc malloc_trim): called
    // after a burst of handshakes has ended.
    static void trim_heap();

  private:
    struct FreeSlot {
        FreeSlot* next;
    };

    size_t slot_size_;  // a multiple of 8: sessions need no more alignment
    FreeSlot* free_ = nullptr;
    size_t fresh_ = 0;  // bytes of the newest slab handed out so far
    std::vector<void*> slabs_;
};

}  // namespace sb::uv
