// sb-balance-sim's output: the figures of one run as Markdown tables (stdout) and as
// one JSON object (--json FILE). Owns no state; formats a SimReport.
#pragma once

#include <cstdio>
#include <vector>

#include <nlohmann/json.hpp>

#include "balance_sim/sim.h"

namespace sb::tools {

struct SimReport {
    SimParams params;
    std::vector<KeyResult> keys;
    std::vector<AddressSetResult> address_sets;
    std::vector<BoundedResult> bounded;
    RoomsWorkload workload;  // the rooms scenario's sizes (arrivals are not reported)
    std::vector<RoomsResult> rooms;
    double seconds = 0;  // wall time of the whole run
    struct {
        double keys = 0, address_sets = 0, bounded = 0, rooms = 0;
    } phase_seconds;
};

void print_markdown(const SimReport& report, std::FILE* out);
nlohmann::json report_json(const SimReport& report);

}  // namespace sb::tools
