// Record: one backend address a DNS lookup found (an A/AAAA record with the entry's
// port, or an SRV target's address with the record's port), with its weight and the
// name it was found under. RecordSet: one backend entry's records in canonical order
// (by "ip:port"), which is what set comparisons and the balancing table rely on.
// Discovered: every discovered entry's current records, by pool, for
// pool::Generation::build.
//
// Plain values (no I/O); built by the Resolver on the main thread and copied into
// each generation.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "config/address.h"

namespace sb::discovery {

struct Record {
    config::SocketAddress address;
    unsigned weight = 1;  // scaled SRV weight (1-1000); 1 for A/AAAA until the entry's applies
    std::string host;     // the name the address was found under (TLS server name)

    friend bool operator==(const Record& a, const Record& b) {
        return a.address == b.address && a.weight == b.weight && a.host == b.host;
    }
};

using RecordSet = std::vector<Record>;

// A total order on addresses that does not depend on how they print: family, then the
// address bytes, then the port.
bool address_less(const config::SocketAddress& a, const config::SocketAddress& b);

// Sorts `records` by "ip:port" (IPv4 before IPv6, then by address bytes and port) and
// drops repeats of an address (the first kept), so two lookups that return the same
// records in another order compare equal.
void canonicalize(RecordSet& records);

// Pool name -> one RecordSet per `backends` entry, by index (empty for literal entries,
// which Generation::build takes from the configuration).
using Discovered = std::map<std::string, std::vector<RecordSet>>;

// Addresses that appear in `after` and not in `before`, and the reverse (for logs).
struct Diff {
    std::vector<std::string> added;
    std::vector<std::string> removed;
    bool empty() const { return added.empty() && removed.empty(); }
};
Diff diff(const RecordSet& before, const RecordSet& after);

}  // namespace sb::discovery
