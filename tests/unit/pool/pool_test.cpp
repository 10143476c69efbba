// Pool placement (SPEC §3 Balancing): rooms stay whole, bounded loads apply to new
// rooms only, down/full/tried backends are skipped, retries and release.
#include "pool/pool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "balance/hash.h"

namespace sb::pool {
namespace {

struct Fixture {
    explicit Fixture(int n, config::Algorithm algorithm = config::Algorithm::Ring,
                     double load_factor = 0.0, uint64_t max_per_backend = 0) {
        config.name = "p";
        config.algorithm = algorithm;
        config.load_factor = load_factor;
        config.max_connections_per_backend = max_per_backend;
        std::vector<balance::Node> nodes;
        for (int i = 0; i < n; ++i) {
            std::string address = "10.0.0." + std::to_string(i + 1) + ":80";
            backends.push_back(
                std::make_shared<Backend>(address, *config::SocketAddress::parse(address)));
            nodes.push_back({address, 1});
        }
        auto kind = algorithm == config::Algorithm::Maglev ? balance::Algorithm::Maglev
                    : algorithm == config::Algorithm::LeastConnections
                        ? balance::Algorithm::LeastConnections
                    : algorithm == config::Algorithm::RoundRobin ? balance::Algorithm::RoundRobin
                                                                 : balance::Algorithm::Ring;
        pool = std::make_unique<Pool>(config, backends, std::make_shared<RoomTable>(),
                                      std::make_shared<balance::Table>(kind, nodes));
    }

    Placement place(const std::string& key, Pool::Outcome expected = Pool::Outcome::Placed) {
        Placement p;
        auto outcome = pool->place(key, balance::hash_key(key), {}, p);
        EXPECT_EQ(outcome, expected) << key;
        return p;
    }

    config::PoolConfig config;
    std::vector<std::shared_ptr<Backend>> backends;
    std::unique_ptr<Pool> pool;
};

TEST(Pool, FurtherConnectionsOfARoomJoinItsBackend) {
    Fixture f(5);
    Placement first = f.place("room-1");
    Placement second = f.place("room-1", Pool::Outcome::Joined);
    EXPECT_EQ(first.backend, second.backend);
    EXPECT_EQ(first.room, second.room);
    EXPECT_EQ(first.room->connections, 2u);
    EXPECT_EQ(first.backend->active(), 2);
    f.pool->release(first);
    f.pool->release(second);
    EXPECT_EQ(f.pool->rooms()->size(), 0u);  // the room left with its last connection
    EXPECT_EQ(f.backends[0]->active() + f.backends[1]->active() + f.backends[2]->active() +
                  f.backends[3]->active() + f.backends[4]->active(),
              0);
}

TEST(Pool, NewRoomGoesToItsHashHome) {
    Fixture f(5);
    for (int i = 0; i < 50; ++i) {
        std::string key = "room-" + std::to_string(i);
        Placement p = f.place(key);
        EXPECT_EQ(p.backend, f.pool->home(balance::hash_key(key)));
        f.pool->release(p);
    }
}

TEST(Pool, DownBackendIsSkippedAndItsKeysReturnWhenItIsBack) {
    Fixture f(5);
    std::string key = "room-7";
    Backend* home = f.pool->home(balance::hash_key(key));
    for (int i = 0; i < 3; ++i)
        home->record_failure(3, std::chrono::seconds(60));
    ASSERT_FALSE(home->is_up());
    Placement p = f.place(key);
    EXPECT_NE(p.backend, home);
    f.pool->release(p);
    home->record_success();
    Placement back = f.place(key);
    EXPECT_EQ(back.backend, home);
    f.pool->release(back);
}

TEST(Pool, AnActiveRoomMovesWhenItsBackendGoesDown) {
    Fixture f(4);
    Placement first = f.place("room-1");
    for (int i = 0; i < 3; ++i)
        first.backend->record_failure(3, std::chrono::seconds(60));
    Placement second = f.place("room-1", Pool::Outcome::Placed);
    EXPECT_NE(second.backend, first.backend);
    EXPECT_EQ(second.room, first.room);
    EXPECT_EQ(first.room->backend.get(), second.backend);
    f.pool->release(first);
    f.pool->release(second);
}

TEST(Pool, FullBackendIsSkippedForNewRoomsButNeverSplitsARoom) {
    Fixture f(3, config::Algorithm::Ring, 0.0, /*max_per_backend=*/1);
    Placement a = f.place("room-1");
    // The room's backend is full: a joiner is refused rather than sent elsewhere.
    Placement joiner;
    EXPECT_EQ(f.pool->place("room-1", balance::hash_key("room-1"), {}, joiner),
              Pool::Outcome::Full);
    // A new room whose home is that backend goes to its next choice.
    for (int i = 0; i < 200; ++i) {
        std::string key = "other-" + std::to_string(i);
        if (f.pool->home(balance::hash_key(key)) != a.backend) continue;
        Placement b = f.place(key);
        EXPECT_NE(b.backend, a.backend);
        f.pool->release(b);
        break;
    }
    f.pool->release(a);
}

TEST(Pool, HttpRequestsGoToTheActiveRoomsBackendWithoutMakingRooms) {
    // SPEC §3 HTTP requests: a key whose room is active reaches the room's backend, even
    // when the room sits away from its hash home; a request never makes a room.
    Fixture f(4);
    std::string key = "room-5";
    uint64_t h = balance::hash_key(key);
    Backend* home = f.pool->home(h);
    std::vector<uint32_t> tried = {static_cast<uint32_t>(f.pool->index_of(home))};
    Placement room;
    ASSERT_EQ(f.pool->place(key, h, tried, room), Pool::Outcome::Placed);  // moved off home
    ASSERT_NE(room.backend, home);

    Placement request;
    EXPECT_EQ(f.pool->pick(key, h, {}, request), Pool::Outcome::Joined);
    EXPECT_EQ(request.backend, room.backend);
    EXPECT_EQ(request.room, nullptr);
    EXPECT_EQ(room.room->connections, 1u);  // not a member of the room
    EXPECT_EQ(room.backend->active(), 2);   // but it holds a backend slot while it runs
    f.pool->release(request);
    EXPECT_EQ(room.backend->active(), 1);

    // A key with no room goes to its hash home, and still makes none.
    Placement other;
    EXPECT_EQ(f.pool->pick("no-room", balance::hash_key("no-room"), {}, other),
              Pool::Outcome::Placed);
    EXPECT_EQ(other.backend, f.pool->home(balance::hash_key("no-room")));
    EXPECT_EQ(f.pool->rooms()->size(), 1u);
    f.pool->release(other);
    f.pool->release(room);
    EXPECT_EQ(f.pool->rooms()->size(), 0u);
}

TEST(Pool, NothingUpMeansNoBackend) {
    Fixture f(2);
    for (auto& b : f.backends) {
        for (int i = 0; i < 3; ++i)
            b->record_failure(3, std::chrono::seconds(60));
    }
    f.place("room", Pool::Outcome::NoBackend);
}

TEST(Pool, RetryWalksToTheNextBackendAndMovesALoneRoom) {
    Fixture f(4);
    std::string key = "room-9";
    uint64_t h = balance::hash_key(key);
    Placement p = f.place(key);
    Backend* first = p.backend;
    std::vector<uint32_t> tried = {static_cast<uint32_t>(f.pool->index_of(first))};
    EXPECT_EQ(f.pool->retry(h, tried, p), Pool::Outcome::Placed);
    EXPECT_NE(p.backend, first);
    EXPECT_EQ(p.room->backend.get(), p.backend);
    EXPECT_EQ(first->active(), 0);
    EXPECT_EQ(p.backend->active(), 1);
    f.pool->release(p);
}

TEST(Pool, RetryDoesNotSplitARoomWithOtherConnections) {
    Fixture f(4);
    std::string key = "room-3";
    uint64_t h = balance::hash_key(key);
    Placement a = f.place(key);
    Placement b = f.place(key, Pool::Outcome::Joined);
    std::vector<uint32_t> tried = {static_cast<uint32_t>(f.pool->index_of(b.backend))};
    EXPECT_EQ(f.pool->retry(h, tried, b), Pool::Outcome::NoBackend);
    EXPECT_FALSE(b);
    EXPECT_EQ(a.room->connections, 1u);
    EXPECT_EQ(a.room->backend.get(), a.backend);
    f.pool->release(a);
}

TEST(Pool, BoundedLoadCapAppliesToNewRooms) {
    // c = 1.0 with 4 backends: a new room never lands on a backend already holding
    // ceil((A + 1) / 4) connections, so single-connection rooms fill evenly.
    Fixture f(4, config::Algorithm::Ring, 1.0);
    std::vector<Placement> held;
    for (int i = 0; i < 40; ++i)
        held.push_back(f.place("room-" + std::to_string(i)));
    for (auto& b : f.backends)
        EXPECT_EQ(b->active(), 10);
    for (auto& p : held)
        f.pool->release(p);
}

TEST(Pool, RoomsPlacedAwayByTheCapAreMarkedSoRehomeLeavesThem) {
    Fixture f(2, config::Algorithm::Ring, 1.0);
    std::vector<Placement> held;
    int displaced = 0;
    for (int i = 0; i < 20; ++i) {
        std::string key = "r" + std::to_string(i);
        held.push_back(f.place(key));
        bool at_home = held.back().backend == f.pool->home(balance::hash_key(key));
        EXPECT_EQ(held.back().room->displaced_by_load, !at_home) << key;
        displaced += held.back().room->displaced_by_load ? 1 : 0;
    }
    EXPECT_GT(displaced, 0);
    for (auto& p : held)
        f.pool->release(p);
}

TEST(Pool, BoundedLoadNeverSplitsARoom) {
    Fixture f(4, config::Algorithm::Ring, 1.0);
    std::vector<Placement> held;
    for (int i = 0; i < 30; ++i)
        held.push_back(f.place("big-room", i == 0 ? Pool::Outcome::Placed : Pool::Outcome::Joined));
    EXPECT_EQ(held.front().backend->active(), 30);
    for (auto& p : held)
        EXPECT_EQ(p.backend, held.front().backend);
    for (auto& p : held)
        f.pool->release(p);
}

// The target: 20 backends, 20,000 rooms with Zipf(0.8) sizes summing to about
// 200,000 connections, c = 1.25: peak-to-mean <= 1.25 + one room's size (relative to
// the mean), and no room split.
TEST(Pool, ZipfRoomsWithBoundedLoads) {
    Fixture f(20, config::Algorithm::Ring, 1.25);
    const int rooms = 20'000;
    std::vector<double> weight(rooms);
    double total_weight = 0;
    for (int r = 0; r < rooms; ++r)
        total_weight += weight[r] = 1.0 / std::pow(r + 1, 0.8);
    std::vector<int> size(rooms);
    int connections = 0;
    int largest = 0;
    for (int r = 0; r < rooms; ++r) {
        size[r] = std::max(1, static_cast<int>(std::lround(200'000 * weight[r] / total_weight)));
        connections += size[r];
        largest = std::max(largest, size[r]);
    }
    // Connections arrive interleaved across rooms, as players join matches.
    std::vector<int> arrivals;
    for (int r = 0; r < rooms; ++r)
        arrivals.insert(arrivals.end(), size[r], r);
    std::mt19937 rng(42);
    std::shuffle(arrivals.begin(), arrivals.end(), rng);
    std::vector<Placement> held;
    held.reserve(arrivals.size());
    std::map<int, Backend*> room_backend;
    for (int r : arrivals) {
        std::string key = "match-" + std::to_string(r);
        Placement p;
        auto outcome = f.pool->place(key, balance::hash_key(key), {}, p);
        ASSERT_NE(outcome, Pool::Outcome::NoBackend);
        auto [it, fresh] = room_backend.emplace(r, p.backend);
        ASSERT_EQ(it->second, p.backend) << "room " << r << " split";
        held.push_back(p);
    }
    int64_t peak = 0;
    for (auto& b : f.backends)
        peak = std::max(peak, b->active());
    double mean = static_cast<double>(connections) / 20;
    EXPECT_LE(static_cast<double>(peak) / mean, 1.25 + largest / mean);
    for (auto& p : held)
        f.pool->release(p);
    EXPECT_EQ(f.pool->rooms()->size(), 0u);
}

TEST(Pool, LeastConnectionsPicksTheEmptiestBackend) {
    Fixture f(3, config::Algorithm::LeastConnections);
    Placement a = f.place("a");
    Placement b = f.place("b");
    Placement c = f.place("c");
    EXPECT_NE(a.backend, b.backend);
    EXPECT_NE(b.backend, c.backend);
    EXPECT_NE(a.backend, c.backend);
    for (auto* p : {&a, &b, &c})
        f.pool->release(*p);
}

TEST(Pool, RoundRobinTakesTurns) {
    Fixture f(3, config::Algorithm::RoundRobin);
    std::vector<Placement> held;
    for (int i = 0; i < 6; ++i)
        held.push_back(f.place("k" + std::to_string(i)));
    for (auto& b : f.backends)
        EXPECT_EQ(b->active(), 2);
    for (auto& p : held)
        f.pool->release(p);
}

// Regression (issue 13): the room table pinned every connection of one key (one client
// address, with hash_key = client_ip) to one backend under least_connections and
// round_robin, although these algorithms give a key no home.
TEST(Pool, RoundRobinSpreadsConnectionsOfOneKeyOverEveryBackend) {
    Fixture f(2, config::Algorithm::RoundRobin);
    std::vector<Placement> held;
    for (int i = 0; i < 20; ++i) {
        Placement p;
        EXPECT_EQ(f.pool->place("127.0.0.1", balance::hash_key("127.0.0.1"), {}, p),
                  Pool::Outcome::Placed);
        EXPECT_TRUE(p);
        EXPECT_EQ(p.room, nullptr);  // no room: the table is never consulted nor filled
        held.push_back(p);
    }
    EXPECT_EQ(f.backends[0]->active(), 10);
    EXPECT_EQ(f.backends[1]->active(), 10);
    EXPECT_EQ(f.pool->rooms()->size(), 0u);
    for (auto& p : held) {
        f.pool->release(p);
        EXPECT_FALSE(p);
    }
    EXPECT_EQ(f.backends[0]->active() + f.backends[1]->active(), 0);
}

TEST(Pool, LeastConnectionsSpreadsConnectionsOfOneKeyOverEveryBackend) {
    Fixture f(3, config::Algorithm::LeastConnections);
    std::vector<Placement> held;
    for (int i = 0; i < 9; ++i)
        held.push_back(f.place("127.0.0.1"));
    for (auto& b : f.backends)
        EXPECT_EQ(b->active(), 3);
    EXPECT_EQ(f.pool->rooms()->size(), 0u);
    for (auto& p : held)
        f.pool->release(p);
    for (auto& b : f.backends)
        EXPECT_EQ(b->active(), 0);
}

TEST(Pool, RetryWithoutARoomWalksOnAndReleaseGivesTheSlotBack) {
    Fixture f(3, config::Algorithm::RoundRobin);
    Placement p = f.place("k");
    Backend* first = p.backend;
    std::vector<uint32_t> tried{static_cast<uint32_t>(f.pool->index_of(first))};
    EXPECT_EQ(f.pool->retry(balance::hash_key("k"), tried, p), Pool::Outcome::Placed);
    EXPECT_NE(p.backend, first);
    EXPECT_EQ(p.room, nullptr);
    EXPECT_EQ(first->active(), 0);
    EXPECT_EQ(p.backend->active(), 1);
    for (auto& b : f.backends)
        tried.push_back(static_cast<uint32_t>(f.pool->index_of(b.get())));
    Backend* second = p.backend;
    EXPECT_EQ(f.pool->retry(balance::hash_key("k"), tried, p), Pool::Outcome::NoBackend);
    EXPECT_FALSE(p);
    EXPECT_EQ(second->active(), 0);
}

TEST(Pool, RouteForAKeylessAlgorithmReportsNoRoomAndTheNextTurn) {
    Fixture f(2, config::Algorithm::RoundRobin);
    Placement held = f.place("127.0.0.1");
    auto route = f.pool->describe("127.0.0.1");
    EXPECT_FALSE(route.keyed);
    EXPECT_FALSE(route.room_active);  // a connection is live, but it makes no room
    EXPECT_EQ(route.room_backend, nullptr);
    ASSERT_NE(route.chosen, nullptr);
    // The next connection goes where the turn points now: not where the last one went.
    Placement next = f.place("127.0.0.1");
    EXPECT_EQ(route.chosen, next.backend);
    EXPECT_NE(next.backend, held.backend);
    f.pool->release(held);
    f.pool->release(next);
    EXPECT_TRUE(Fixture(2).pool->describe("k").keyed);
}

// ---- slow start (SPEC §3 Health "Slow start") ----

// Gives `b` n more active connections without a room (as a placement would).
void load(Backend& b, int n) {
    for (int i = 0; i < n; ++i)
        ASSERT_TRUE(b.try_acquire(0));
}

// A key whose home (first choice) is `b`.
std::string key_homed_on(const Fixture& f, const Backend* b, int skip = 0) {
    for (int i = 0; i < 10000; ++i) {
        std::string key = "k-" + std::to_string(i);
        if (f.pool->home(balance::hash_key(key)) == b && skip-- == 0) return key;
    }
    ADD_FAILURE() << "no key homed on " << b->address();
    return "";
}

TEST(PoolSlowStart, CapIsTheWeightedShareOfAPlusOneTimesTheElapsedFraction) {
    Fixture f(4);
    f.config.slow_start = std::chrono::seconds(10);
    Backend& fresh = *f.backends[0];
    fresh.begin_slow_start(Backend::Clock::now() - std::chrono::seconds(5));
    for (int i = 1; i < 4; ++i)
        load(*f.backends[static_cast<size_t>(i)], 10);
    // A = 30, share = 1/4, half the window: 1/4 * 31 * 0.5 = 3.875.
    Loads l = f.pool->loads();
    EXPECT_NEAR(f.pool->slow_start_cap(fresh, l), 3.875, 0.05);
    // load_factor multiplies it.
    f.config.load_factor = 2.0;
    l = f.pool->loads();
    EXPECT_NEAR(f.pool->slow_start_cap(fresh, l), 7.75, 0.1);
    // Not in slow start: no cap.
    EXPECT_LT(f.pool->slow_start_cap(*f.backends[1], l), 0);
    // slow_start off: no cap either.
    f.config.slow_start = std::chrono::seconds(0);
    EXPECT_LT(f.pool->slow_start_cap(fresh, f.pool->loads()), 0);
}

TEST(PoolSlowStart, WeightShareCountsOnlyBackendsThatAreUp) {
    Fixture f(4);
    f.config.slow_start = std::chrono::seconds(10);
    Backend& fresh = *f.backends[0];
    fresh.begin_slow_start(Backend::Clock::now() - std::chrono::seconds(5));
    for (int i = 0; i < 3; ++i)
        f.backends[3]->record_failure(3, std::chrono::seconds(60));
    load(*f.backends[1], 9);
    // Three up of weight 1: share 1/3; A = 9: 1/3 * 10 * 0.5 = 1.67.
    EXPECT_NEAR(f.pool->slow_start_cap(fresh, f.pool->loads()), 10.0 / 6.0, 0.05);
}

TEST(PoolSlowStart, NewRoomsWalkOnPastTheCapButJoinersAreNeverRefused) {
    Fixture f(3);
    f.config.slow_start = std::chrono::seconds(100);
    Backend* fresh = f.backends[0].get();
    // 10% of the window, A = 20 on the others: cap = 1/3 * 21 * 0.1 = 0.7 connections.
    fresh->begin_slow_start(Backend::Clock::now() - std::chrono::seconds(10));
    load(*f.backends[1], 10);
    load(*f.backends[2], 10);
    std::string first = key_homed_on(f, fresh, 0);
    std::string second = key_homed_on(f, fresh, 1);
    Placement a = f.place(first);
    EXPECT_EQ(a.backend, fresh);  // 0 < 0.7: it takes one room
    // Now at its cap: the next new room homed on it walks on, and /route says why.
    auto route = f.pool->describe(second);
    ASSERT_FALSE(route.preference.empty());
    EXPECT_EQ(route.preference[0].backend, fresh);
    EXPECT_EQ(route.preference[0].skip, Skip::SlowStart);
    EXPECT_NE(route.chosen, fresh);
    Placement b = f.place(second);
    EXPECT_NE(b.backend, fresh);
    EXPECT_TRUE(b.room->displaced_by_load);
    // Joining the room it already has is never refused by slow start.
    Placement joiner = f.place(first, Pool::Outcome::Joined);
    EXPECT_EQ(joiner.backend, fresh);
    EXPECT_EQ(f.pool->describe(first).chosen, fresh);
    // The rehomer may not move a room there past the cap either.
    EXPECT_FALSE(f.pool->slow_start_allows(*fresh, 1));
    EXPECT_TRUE(f.pool->slow_start_allows(*f.backends[1], 1000));
    f.pool->release(a);
    f.pool->release(b);
    f.pool->release(joiner);
}

TEST(PoolSlowStart, LeastConnectionsDoesNotSendEverythingToTheFreshBackend) {
    // Without slow start the emptiest backend takes every new connection until it
    // catches up: exactly the burst slow start is for.
    Fixture f(3, config::Algorithm::LeastConnections);
    f.config.slow_start = std::chrono::seconds(100);
    Backend* fresh = f.backends[0].get();
    fresh->begin_slow_start(Backend::Clock::now() - std::chrono::seconds(10));
    load(*f.backends[1], 10);
    load(*f.backends[2], 10);
    Placement a = f.place("x");
    EXPECT_EQ(a.backend, fresh);  // cap 1/3 * 21 * 0.1 = 0.7: one connection
    Placement b = f.place("y");
    EXPECT_NE(b.backend, fresh);
    f.pool->release(a);
    f.pool->release(b);
}

TEST(PoolSlowStart, EveryBackendInSlowStartStillPlaces) {
    // A pool whose backends were all just added: no backend under a cap, so the key
    // goes to its first choice that is up, as with the load cap.
    Fixture f(2);
    f.config.slow_start = std::chrono::seconds(100);
    for (auto& b : f.backends)
        b->begin_slow_start();
    load(*f.backends[0], 5);
    load(*f.backends[1], 5);
    std::string key = key_homed_on(f, f.backends[1].get());
    Placement p = f.place(key);
    EXPECT_EQ(p.backend, f.backends[1].get());
    f.pool->release(p);
}

TEST(PoolSlowStart, WindowOverMeansNoCap) {
    Fixture f(2);
    f.config.slow_start = std::chrono::seconds(1);
    f.backends[0]->begin_slow_start(Backend::Clock::now() - std::chrono::seconds(2));
    load(*f.backends[1], 50);
    load(*f.backends[0], 50);
    EXPECT_LT(f.pool->slow_start_cap(*f.backends[0], f.pool->loads()), 0);
    std::string key = key_homed_on(f, f.backends[0].get());
    EXPECT_EQ(f.pool->describe(key).preference[0].skip, Skip::None);
}

// ---- admission (SPEC §3 Admission) ----
// Rates of 1 per second: no bucket refills within a test, so every count is exact.

config::AdmissionConfig admission(uint64_t pool_rate, uint64_t backend_rate, uint64_t burst) {
    config::AdmissionConfig a;
    a.new_connections_per_second = pool_rate;
    a.backend_new_connections_per_second = backend_rate;
    a.burst = burst;
    return a;
}

Placement place_with_tokens(Fixture& f, const std::string& key, Pool::Outcome expected) {
    Placement p;
    EXPECT_EQ(f.pool->place(key, balance::hash_key(key), {}, p, true), expected) << key;
    return p;
}

TEST(PoolAdmission, JoiningARoomTakesItsBackendsTokenAndIsShedNeverSplit) {
    Fixture f(3);
    f.config.admission = admission(0, 1, 2);
    Placement a = place_with_tokens(f, "room", Pool::Outcome::Placed);
    Placement b = place_with_tokens(f, "room", Pool::Outcome::Joined);
    // The room's backend has no token left: shed, although the others have theirs.
    Placement c = place_with_tokens(f, "room", Pool::Outcome::ShedBackend);
    EXPECT_FALSE(c);
    EXPECT_EQ(a.room->connections, 2u);
    EXPECT_EQ(a.backend->active(), 2);  // the shed connection holds no slot
    EXPECT_EQ(a.backend->shed_total(), 1u);
    auto route = f.pool->describe("room");
    EXPECT_EQ(route.chosen, a.backend);
    EXPECT_TRUE(route.rate_limited);
    f.pool->release(a);
    f.pool->release(b);
}

TEST(PoolAdmission, ANewRoomWalksPastEmptyBucketsAndIsShedWhenNoneHasAToken) {
    Fixture f(3);
    f.config.admission = admission(0, 1, 1);
    std::vector<Placement> held;
    std::vector<Backend*> used;
    // Keys whose home is backend 0: the first takes its only token, the next walk on.
    std::vector<std::string> keys;
    for (int i = 0; keys.size() < 4; ++i) {
        std::string key = "k" + std::to_string(i);
        if (f.pool->home(balance::hash_key(key)) == f.backends[0].get()) keys.push_back(key);
    }
    for (size_t i = 0; i < 3; ++i) {
        held.push_back(place_with_tokens(f, keys[i], Pool::Outcome::Placed));
        used.push_back(held.back().backend);
    }
    EXPECT_EQ(used[0], f.backends[0].get());
    std::sort(used.begin(), used.end());
    EXPECT_EQ(std::unique(used.begin(), used.end()) - used.begin(), 3);  // one each
    // Out of tokens is not a load rule: rehome may bring these rooms home later.
    EXPECT_FALSE(held[1].room->displaced_by_load);
    auto route = f.pool->describe(keys[3]);
    EXPECT_EQ(route.preference[0].skip, Skip::RateLimited);
    EXPECT_EQ(route.chosen, nullptr);
    EXPECT_TRUE(route.rate_limited);
    place_with_tokens(f, keys[3], Pool::Outcome::ShedBackend);
    // Counted on the key's first choice.
    EXPECT_EQ(f.backends[0]->shed_total(), 1u);
    EXPECT_EQ(f.pool->rooms()->size(), 3u);  // the shed key made no room
    for (auto& p : held)
        f.pool->release(p);
}

TEST(PoolAdmission, ThePoolsBucketShedsAndGetsItsTokenBackWhenNothingIsPlaced) {
    Fixture f(2);
    f.config.admission = admission(1, 0, 2);
    for (auto& b : f.backends)
        b->record_failure(1, std::chrono::hours(1));  // both down
    place_with_tokens(f, "a", Pool::Outcome::NoBackend);
    place_with_tokens(f, "b", Pool::Outcome::NoBackend);
    place_with_tokens(f, "c", Pool::Outcome::NoBackend);
    // The refusals above gave their tokens back: two are still there.
    for (auto& b : f.backends)
        b->record_success();
    Placement a = place_with_tokens(f, "a", Pool::Outcome::Placed);
    Placement b = place_with_tokens(f, "b", Pool::Outcome::Placed);
    EXPECT_TRUE(f.pool->describe("c").pool_rate_limited);
    place_with_tokens(f, "c", Pool::Outcome::ShedPool);
    // Joining an active room is a new connection into the pool too.
    place_with_tokens(f, "a", Pool::Outcome::ShedPool);
    EXPECT_EQ(f.pool->admission()->shed.load(), 2u);
    f.pool->release(a);
    f.pool->release(b);
}

TEST(PoolAdmission, WithoutTakeTokensNothingIsDrawn) {
    // Requests on a kept-alive connection, or a pool without the table.
    Fixture f(2);
    f.config.admission = admission(1, 1, 1);
    for (int i = 0; i < 5; ++i) {
        Placement p;
        EXPECT_EQ(f.pool->pick("k", balance::hash_key("k"), {}, p, false), Pool::Outcome::Placed);
        f.pool->release(p);
    }
    Fixture none(2);  // no [admission] table: taking tokens takes nothing
    std::vector<Placement> held;
    for (int i = 0; i < 5; ++i)
        held.push_back(place_with_tokens(none, "k" + std::to_string(i), Pool::Outcome::Placed));
    for (auto& p : held)
        none.pool->release(p);
}

TEST(PoolAdmission, PlainRequestsDrawLikeUpgradesButMakeNoRoom) {
    Fixture f(2);
    f.config.admission = admission(0, 1, 1);
    Placement room = place_with_tokens(f, "room", Pool::Outcome::Placed);
    // A request with the active room's key goes to its backend, which has no token.
    Placement p;
    EXPECT_EQ(f.pool->pick("room", balance::hash_key("room"), {}, p, true),
              Pool::Outcome::ShedBackend);
    EXPECT_FALSE(p);
    f.pool->release(room);
}

TEST(PoolAdmission, ARetryTakesTheNextBackendsToken) {
    Fixture f(2);
    f.config.admission = admission(0, 1, 1);
    Placement p = place_with_tokens(f, "room", Pool::Outcome::Placed);
    Backend* first = p.backend;
    std::vector<uint32_t> tried{static_cast<uint32_t>(f.pool->index_of(first))};
    EXPECT_EQ(f.pool->retry(balance::hash_key("room"), tried, p, true), Pool::Outcome::Placed);
    EXPECT_NE(p.backend, first);
    Backend* second = p.backend;
    // Both tokens are spent now: another room is shed on its first choice.
    place_with_tokens(f, "other", Pool::Outcome::ShedBackend);
    tried.push_back(static_cast<uint32_t>(f.pool->index_of(second)));
    EXPECT_EQ(f.pool->retry(balance::hash_key("room"), tried, p, true), Pool::Outcome::NoBackend);
    EXPECT_FALSE(p);
}

TEST(PoolAdmission, RetryWithoutATokenLeftIsShedAndReleasesTheRoom) {
    Fixture f(2);
    f.config.admission = admission(0, 1, 1);
    // Spend the token of the backend a retry of "room" would move to.
    Placement room = place_with_tokens(f, "room", Pool::Outcome::Placed);
    std::vector<uint32_t> tried{static_cast<uint32_t>(f.pool->index_of(room.backend))};
    Backend* other = f.backends[f.pool->index_of(room.backend) == 0 ? 1 : 0].get();
    std::string key;
    for (int i = 0; key.empty(); ++i) {
        std::string k = "x" + std::to_string(i);
        if (f.pool->home(balance::hash_key(k)) == other) key = k;
    }
    Placement spend = place_with_tokens(f, key, Pool::Outcome::Placed);
    EXPECT_EQ(f.pool->retry(balance::hash_key("room"), tried, room, true),
              Pool::Outcome::ShedBackend);
    EXPECT_FALSE(room);
    EXPECT_EQ(f.pool->rooms()->size(), 1u);
    f.pool->release(spend);
}

TEST(PoolAdmission, PastTheLoadCapAndTheEmptyBucketsTheRoomGoesHomeIfItHasAToken) {
    // The bounded-load fallback ("its first choice that is up") needs a token too.
    Fixture f(2, config::Algorithm::Ring, 1.0);
    auto homed_at = [&](const Backend* b, const std::string& prefix) {
        for (int i = 0;; ++i) {
            std::string k = prefix + std::to_string(i);
            if (f.pool->home(balance::hash_key(k)) == b) return k;
        }
    };
    Backend* b0 = f.backends[0].get();
    Backend* b1 = f.backends[1].get();
    // Three connections of one room on b0, placed without tokens.
    std::string room = homed_at(b0, "room");
    std::vector<Placement> held;
    for (int i = 0; i < 3; ++i)
        held.push_back(f.place(room, i == 0 ? Pool::Outcome::Placed : Pool::Outcome::Joined));
    f.config.admission = admission(0, 1, 1);
    // b1's only token goes to a room of its own.
    held.push_back(place_with_tokens(f, homed_at(b1, "one"), Pool::Outcome::Placed));
    ASSERT_EQ(held.back().backend, b1);
    // A = 4, cap = ceil(5 / 2) = 3: b0 is at the cap, b1 has no token: the room goes
    // to its first choice, b0, which has one.
    std::string key = homed_at(b0, "new");
    held.push_back(place_with_tokens(f, key, Pool::Outcome::Placed));
    EXPECT_EQ(held.back().backend, b0);
    // Now neither has a token.
    place_with_tokens(f, homed_at(b0, "late"), Pool::Outcome::ShedBackend);
    for (auto& p : held)
        f.pool->release(p);
}

}  // namespace
}  // namespace sb::pool
