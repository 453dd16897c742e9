#pragma once
// The stored forms of usage events (a columnar block) and of their per-day aggregates (a partial),
// and the accumulator that merges partials into a period's summary. docs/metrics.md describes the
// formats; both are versioned by their magic.
#include <automation/core/error.hpp>
#include <automation/core/time.hpp>
#include <automation/metrics/metrics.hpp>

#include "storage/task_stats.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace automation::metrics::detail {

using automation::storage::detail::StringHash;

// The times and durations a usage event may have, checked by validate() and the file loaders:
// the years 1900-2199 (others are typos, and TimePoint's nanoseconds cannot hold much more), and
// 0 to 30 days.
inline constexpr std::int64_t kMinEventTimeMs = -2'208'988'800'000, kEndEventTimeMs = 7'258'118'400'000;
inline constexpr std::int64_t kMaxEventDurationUs = 30LL * 86'400'000'000;

// A block of events with per-block dictionaries; error index 0 is "no error", duration -1 is none.
struct Block {
  std::vector<std::string> users, features, types, errors{std::string()};
  std::vector<std::int64_t> time_ms, duration_us;
  std::vector<std::uint32_t> user, feature, type, error;

  std::size_t size() const noexcept { return time_ms.size(); }
};

class BlockBuilder {
 public:
  void add(std::int64_t time_ms, std::string_view user, std::string_view feature, std::string_view type, std::int64_t duration_us,
           std::string_view error);
  void add(const UsageEvent& e);
  std::size_t size() const noexcept { return block_.size(); }
  bool empty() const noexcept { return block_.size() == 0; }
  const Block& block() const noexcept { return block_; }
  void clear();

 private:
  using Dict = std::unordered_map<std::string, std::uint32_t, StringHash, std::equal_to<>>;
  static std::uint32_t intern(Dict& d, std::vector<std::string>& names, std::string_view s);
  Block block_;
  Dict users_, features_, types_, errors_;
};

std::string encode_block(const Block& b);
// The events [from, to) of `b` as a block of their own (dictionaries rebuilt).
Block slice_block(const Block& b, std::size_t from, std::size_t to);
Result<Block> decode_block(std::string_view data);
// A stable 128-bit content hash of encoded data, as "b1-" and 32 hex digits.
std::string block_key(std::string_view encoded);

struct DayPartial {
  std::int32_t day = 0;
  std::string data;
};
// The block's aggregates per local day of `zone`, ordered by day.
std::vector<DayPartial> partials(const Block& b, const TimeZone& zone);

// A 64-bit hash set of user-id hashes (open addressing); 0 is stored as 1.
class HashSet {
 public:
  void insert(std::uint64_t h);
  std::size_t size() const noexcept { return size_; }
  // The members, sorted.
  std::vector<std::uint64_t> sorted() const;

 private:
  void grow();
  std::vector<std::uint64_t> slots_;
  std::size_t size_ = 0;
};

// Merges partials into a period's usage summary, or into one partial (compaction).
class UsageAccumulator {
 public:
  Result<void> merge(std::string_view partial);
  UsageSummary summary() const;
  // The merged partials as one partial.
  std::string encode() const;

 private:
  struct Feature {
    std::uint64_t events = 0, errors = 0, duration_count = 0;
    std::int64_t duration_sum_us = 0;
    std::vector<std::uint64_t> hist;  // bucket_index(quantized duration) -> count
  };
  std::uint64_t events_ = 0, errors_ = 0;
  std::unordered_map<std::string, Feature, StringHash, std::equal_to<>> features_;
  std::unordered_map<std::string, std::uint64_t, StringHash, std::equal_to<>> types_, error_codes_;
  HashSet users_;
};

}  // namespace automation::metrics::detail
