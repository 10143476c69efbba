#include "pool/generation.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "balance/node.h"
#include "discovery/weights.h"
#include "log/logger.h"

namespace sb::pool {

namespace {

balance::Algorithm to_balance(config::Algorithm a) {
    switch (a) {
        case config::Algorithm::Ring:
            return balance::Algorithm::Ring;
        case config::Algorithm::Maglev:
            return balance::Algorithm::Maglev;
        case config::Algorithm::LeastConnections:
            return balance::Algorithm::LeastConnections;
        case config::Algorithm::RoundRobin:
            return balance::Algorithm::RoundRobin;
    }
    return balance::Algorithm::Ring;
}

// Why the access log at `path` could not be opened for appending, or "" when it can
// (as far as a look at the file system tells without creating it: --check writes
// nothing). Startup, reload and --check all ask, so a file that passes --check does not
// fail at startup for a directory that is missing.
std::string access_log_problem(const std::string& path) {
    if (path == "stderr" || path == "stdout" || path == "off") return "";
    struct stat st {};
    if (::stat(path.c_str(), &st) == 0) {
        if (S_ISDIR(st.st_mode)) return "\"" + path + "\" is a directory";
        if (::access(path.c_str(), W_OK) != 0) {
            return "\"" + path + "\" is not writable: " + std::strerror(errno);
        }
        return "";
    }
    if (errno != ENOENT && errno != ENOTDIR) {
        return "cannot look at \"" + path + "\": " + std::strerror(errno);
    }
    auto slash = path.rfind('/');
    std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    if (::stat(dir.c_str(), &st) != 0) {
        if (errno == ENOENT) return "directory \"" + dir + "\" does not exist";
        if (errno == ENOTDIR) return "\"" + dir + "\" is not a directory";
        return "cannot look at \"" + dir + "\": " + std::strerror(errno);
    }
    if (!S_ISDIR(st.st_mode)) return "\"" + dir + "\" is not a directory";
    if (::access(dir.c_str(), W_OK | X_OK) != 0) {
        return "cannot create a file in \"" + dir + "\": " + std::strerror(errno);
    }
    return "";
}

// One backend of a pool being built, before it becomes a Backend and a table node.
struct Member {
    config::SocketAddress address;
    unsigned weight;
    const std::string* source;  // the entry's address or SRV name (owned by the Config)
    std::string host;           // the DNS name it was found under; "" for a literal
};

// The pool's backends: literal entries as written, discovered entries from `found`
// (one RecordSet per entry), merged by "ip:port".
std::vector<Member> members_of(const config::PoolConfig& pool,
                               const std::vector<discovery::RecordSet>* found, const Pool* old) {
    std::vector<Member> members;
    bool any_discovered = false;
    for (size_t i = 0; i < pool.backends.size(); ++i) {
        const auto& b = pool.backends[i];
        if (!b.discovered()) {
            members.push_back({b.resolved, b.weight, &b.address, ""});
            continue;
        }
        any_discovered = true;
        if (found == nullptr || i >= found->size()) continue;
        for (const auto& r : (*found)[i]) {
            unsigned weight = b.kind == config::BackendConfig::Kind::Srv ? r.weight : b.weight;
            members.push_back({r.address, weight, &b.source(), r.host});
        }
    }
    if (!any_discovered) return members;  // as written (literals are never repeated)
    std::stable_sort(members.begin(), members.end(), [](const Member& a, const Member& b) {
        return discovery::address_less(a.address, b.address);
    });
    std::vector<Member> merged;
    for (auto& m : members) {
        if (!merged.empty() && merged.back().address == m.address) {
            // Logged when the address first appears twice, not at every rebuild.
            std::string id = m.address.to_string();
            if (old == nullptr || old->find(id) == nullptr) {
                log::warn("dns: two backend entries give the same address; it is one backend",
                          {{"pool", pool.name},
                           {"backend", id},
                           {"kept", *merged.back().source},
                           {"merged", *m.source}});
            }
            continue;
        }
        merged.push_back(std::move(m));
    }
    if (merged.size() > balance::SeenSet::kMaxNodes) {
        log::warn("dns: too many backends; the rest are left out",
                  {{"pool", pool.name},
                   {"found", std::to_string(merged.size())},
                   {"kept", std::to_string(balance::SeenSet::kMaxNodes)}});
        merged.resize(balance::SeenSet::kMaxNodes);
    }
    return merged;
}

}  // namespace

std::shared_ptr<const Generation> Generation::build(config::ConfigPtr config, uint64_t number,
                                                    const Generation* previous,
                                                    std::vector<config::ConfigError>& errors,
                                                    const discovery::Discovered* discovered) {
    std::shared_ptr<Generation> g(new Generation());
    g->config_ = std::move(config);
    g->number_ = number;
    // The same Config again: only discovered records changed, certificates did not.
    const bool same_config = previous != nullptr && previous->config_ == g->config_;
    g->server_connections_ =
        previous ? previous->server_connections_ : std::make_shared<limits::SlotCounter>();
    const auto& log = g->config_->log;
    if (auto problem = access_log_problem(log.access_log); !problem.empty()) {
        errors.push_back({g->config_->path, log.access_log_at.line, log.access_log_at.column,
                          "access log: " + problem});
    }
    for (const auto& l : g->config_->listeners) {
        const ListenerRuntime* old = previous ? previous->listener(l.name) : nullptr;
        auto counters = old ? old->counters : std::make_shared<ListenerCounters>();
        g->listeners_.push_back(std::make_unique<ListenerRuntime>(l, std::move(counters)));
        if (l.tls && same_config && old != nullptr && old->tls) {
            g->listeners_.back()->tls = old->tls;
        } else if (l.tls) {
            // Ticket keys outlive a reload, so clients keep resuming their sessions.
            auto keys =
                old && old->tls ? old->tls->ticket_keys() : std::make_shared<tls::TicketKeys>();
            std::string error;
            g->listeners_.back()->tls = tls::ServerContext::load(*l.tls, std::move(keys), error);
            if (!g->listeners_.back()->tls) {
                const auto& at = l.tls->certificates.empty() ? config::Position{}
                                                             : l.tls->certificates.front().at;
                errors.push_back({g->config_->path, at.line, at.column,
                                  "listener \"" + l.name + "\": " + error});
            }
        }
    }
    for (const auto& [name, pool_config] : g->config_->pools) {
        const Pool* old = previous ? previous->pool(name) : nullptr;
        const std::vector<discovery::RecordSet>* found = nullptr;
        if (discovered != nullptr) {
            auto it = discovered->find(name);
            if (it != discovered->end()) found = &it->second;
        }
        auto members = members_of(pool_config, found, old);
        auto algorithm = to_balance(pool_config.algorithm);
        std::vector<unsigned> weights;
        for (const auto& m : members)
            weights.push_back(m.weight);
        // Records can add up to more weight than a ring holds (the configuration could
        // only check the entries): scale them all down in proportion.
        if (algorithm == balance::Algorithm::Ring &&
            discovery::fit_weights(weights, balance::Ring::kMaxTotalWeight)) {
            log::warn(
                "dns: the pool's weights add up to more than a ring holds; scaled down "
                "in proportion",
                {{"pool", name},
                 {"backends", std::to_string(members.size())},
                 {"limit", std::to_string(balance::Ring::kMaxTotalWeight)}});
        }
        std::vector<std::shared_ptr<Backend>> backends;
        std::vector<balance::Node> nodes;
        std::vector<std::string> sources;
        for (size_t i = 0; i < members.size(); ++i) {
            const auto& m = members[i];
            // A backend's identity, on the ring and across generations, is its
            // "ip:port": the same for every instance whatever name found it.
            std::string id = m.address.to_string();
            std::shared_ptr<Backend> backend = old ? old->find(id) : nullptr;
            if (!backend) {
                backend = std::make_shared<Backend>(id, m.address, m.host);
                // Added by a reload or by DNS: slow start (SPEC §3 Health; not at startup).
                if (previous) backend->begin_slow_start();
            }
            backends.push_back(std::move(backend));
            nodes.push_back({id, weights[i]});
            sources.push_back(*m.source);
        }
        // The table is rebuilt only when the backend set, a weight or the algorithm
        // changed; otherwise the new generation shares the old one.
        std::shared_ptr<const balance::Table> table;
        if (old && old->table()->same_as(algorithm, nodes)) {
            table = old->table();
        } else {
            table = std::make_shared<balance::Table>(algorithm, std::move(nodes));
        }
        auto rooms = old ? old->rooms() : std::make_shared<RoomTable>();
        std::shared_ptr<tls::ClientContext> client_tls;
        if (pool_config.tls && same_config && old != nullptr) {
            client_tls = old->shared_tls();
        } else if (pool_config.tls) {
            std::string error;
            client_tls = tls::ClientContext::load(*pool_config.tls, error);
            if (!client_tls) {
                errors.push_back({g->config_->path, pool_config.tls->at.line,
                                  pool_config.tls->at.column, "pool \"" + name + "\": " + error});
            }
        }
        g->pools_.emplace(
            name, std::make_unique<Pool>(pool_config, std::move(backends), std::move(rooms),
                                         std::move(table), std::move(client_tls),
                                         std::move(sources), old ? old->admission() : nullptr));
    }
    if (!errors.empty()) return nullptr;
    return g;
}

const ListenerRuntime* Generation::listener(const std::string& name) const {
    for (const auto& l : listeners_) {
        if (l->config.name == name) return l.get();
    }
    return nullptr;
}

const Pool* Generation::pool(const std::string& name) const {
    auto it = pools_.find(name);
    return it == pools_.end() ? nullptr : it->second.get();
}

}  // namespace sb::pool
