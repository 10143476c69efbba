// Exposition: writes metrics in the Prometheus text exposition format (version
// 0.0.4): `# HELP` and `# TYPE` once per family, label values escaped (backslash,
// double quote, newline), histograms as cumulative `_bucket{le=...}` lines ending in
// `+Inf`, then `_sum` and `_count`. Pure; used by the admin listener at scrape time.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace sb::metrics {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Exposition {
  public:
    // Starts a family; samples added after it belong to it until the next family.
    void family(std::string_view name, std::string_view type, std::string_view help);
    void sample(std::string_view name, const Labels& labels, double value);
    void sample(std::string_view name, const Labels& labels, uint64_t value);
    void sample(std::string_view name, const Labels& labels, int64_t value);
    // A histogram: `counts` are per bucket (non-cumulative), one more than `bounds`
    // (the last is the overflow); `sum` in the same unit as the bounds.
    void histogram(std::string_view name, const Labels& labels, const std::vector<double>& bounds,
                   const std::vector<uint64_t>& counts, double sum);

    const std::string& text() const { return out_; }

    static std::string escape_label_value(std::string_view value);
    static std::string format_value(double value);

  private:
    void write_sample(std::string_view name, const Labels& labels, std::string_view value,
                      const std::pair<std::string, std::string>* extra = nullptr);

    std::string out_;
};

}  // namespace sb::metrics
