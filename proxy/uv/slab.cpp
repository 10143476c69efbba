#include "uv/slab.h"

#include <malloc.h>
#include <sys/mman.h>

#if defined(__has_feature)
#define SB_HAS_ASAN_FEATURE __has_feature(address_sanitizer)
#else
#define SB_HAS_ASAN_FEATURE 0
#endif

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
// A freed slot is poisoned, so ASan still reports a session used after it is gone.
#define SB_SLAB_POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define SB_SLAB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define SB_SLAB_POISON(p, n) ((void)(p), (void)(n))
#define SB_SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

namespace sb::uv {

Slab::Slab(size_t slot_size) : slot_size_((slot_size + 7) / 8 * 8) {}

Slab::~Slab() {
    for (void* s : slabs_) {
        SB_SLAB_UNPOISON(s, kSlabBytes);  // ASan's shadow outlives the mapping
        ::munmap(s, kSlabBytes);
    }
}

void* Slab::allocate() {
    if (free_ != nullptr) {
        FreeSlot* slot = free_;
        SB_SLAB_UNPOISON(slot, slot_size_);
        free_ = slot->next;
        return slot;
    }
    // Fresh slots are handed out in order, so a slab's pages are touched (made
    // resident) only as its slots are used.
    if (slabs_.empty() || fresh_ + slot_size_ > kSlabBytes) {
        void* slab =
            ::mmap(nullptr, kSlabBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (slab == MAP_FAILED) return nullptr;
        slabs_.push_back(slab);
        fresh_ = 0;
    }
    void* slot = static_cast<char*>(slabs_.back()) + fresh_;
    fresh_ += slot_size_;
    return slot;
}

void Slab::free(void* slot) {
    auto* s = static_cast<FreeSlot*>(slot);
    s->next = free_;
    free_ = s;
    SB_SLAB_POISON(slot, slot_size_);
}

void Slab::trim_heap() {
#if defined(__SANITIZE_ADDRESS__) || SB_HAS_ASAN_FEATURE
    // ASan's allocator serves every malloc, so glibc's arenas hold nothing to return.
    // malloc_trim would still initialise them on first call, without a lock, and a
    // second worker trimming at the same moment walked them half-built and crashed.
#else
    ::malloc_trim(0);
#endif
}

}  // namespace sb::uv
