#include "discovery/record.h"

#include <algorithm>
#include <cstring>
#include <set>

namespace sb::discovery {

bool address_less(const config::SocketAddress& a, const config::SocketAddress& b) {
    if (a.family() != b.family()) return a.family() < b.family();
    const auto* sa = a.sockaddr_ptr();
    const auto* sb = b.sockaddr_ptr();
    int order = 0;
    if (a.family() == AF_INET6) {
        const auto* x = reinterpret_cast<const sockaddr_in6*>(static_cast<const void*>(sa));
        const auto* y = reinterpret_cast<const sockaddr_in6*>(static_cast<const void*>(sb));
        order = std::memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(in6_addr));
    } else {
        const auto* x = reinterpret_cast<const sockaddr_in*>(static_cast<const void*>(sa));
        const auto* y = reinterpret_cast<const sockaddr_in*>(static_cast<const void*>(sb));
        order = std::memcmp(&x->sin_addr, &y->sin_addr, sizeof(in_addr));
    }
    if (order != 0) return order < 0;
    return a.port() < b.port();
}

void canonicalize(RecordSet& records) {
    std::stable_sort(records.begin(), records.end(), [](const Record& a, const Record& b) {
        return address_less(a.address, b.address);
    });
    records.erase(
        std::unique(records.begin(), records.end(),
                    [](const Record& a, const Record& b) { return a.address == b.address; }),
        records.end());
}

Diff diff(const RecordSet& before, const RecordSet& after) {
    std::set<std::string> was, now;
    for (const auto& r : before)
        was.insert(r.address.to_string());
    for (const auto& r : after)
        now.insert(r.address.to_string());
    Diff d;
    for (const auto& a : now) {
        if (!was.count(a)) d.added.push_back(a);
    }
    for (const auto& a : was) {
        if (!now.count(a)) d.removed.push_back(a);
    }
    return d;
}

}  // namespace sb::discovery
