// Rehomer: moves active rooms back to their hash home after a pool's backend set
// changes (SPEC §3 Balancing, `rehome = true`): a backend added or re-weighted by a
// reload, or a backend that is up again.
//
// A scan lists the rooms whose home is now another backend; the moves are then paced
// evenly over `close_spread`, one room at a time: when a room's turn comes its table
// entry moves to the new home and every worker closes that room's connections with
// 1012 together, so they reconnect to the new home and the room is split for no
// longer than a reconnect.
//
// A move that the home's slow-start cap refuses (SPEC §3 Health "Slow start": rehome
// moves rooms to it only within that cap) is tried again once the home's window is
// over, so a backend that came back in slow start still gets its rooms back.
//
// Main thread only. Holds the generation it scanned, so the pool stays valid.
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <string>

#include "pool/generation.h"

namespace sb::app {

class Rehomer {
  public:
    using CloseRoom = std::function<void(uint64_t room_id)>;

    Rehomer(uv_loop_t* loop, CloseRoom close_room);
    Rehomer(const Rehomer&) = delete;
    Rehomer& operator=(const Rehomer&) = delete;

    // Scans pool `name` of `generation` (if it has rehome = true) and paces the moves
    // of its misplaced rooms over the generation's close_spread. A new scan of the
    // same pool replaces the moves still pending from an older one.
    void scan(const pool::GenerationPtr& generation, const std::string& name);
    // Rooms waiting for their turn, over all pools.
    size_t pending() const;
    void close();

  private:
    struct Move {
        std::string key;
        uint64_t hash;
    };
    struct Batch {
        pool::GenerationPtr generation;
        const pool::Pool* pool;
        std::deque<Move> moves;
        uint64_t interval_ms;
        uint64_t next_ms;
        // Moves refused by a home's slow-start cap, tried again at `retry_ms`.
        std::deque<Move> deferred;
        uint64_t retry_ms = 0;
    };

    void step();
    void schedule();
    // Moves one room if it is still active and still away from home; returns its id.
    // Sets `wait_ms` (> 0) when only the home's slow start stood in the way: how long
    // until its window is over.
    uint64_t move(const pool::Pool& pool, const Move& m, uint64_t& wait_ms);
    static void on_timer(uv_timer_t* timer) noexcept;

    uv_loop_t* loop_;
    uv_timer_t timer_;
    CloseRoom close_room_;
    std::map<std::string, Batch> batches_;  // by pool name
};

}  // namespace sb::app
