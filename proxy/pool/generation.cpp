#include "pool/generation.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

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

}  // namespace

std::shared_ptr<const Generation> Generation::build(config::ConfigPtr config, uint64_t number,
                                                    const Generation* previous,
                                                    std::vector<config::ConfigError>& errors) {
    std::shared_ptr<Generation> g(new Generation());
    g->config_ = std::move(config);
    g->number_ = number;
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
        if (l.tls) {
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
        std::vector<std::shared_ptr<Backend>> backends;
        std::vector<balance::Node> nodes;
        for (const auto& b : pool_config.backends) {
            std::shared_ptr<Backend> backend = old ? old->find(b.address) : nullptr;
            if (!backend) {
                backend = std::make_shared<Backend>(b.address, b.resolved);
                // Added by a reload: slow start (SPEC §3 Health; not at startup).
                if (previous) backend->begin_slow_start();
            }
            backends.push_back(std::move(backend));
            // A backend's identity on the ring is its address as written.
            nodes.push_back({b.address, b.weight});
        }
        auto algorithm = to_balance(pool_config.algorithm);
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
        if (pool_config.tls) {
            std::string error;
            client_tls = tls::ClientContext::load(*pool_config.tls, error);
            if (!client_tls) {
                errors.push_back({g->config_->path, pool_config.tls->at.line,
                                  pool_config.tls->at.column, "pool \"" + name + "\": " + error});
            }
        }
        g->pools_.emplace(name,
                          std::make_unique<Pool>(pool_config, std::move(backends), std::move(rooms),
                                                 std::move(table), std::move(client_tls)));
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
