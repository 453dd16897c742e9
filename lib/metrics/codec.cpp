#include "metrics/codec.hpp"

#include <detail/hash.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace automation::metrics::detail {

namespace {

using automation::detail::fnv1a;
using automation::detail::mix64;
using automation::storage::detail::quantize_us;

constexpr std::string_view kBlockMagic = "AUB1";
constexpr std::string_view kPartialMagic = "AUP1";
constexpr std::int64_t kDayMs = 86'400'000;

void put_varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>(v | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}
std::uint64_t zigzag(std::int64_t v) { return (static_cast<std::uint64_t>(v) << 1) ^ static_cast<std::uint64_t>(v >> 63); }
std::int64_t unzigzag(std::uint64_t v) { return static_cast<std::int64_t>(v >> 1) ^ -static_cast<std::int64_t>(v & 1); }
void put_string(std::string& out, std::string_view s) {
  put_varint(out, s.size());
  out.append(s);
}

// Reads what the put_* functions wrote; any overrun makes ok() false and later reads return 0.
class Reader {
 public:
  explicit Reader(std::string_view d) : p_(d.data()), end_(d.data() + d.size()) {}
  bool ok() const noexcept { return ok_; }
  bool at_end() const noexcept { return p_ == end_; }
  std::uint64_t varint() {
    std::uint64_t v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (p_ == end_) return bad();
      const auto b = static_cast<unsigned char>(*p_++);
      v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    return bad();
  }
  std::string_view string() {
    const auto n = varint();
    if (!ok_ || n > static_cast<std::uint64_t>(end_ - p_)) return bad(), std::string_view();
    std::string_view s(p_, n);
    p_ += n;
    return s;
  }
  bool magic(std::string_view m) {
    if (static_cast<std::size_t>(end_ - p_) < m.size() || std::memcmp(p_, m.data(), m.size()) != 0) return bad(), false;
    p_ += m.size();
    return true;
  }
  // A count of items each taking at least one byte: more than the bytes left is corrupt.
  std::uint64_t count() {
    const auto n = varint();
    if (n > static_cast<std::uint64_t>(end_ - p_)) return bad();
    return n;
  }

 private:
  std::uint64_t bad() {
    ok_ = false;
    p_ = end_;
    return 0;
  }
  const char* p_;
  const char* end_;
  bool ok_ = true;
};

// Sorted values as varint deltas after their count.
void put_deltas(std::string& out, const std::vector<std::uint64_t>& sorted) {
  put_varint(out, sorted.size());
  std::uint64_t prev = 0;
  for (auto h : sorted) {
    put_varint(out, h - prev);
    prev = h;
  }
}

// One feature of a partial: its name, counts and duration sum, then its duration histogram as the
// number of buckets and each bucket's value (as a delta from the previous one) and count, by value.
void put_feature(std::string& out, std::string_view name, std::uint64_t events, std::uint64_t errors, std::uint64_t duration_count,
                 std::int64_t duration_sum_us, const std::vector<std::pair<std::int64_t, std::uint64_t>>& hist) {
  put_string(out, name);
  put_varint(out, events);
  put_varint(out, errors);
  put_varint(out, duration_count);
  put_varint(out, static_cast<std::uint64_t>(duration_sum_us));
  put_varint(out, hist.size());
  std::int64_t prev = 0;
  for (auto [v, c] : hist) {
    put_varint(out, static_cast<std::uint64_t>(v - prev));
    put_varint(out, c);
    prev = v;
  }
}

std::uint64_t user_hash(std::string_view user) {
  const auto h = mix64(fnv1a(user));
  return h == 0 ? 1 : h;
}

// Quantized durations (three significant digits) map to dense buckets in value order: 0..999
// exactly, then 900 mantissas (100..999) per further decade.
std::size_t bucket_index(std::int64_t q) {
  if (q < 1000) return static_cast<std::size_t>(q);
  std::size_t k = 0;
  while (q >= 1000) {
    q /= 10;
    ++k;
  }
  return 1000 + (k - 1) * 900 + static_cast<std::size_t>(q - 100);
}
std::int64_t bucket_value(std::size_t i) {
  if (i < 1000) return static_cast<std::int64_t>(i);
  const auto k = (i - 1000) / 900 + 1;
  std::int64_t v = static_cast<std::int64_t>((i - 1000) % 900 + 100);
  for (std::size_t j = 0; j < k; ++j) v *= 10;
  return v;
}

std::int32_t floor_day(std::int64_t local_ms) {
  return static_cast<std::int32_t>(local_ms >= 0 ? local_ms / kDayMs : (local_ms - kDayMs + 1) / kDayMs);
}

}  // namespace

std::uint32_t BlockBuilder::intern(Dict& d, std::vector<std::string>& names, std::string_view s) {
  auto it = d.find(s);
  if (it != d.end()) return it->second;
  const auto i = static_cast<std::uint32_t>(names.size());
  names.emplace_back(s);
  d.emplace(std::string(s), i);
  return i;
}

void BlockBuilder::add(std::int64_t time_ms, std::string_view user, std::string_view feature, std::string_view type,
                       std::int64_t duration_us, std::string_view error) {
  block_.time_ms.push_back(time_ms);
  block_.user.push_back(intern(users_, block_.users, user));
  block_.feature.push_back(intern(features_, block_.features, feature));
  block_.type.push_back(intern(types_, block_.types, type));
  block_.error.push_back(error.empty() ? 0 : intern(errors_, block_.errors, error));
  block_.duration_us.push_back(duration_us);
}

void BlockBuilder::add(const UsageEvent& e) {
  add(to_epoch_ms(e.time), e.user_id, e.feature, e.event_type,
      e.duration ? std::chrono::duration_cast<std::chrono::microseconds>(*e.duration).count() : -1, e.error_code);
}

void BlockBuilder::clear() {
  block_ = Block();
  users_.clear();
  features_.clear();
  types_.clear();
  errors_.clear();
}

std::string encode_block(const Block& b) {
  std::string out;
  out.reserve(64 + b.size() * 10);
  out.append(kBlockMagic);
  put_varint(out, b.size());
  for (const auto* dict : {&b.users, &b.features, &b.types, &b.errors}) {
    put_varint(out, dict->size());
    for (const auto& s : *dict) put_string(out, s);
  }
  std::int64_t prev = 0;
  for (auto t : b.time_ms) {
    put_varint(out, zigzag(t - prev));
    prev = t;
  }
  for (auto v : b.user) put_varint(out, v);
  for (auto v : b.feature) put_varint(out, v);
  for (auto v : b.type) put_varint(out, v);
  for (auto v : b.error) put_varint(out, v);
  for (auto v : b.duration_us) put_varint(out, static_cast<std::uint64_t>(v + 1));
  return out;
}

Block slice_block(const Block& b, std::size_t from, std::size_t to) {
  BlockBuilder builder;
  for (std::size_t i = from; i < to && i < b.size(); ++i)
    builder.add(b.time_ms[i], b.users[b.user[i]], b.features[b.feature[i]], b.types[b.type[i]], b.duration_us[i], b.errors[b.error[i]]);
  return builder.block();
}

Result<Block> decode_block(std::string_view data) {
  Reader r(data);
  Block b;
  if (!r.magic(kBlockMagic)) return fail(errc::corrupt, "usage block: not in the AUB1 format");
  const auto n = r.count();
  b.errors.clear();
  for (auto* dict : {&b.users, &b.features, &b.types, &b.errors}) {
    const auto m = r.count();
    dict->reserve(m);
    for (std::uint64_t i = 0; i < m && r.ok(); ++i) dict->emplace_back(r.string());
  }
  if (b.errors.empty() || !b.errors[0].empty()) return fail(errc::corrupt, "usage block: the error dictionary does not start with none");
  b.time_ms.resize(n);
  std::int64_t prev = 0;
  for (auto& t : b.time_ms) t = prev += unzigzag(r.varint());
  auto column = [&](std::vector<std::uint32_t>& col, std::size_t limit) {
    col.resize(n);
    for (auto& v : col) {
      const auto x = r.varint();
      if (x >= limit) return false;
      v = static_cast<std::uint32_t>(x);
    }
    return true;
  };
  if (!column(b.user, b.users.size()) || !column(b.feature, b.features.size()) || !column(b.type, b.types.size()) ||
      !column(b.error, b.errors.size()))
    return fail(errc::corrupt, "usage block: an index is outside its dictionary");
  b.duration_us.resize(n);
  for (auto& d : b.duration_us) d = static_cast<std::int64_t>(r.varint()) - 1;
  if (!r.ok() || !r.at_end()) return fail(errc::corrupt, "usage block: truncated or with trailing bytes");
  return b;
}

std::string block_key(std::string_view d) {
  std::uint64_t a = 0x243f6a8885a308d3ull ^ d.size(), c = 0x13198a2e03707344ull;
  std::size_t i = 0;
  for (; i + 8 <= d.size(); i += 8) {
    std::uint64_t w;
    std::memcpy(&w, d.data() + i, 8);
    a = mix64(a ^ w);
    c = (c ^ w) * 0x9fb21c651e98df25ull + (c >> 29);
  }
  std::uint64_t tail = 0;
  std::memcpy(&tail, d.data() + i, d.size() - i);
  a = mix64(a ^ tail ^ 0xa5);
  c = mix64(c ^ tail ^ (d.size() << 8));
  return fmt::format("b1-{:016x}{:016x}", a, c);
}

std::vector<DayPartial> partials(const Block& b, const TimeZone& zone) {
  struct FeatureAcc {
    std::uint64_t events = 0, errors = 0, duration_count = 0;
    std::int64_t duration_sum_us = 0;
    std::unordered_map<std::int64_t, std::uint64_t> hist;
  };
  struct Day {
    std::vector<FeatureAcc> features;
    std::vector<std::uint64_t> types, errors;
    std::vector<std::uint64_t> users;
  };
  std::vector<std::uint64_t> user_hashes(b.users.size());
  for (std::size_t i = 0; i < b.users.size(); ++i) user_hashes[i] = user_hash(b.users[i]);

  std::unordered_map<std::int32_t, Day> days;
  // The zone's offset holds over a span; look it up again only when an event leaves it.
  TimeZone::Period span{};
  bool have_span = false;
  Day* last = nullptr;
  std::int32_t last_day = 0;
  for (std::size_t i = 0; i < b.size(); ++i) {
    const auto t = from_epoch_ms(b.time_ms[i]);
    if (!have_span || t < span.begin || t >= span.end) {
      span = zone.period(t);
      have_span = true;
    }
    const auto day = floor_day(b.time_ms[i] + std::chrono::duration_cast<Millis>(span.offset).count());
    if (!last || day != last_day) {
      auto [it, fresh] = days.try_emplace(day);
      if (fresh) {
        it->second.features.resize(b.features.size());
        it->second.types.resize(b.types.size());
        it->second.errors.resize(b.errors.size());
      }
      last = &it->second;
      last_day = day;
    }
    auto& f = last->features[b.feature[i]];
    ++f.events;
    if (b.error[i]) {
      ++f.errors;
      ++last->errors[b.error[i]];
    }
    if (b.duration_us[i] >= 0) {
      ++f.duration_count;
      f.duration_sum_us += b.duration_us[i];
      ++f.hist[quantize_us(b.duration_us[i])];
    }
    ++last->types[b.type[i]];
    last->users.push_back(user_hashes[b.user[i]]);
  }

  std::vector<DayPartial> out;
  out.reserve(days.size());
  for (auto& [day, d] : days) {
    std::string s;
    s.append(kPartialMagic);
    std::uint64_t events = 0, errors = 0, active = 0;
    for (const auto& f : d.features) {
      events += f.events;
      errors += f.errors;
      active += f.events ? 1 : 0;
    }
    put_varint(s, events);
    put_varint(s, errors);
    put_varint(s, active);
    std::vector<std::pair<std::int64_t, std::uint64_t>> hist;
    for (std::size_t k = 0; k < d.features.size(); ++k) {
      const auto& f = d.features[k];
      if (!f.events) continue;
      hist.assign(f.hist.begin(), f.hist.end());
      std::sort(hist.begin(), hist.end());
      put_feature(s, b.features[k], f.events, f.errors, f.duration_count, f.duration_sum_us, hist);
    }
    for (const auto* named : {&d.types, &d.errors}) {
      const auto& names = named == &d.types ? b.types : b.errors;
      std::uint64_t n = 0;
      for (auto c : *named) n += c ? 1 : 0;
      put_varint(s, n);
      for (std::size_t k = 0; k < named->size(); ++k) {
        if (!(*named)[k]) continue;
        put_string(s, names[k]);
        put_varint(s, (*named)[k]);
      }
    }
    std::sort(d.users.begin(), d.users.end());
    d.users.erase(std::unique(d.users.begin(), d.users.end()), d.users.end());
    put_deltas(s, d.users);
    out.push_back({day, std::move(s)});
  }
  std::sort(out.begin(), out.end(), [](const DayPartial& a, const DayPartial& b) { return a.day < b.day; });
  return out;
}

void HashSet::insert(std::uint64_t h) {
  if (h == 0) h = 1;
  if ((size_ + 1) * 2 > slots_.size()) grow();
  const auto mask = slots_.size() - 1;
  for (auto i = static_cast<std::size_t>(h) & mask;; i = (i + 1) & mask) {
    if (slots_[i] == h) return;
    if (slots_[i] == 0) {
      slots_[i] = h;
      ++size_;
      return;
    }
  }
}

void HashSet::grow() {
  std::vector<std::uint64_t> old(std::max<std::size_t>(1024, slots_.size() * 2), 0);
  old.swap(slots_);
  size_ = 0;
  for (auto h : old)
    if (h) insert(h);
}

std::vector<std::uint64_t> HashSet::sorted() const {
  std::vector<std::uint64_t> out;
  out.reserve(size_);
  for (auto h : slots_)
    if (h) out.push_back(h);
  std::sort(out.begin(), out.end());
  return out;
}

Result<void> UsageAccumulator::merge(std::string_view data) {
  Reader r(data);
  if (!r.magic(kPartialMagic)) return fail(errc::corrupt, "usage partial: not in the AUP1 format");
  events_ += r.varint();
  errors_ += r.varint();
  const auto nf = r.count();
  for (std::uint64_t k = 0; k < nf && r.ok(); ++k) {
    const auto name = r.string();
    auto it = features_.find(name);
    if (it == features_.end()) it = features_.emplace(std::string(name), Feature{}).first;
    auto& f = it->second;
    f.events += r.varint();
    f.errors += r.varint();
    f.duration_count += r.varint();
    f.duration_sum_us += static_cast<std::int64_t>(r.varint());
    const auto nh = r.count();
    std::int64_t v = 0;
    for (std::uint64_t j = 0; j < nh && r.ok(); ++j) {
      v += static_cast<std::int64_t>(r.varint());
      const auto c = r.varint();
      if (v < 0 || quantize_us(v) != v) return fail(errc::corrupt, "usage partial: a duration bucket is not quantized");
      const auto i = bucket_index(v);
      if (i >= f.hist.size()) f.hist.resize(i + 1);
      f.hist[i] += c;
    }
  }
  for (auto* named : {&types_, &error_codes_}) {
    const auto n = r.count();
    for (std::uint64_t k = 0; k < n && r.ok(); ++k) {
      const auto name = r.string();
      auto it = named->find(name);
      if (it == named->end()) it = named->emplace(std::string(name), 0).first;
      it->second += r.varint();
    }
  }
  const auto nu = r.count();
  std::uint64_t h = 0;
  for (std::uint64_t k = 0; k < nu && r.ok(); ++k) users_.insert(h += r.varint());
  if (!r.ok() || !r.at_end()) return fail(errc::corrupt, "usage partial: truncated or with trailing bytes");
  return {};
}

std::string UsageAccumulator::encode() const {
  std::string s;
  s.append(kPartialMagic);
  put_varint(s, events_);
  put_varint(s, errors_);
  std::vector<const std::pair<const std::string, Feature>*> features;
  for (const auto& kv : features_) features.push_back(&kv);
  std::sort(features.begin(), features.end(), [](auto* a, auto* b) { return a->first < b->first; });
  put_varint(s, features.size());
  std::vector<std::pair<std::int64_t, std::uint64_t>> hist;
  for (const auto* kv : features) {
    const auto& f = kv->second;
    hist.clear();
    for (std::size_t i = 0; i < f.hist.size(); ++i)
      if (f.hist[i]) hist.emplace_back(bucket_value(i), f.hist[i]);
    put_feature(s, kv->first, f.events, f.errors, f.duration_count, f.duration_sum_us, hist);
  }
  for (const auto* named : {&types_, &error_codes_}) {
    std::vector<std::pair<std::string, std::uint64_t>> items(named->begin(), named->end());
    std::sort(items.begin(), items.end());
    put_varint(s, items.size());
    for (const auto& [name, c] : items) {
      put_string(s, name);
      put_varint(s, c);
    }
  }
  put_deltas(s, users_.sorted());
  return s;
}

namespace {

// Nearest-rank percentile over dense buckets, in milliseconds.
double percentile_ms(const std::vector<std::uint64_t>& hist, std::uint64_t count, double p) {
  if (count == 0) return 0;
  const auto rank = std::max<std::uint64_t>(1, static_cast<std::uint64_t>(std::ceil(p * static_cast<double>(count))));
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < hist.size(); ++i) {
    seen += hist[i];
    if (seen >= rank) return static_cast<double>(bucket_value(i)) / 1000.0;
  }
  return hist.empty() ? 0 : static_cast<double>(bucket_value(hist.size() - 1)) / 1000.0;
}

DurationStats duration_stats(const std::vector<std::uint64_t>& hist, std::uint64_t count, std::int64_t sum_us) {
  DurationStats d;
  d.count = count;
  if (!count) return d;
  d.mean_ms = static_cast<double>(sum_us) / static_cast<double>(count) / 1000.0;
  d.p50_ms = percentile_ms(hist, count, 0.50);
  d.p95_ms = percentile_ms(hist, count, 0.95);
  return d;
}

template <class Map>
std::vector<NamedCount> ranked(const Map& m) {
  std::vector<NamedCount> out;
  for (const auto& [name, c] : m) out.push_back({name, c});
  std::sort(out.begin(), out.end(),
            [](const NamedCount& a, const NamedCount& b) { return a.count != b.count ? a.count > b.count : a.name < b.name; });
  return out;
}

}  // namespace

UsageSummary UsageAccumulator::summary() const {
  UsageSummary s;
  s.events = events_;
  s.errors = errors_;
  s.error_rate = events_ ? static_cast<double>(errors_) / static_cast<double>(events_) : 0;
  s.unique_users = users_.size();
  std::vector<std::uint64_t> all;
  std::uint64_t all_count = 0;
  std::int64_t all_sum = 0;
  for (const auto& [name, f] : features_) {
    FeatureUsage u;
    u.feature = name;
    u.events = f.events;
    u.errors = f.errors;
    u.error_rate = f.events ? static_cast<double>(f.errors) / static_cast<double>(f.events) : 0;
    u.duration = duration_stats(f.hist, f.duration_count, f.duration_sum_us);
    if (f.hist.size() > all.size()) all.resize(f.hist.size());
    for (std::size_t i = 0; i < f.hist.size(); ++i) all[i] += f.hist[i];
    all_count += f.duration_count;
    all_sum += f.duration_sum_us;
    s.features.push_back(std::move(u));
  }
  std::sort(s.features.begin(), s.features.end(), [](const FeatureUsage& a, const FeatureUsage& b) {
    return a.events != b.events ? a.events > b.events : a.feature < b.feature;
  });
  s.duration = duration_stats(all, all_count, all_sum);
  s.event_types = ranked(types_);
  s.error_codes = ranked(error_codes_);
  return s;
}

}  // namespace automation::metrics::detail
