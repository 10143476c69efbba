#include "discovery/name_state.h"

namespace sb::discovery {

const char* outcome_name(Outcome o) {
    switch (o) {
        case Outcome::Ok:
            return "ok";
        case Outcome::Error:
            return "error";
        case Outcome::NxDomain:
            return "nxdomain";
        case Outcome::Empty:
            return "empty";
    }
    return "error";
}

uint64_t NameState::lookups_total() const {
    uint64_t n = 0;
    for (auto c : lookups_)
        n += c;
    return n;
}

bool NameState::apply(Outcome outcome, RecordSet records, std::string error) {
    ++lookups_[static_cast<size_t>(outcome)];
    last_ = outcome;
    if (outcome == Outcome::Ok && records.empty()) outcome = Outcome::Empty;  // defensive
    switch (outcome) {
        case Outcome::Ok: {
            last_error_.clear();
            empty_streak_ = 0;
            bool changed = records != records_;
            records_ = std::move(records);
            return changed;
        }
        case Outcome::Error:
            // The last good set stays, and an error breaks a streak of empty answers:
            // they must come three lookups in a row.
            last_error_ = std::move(error);
            empty_streak_ = 0;
            return false;
        case Outcome::NxDomain:
        case Outcome::Empty: {
            last_error_ = outcome == Outcome::NxDomain ? "NXDOMAIN" : "no records";
            ++empty_streak_;
            if (empty_streak_ < kStrikes || records_.empty()) return false;
            records_.clear();
            return true;
        }
    }
    return false;
}

}  // namespace sb::discovery
