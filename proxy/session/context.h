// WorkerContext: what every session of one worker shares: the worker's loop, its
// deadline heap, its read-buffer pool, its counters and the list of its sessions.
//
// Owned by the Worker (app/), which outlives all of its sessions; touched only by the
// worker's thread (the counters are also read by the admin thread, see WorkerStats).
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <random>
#include <string>

#include "metrics/worker_stats.h"
#include "net/splice_pipe.h"
#include "session/idle_connections.h"
#include "session/session_list.h"
#include "tls/record_keys.h"
#include "uv/block_pool.h"
#include "uv/ring.h"
#include "uv/timer_heap.h"

namespace sb::session {

// Every deadline in a worker's heap is a Session's (defined in session.cpp).
void fire_session_deadline(uv::Deadline& deadline);

struct WorkerContext {
    WorkerContext(uv_loop_t* l, unsigned i, metrics::WorkerStats& s)
        : loop(l),
          index(i),
          timers(l, &fire_session_deadline),
          idle(l),
          stats(s),
          rng(std::random_device{}()) {
        if (record_key_update_for_test > 0) {
            for (auto aead :
                 {tls::Aead::Aes128Gcm, tls::Aead::Aes256Gcm, tls::Aead::Chacha20Poly1305}) {
                record_crypto.set_limits_for_test(
                    aead, {record_key_update_for_test, record_crypto.limits(aead).max_records});
            }
        }
    }
    WorkerContext(const WorkerContext&) = delete;
    WorkerContext& operator=(const WorkerContext&) = delete;

    // The context of the worker running on this thread (set by the Worker).
    static thread_local WorkerContext* current;
    // Tests only (the hidden --debug-record-key-update=N): the record layer's keys are
    // due for a KeyUpdate after N records instead of RFC 8446 §5.5's millions. Set
    // before the workers start.
    static inline uint64_t record_key_update_for_test = 0;
    // The hidden --debug-no-ring: workers do all I/O through libuv (tests of that path,
    // and comparisons). Set before the workers start.
    static inline bool ring_disabled = false;

    uv_loop_t* loop;
    unsigned index;
    uv::TimerHeap timers;
    IdleConnections idle;  // keep-alive connections to backends between HTTP requests
    uv::BlockPool blocks;
    // The relay's reads and writes (session/endpoint.h, use_ring); closed when the
    // kernel offers no io_uring. After `blocks`: its read buffers go back there.
    uv::Ring ring;
    net::SplicePipe splice;  // large payloads between plain sockets (Pipe::splice_payload)
    // Owned by the Worker, which outlives this context, so the admin thread may read
    // the counters until the process ends.
    metrics::WorkerStats& stats;
    SessionList sessions;
    // Handshakes under way and finished since the last heap trim: when a burst ends,
    // the worker gives the general heap's free pages back (Slab::trim_heap).
    unsigned handshakes_in_flight = 0;
    unsigned handshakes_since_trim = 0;
    std::function<void()> on_handshake_burst_end;
    std::mt19937_64 rng;  // jitter (max_lifetime), not security
    // The record layer's ciphers and scratch contexts, for every client connection of
    // this worker that left OpenSSL after its handshake (Endpoint::switch_to_records).
    tls::RecordCrypto record_crypto;
    // Called (on this worker's thread) when a connect succeeds to a backend that was
    // marked down: the main thread may then move rooms back to it (rehome).
    std::function<void(const std::string& pool)> on_backend_up;
};

}  // namespace sb::session
