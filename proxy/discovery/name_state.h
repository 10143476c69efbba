// NameState: what switchboard knows of one discovered name (an A/AAAA name or an SRV
// name of one pool): the record set in use and the outcome of its lookups.
//
// The rules of SPEC §3 Health, Discovery, as a pure state machine the Resolver feeds:
// - a lookup with records replaces the set;
// - an error or a timeout keeps the last good set (and breaks a run of empty answers);
// - NXDOMAIN or an empty answer empties the set only at the third such answer in a row
//   (kStrikes), so one bad answer from a DNS server that is being reloaded does not
//   remove every backend;
// - a name never resolved has an empty set (its pool answers 503 until it resolves).
//
// Main thread only (owned by the Resolver).
#pragma once

#include <array>
#include <cstdint>
#include <string>

#include "discovery/record.h"

namespace sb::discovery {

enum class Outcome { Ok, Error, NxDomain, Empty };
constexpr size_t kOutcomeCount = 4;
// "ok", "error", "nxdomain", "empty": the `result` label of switchboard_dns_lookups_total.
const char* outcome_name(Outcome o);

class NameState {
  public:
    static constexpr unsigned kStrikes = 3;

    // Applies one finished lookup: `records` for Ok (canonical order), `error` for Error
    // (why, for /status). Returns true when the set in use changed.
    bool apply(Outcome outcome, RecordSet records = {}, std::string error = "");

    const RecordSet& records() const { return records_; }
    bool looked_up() const { return lookups_total() > 0; }
    Outcome last() const { return last_; }
    const std::string& last_error() const { return last_error_; }
    // NXDOMAIN or empty answers in a row (0 after any other outcome).
    unsigned empty_streak() const { return empty_streak_; }
    uint64_t lookups(Outcome o) const { return lookups_[static_cast<size_t>(o)]; }
    uint64_t lookups_total() const;

  private:
    RecordSet records_;
    Outcome last_ = Outcome::Ok;
    std::string last_error_;
    unsigned empty_streak_ = 0;
    std::array<uint64_t, kOutcomeCount> lookups_{};
};

// One name's state for /status and /metrics, copied out of the Resolver.
struct NameStatus {
    std::string pool;
    std::string name;  // as written: "chat.internal:8080" or "_ws._tcp.chat.internal"
    bool srv = false;
    bool looked_up = false;
    Outcome last = Outcome::Ok;
    std::string last_error;
    unsigned empty_streak = 0;
    std::array<uint64_t, kOutcomeCount> lookups{};
    RecordSet records;
    double seconds_since_lookup = -1;  // -1: not looked up yet
};

}  // namespace sb::discovery
