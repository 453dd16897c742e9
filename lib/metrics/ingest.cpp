// Loading usage events and revenue records from CSV and NDJSON files, streaming in blocks.
#include <automation/metrics/aggregator.hpp>

#include "metrics/blocks.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <memory>

namespace automation::metrics {

using namespace std::chrono;
namespace fs = std::filesystem;
namespace bj = boost::json;

namespace {

constexpr std::size_t kMaxErrors = 100;
constexpr std::size_t kRevenueBatch = 10000;

// ---- columns -----------------------------------------------------------------------------------

struct Column {
  std::string_view field;                   // the canonical name, for messages
  std::array<std::string_view, 6> aliases;  // normalized: lowercase letters and digits only
  bool required;
};

// Events: time, user, feature, type, duration, error.
constexpr std::array<Column, 6> kEventColumns{{
    {"timestamp", {"timestamp", "time", "ts", "createdat", "occurredat", "date"}, true},
    {"user_id", {"userid", "user", "uid"}, true},
    {"feature_key", {"featurekey", "feature"}, true},
    {"event_type", {"eventtype", "type", "event"}, true},
    {"duration", {"duration", "durationms"}, false},
    {"error_code", {"errorcode", "error"}, false},
}};
// Revenue: date, plan, total, new subscribers, active users, churn.
constexpr std::array<Column, 6> kRevenueColumns{{
    {"date", {"date", "day"}, true},
    {"plan", {"plan", "planname"}, true},
    {"total_revenue", {"totalrevenue", "revenue", "total"}, true},
    {"new_subscribers", {"newsubscribers", "newsubs"}, false},
    {"active_users", {"activeusers"}, false},
    {"churn_count", {"churncount", "churn", "churned"}, false},
}};

std::string normalize(std::string_view name) {
  std::string out;
  for (char c : name) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) out.push_back(static_cast<char>(std::tolower(u)));
  }
  return out;
}

// The field a header name maps to (-1: none) and how good a name for it it is (0: the best).
std::pair<int, int> column_for(const std::array<Column, 6>& cols, std::string_view name) {
  const auto n = normalize(name);
  for (std::size_t i = 0; i < cols.size(); ++i)
    for (std::size_t k = 0; k < cols[i].aliases.size(); ++k)
      if (!cols[i].aliases[k].empty() && cols[i].aliases[k] == n) return {static_cast<int>(i), static_cast<int>(k)};
  return {-1, 0};
}

// ---- values ------------------------------------------------------------------------------------

bool digits(std::string_view s, std::size_t pos, std::size_t n, int& out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (std::size_t i = pos; i < pos + n; ++i) {
    const char c = s[i];
    if (c < '0' || c > '9') return false;
    v = v * 10 + (c - '0');
  }
  out = v;
  return true;
}

Result<std::int64_t> slow_time_ms(std::string_view s) {
  auto t = parse_timestamp(s);
  if (!t) return fail(errc::invalid_argument, fmt::format("\"{}\" is not a time (use ISO-8601 or epoch seconds/milliseconds)", s));
  return to_epoch_ms(*t);
}

// "YYYY-MM-DD[T ]HH:MM:SS[.fff][Z|+hh:mm]" fast; anything else through parse_timestamp; a bare
// integer is epoch seconds (below 1e11) or milliseconds.
Result<std::int64_t> parse_any_time_ms(std::string_view s) {
  int y, mo, d, h, mi, se;
  if (s.size() >= 19 && s[4] == '-' && s[7] == '-' && (s[10] == 'T' || s[10] == ' ') && s[13] == ':' && s[16] == ':' &&
      digits(s, 0, 4, y) && digits(s, 5, 2, mo) && digits(s, 8, 2, d) && digits(s, 11, 2, h) && digits(s, 14, 2, mi) &&
      digits(s, 17, 2, se)) {
    std::size_t i = 19;
    int ms = 0;
    if (i < s.size() && s[i] == '.') {
      ++i;
      int n = 0;
      for (; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i, ++n)
        if (n < 3) ms = ms * 10 + (s[i] - '0');
      if (n == 0) return slow_time_ms(s);
      for (; n < 3; ++n) ms *= 10;
    }
    int offset_min = 0;
    if (i < s.size()) {
      int oh, om;
      if ((s[i] == 'Z' || s[i] == 'z') && i + 1 == s.size()) {
      } else if ((s[i] == '+' || s[i] == '-') && i + 6 == s.size() && s[i + 3] == ':' && digits(s, i + 1, 2, oh) &&
                 digits(s, i + 4, 2, om) && oh <= 23 && om <= 59) {
        offset_min = (s[i] == '-' ? -1 : 1) * (oh * 60 + om);
      } else {
        return slow_time_ms(s);
      }
    }
    const year_month_day ymd{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}};
    // Out of range: parse_timestamp decides, so both paths accept and refuse the same texts.
    if (!ymd.ok() || h > 23 || mi > 59 || se > 59) return slow_time_ms(s);
    const auto days_ms = static_cast<std::int64_t>(sys_days{ymd}.time_since_epoch().count()) * 86'400'000;
    return days_ms + ((h * 60 + mi) * 60 + se) * 1000LL + ms - offset_min * 60'000LL;
  }
  if (!s.empty() && s.find_first_not_of("0123456789") == std::string_view::npos && s.size() <= 15) {
    std::int64_t v = 0;
    std::from_chars(s.data(), s.data() + s.size(), v);
    return v < 100'000'000'000 ? v * 1000 : v;
  }
  return slow_time_ms(s);
}

Result<std::int64_t> parse_time_ms(std::string_view s) {
  auto t = parse_any_time_ms(s);
  if (t && (*t < detail::kMinEventTimeMs || *t >= detail::kEndEventTimeMs))
    return fail(errc::invalid_argument, fmt::format("\"{}\" is outside the years 1900-2199", s));
  return t;
}

// Milliseconds (a plain number, fractions allowed) or a duration with units ("1.5s"); -1 when empty.
Result<std::int64_t> parse_duration_us(std::string_view s) {
  if (s.empty()) return std::int64_t{-1};
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec == std::errc() && p == s.data() + s.size()) {
    if (!std::isfinite(v) || v < 0 || v * 1000.0 > static_cast<double>(detail::kMaxEventDurationUs))
      return fail(errc::invalid_argument, fmt::format("duration \"{}\" must be a number of milliseconds from 0 to 30 days", s));
    return static_cast<std::int64_t>(std::llround(v * 1000.0));
  }
  auto d = parse_duration(s);
  if (!d) return fail(errc::invalid_argument, fmt::format("duration \"{}\" is not milliseconds or a duration like 1.5s", s));
  if (d->count() > detail::kMaxEventDurationUs / 1000)
    return fail(errc::invalid_argument, fmt::format("duration \"{}\" is longer than 30 days", s));
  return static_cast<std::int64_t>(d->count()) * 1000;
}

bool no_error(std::string_view s) { return s.empty() || s == "null" || s == "NULL" || s == "none" || s == "None"; }

Result<std::int64_t> parse_count(std::string_view s, std::string_view what) {
  if (s.empty()) return std::int64_t{0};
  std::int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || v < 0)
    return fail(errc::invalid_argument, fmt::format("{} \"{}\" must be a whole number >= 0", what, s));
  return v;
}

// ---- readers -----------------------------------------------------------------------------------

struct FileCloser {
  void operator()(std::FILE* f) const noexcept { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

// Reads records (CSV rows honoring quotes, or NDJSON lines) in chunks, handing each complete record
// to the callback with its starting line and raw text (without the line end).
class RecordReader {
 public:
  RecordReader(std::FILE* f, bool csv) : f_(f), csv_(csv) { buf_.reserve(kChunk * 2); }

  template <class F>
  Result<void> each(F&& on_record) {
    std::size_t start = 0;
    bool eof = false;
    while (true) {
      // Find complete records in buf_[start, end).
      std::size_t i = start;
      // A quote opens only at the start of a field (or right after a closing one: "" inside
      // quotes), as the splitter reads it; a stray quote inside a field is plain text.
      bool quoted = false, closed = false, field_start = true;
      std::uint64_t lines_in = 0;
      std::size_t rec_begin = start;
      while (i < buf_.size()) {
        const char c = buf_[i];
        if (csv_) {
          if (quoted) {
            if (c == '"') {
              quoted = false;
              closed = true;
            }
          } else if (c == '"' && (field_start || closed)) {
            quoted = true;
            closed = false;
          } else {
            closed = false;
          }
          field_start = !quoted && (c == ',' || c == '\n');
        }
        if (c == '\n') {
          ++lines_in;
          if (!quoted) {
            std::size_t e = i;
            if (e > rec_begin && buf_[e - 1] == '\r') --e;
            if (!on_record(std::string_view(buf_.data() + rec_begin, e - rec_begin), line_)) return {};
            line_ += lines_in;
            lines_in = 0;
            rec_begin = i + 1;
          }
        }
        ++i;
      }
      consumed_ += rec_begin - start;
      if (eof) {
        if (rec_begin < buf_.size()) {
          // An unclosed quote reaches here too: the record's parser reports it as a bad row.
          std::size_t e = buf_.size();
          while (e > rec_begin && (buf_[e - 1] == '\r' || buf_[e - 1] == '\n')) --e;
          (void)on_record(std::string_view(buf_.data() + rec_begin, e - rec_begin), line_);
          consumed_ += buf_.size() - rec_begin;
        }
        return {};
      }
      if (buf_.size() - rec_begin > kMaxRecord)
        return fail(errc::invalid_argument,
                    fmt::format("line {}: a record longer than {} MB (an unclosed quote?)", line_, kMaxRecord >> 20));
      buf_.erase(0, rec_begin);
      start = 0;
      const auto old = buf_.size();
      buf_.resize(old + kChunk);
      const auto n = std::fread(buf_.data() + old, 1, kChunk, f_);
      buf_.resize(old + n);
      if (n < kChunk) {
        if (std::ferror(f_)) return fail(errc::io, "read error");
        eof = true;
      }
      // Rescan the carried-over part from its start (its quote state is unknown otherwise).
    }
  }
  std::uint64_t consumed() const noexcept { return consumed_; }

 private:
  static constexpr std::size_t kChunk = 1 << 20;
  static constexpr std::size_t kMaxRecord = 16 << 20;
  std::FILE* f_;
  bool csv_;
  std::string buf_;
  std::uint64_t line_ = 1;
  std::uint64_t consumed_ = 0;
};

// Splits one CSV record into fields (RFC 4180 quotes; "" inside quotes is a quote).
class CsvSplitter {
 public:
  Result<std::span<const std::string_view>> split(std::string_view rec) {
    fields_.clear();
    scratch_used_ = 0;
    std::size_t i = 0;
    while (true) {
      if (i < rec.size() && rec[i] == '"') {
        std::string& out = next_scratch();
        ++i;
        while (true) {
          const auto q = rec.find('"', i);
          if (q == std::string_view::npos) return fail(errc::invalid_argument, "a quoted field is not closed");
          out.append(rec.substr(i, q - i));
          if (q + 1 < rec.size() && rec[q + 1] == '"') {
            out.push_back('"');
            i = q + 2;
            continue;
          }
          i = q + 1;
          break;
        }
        fields_.push_back(out);
        if (i == rec.size()) break;
        if (rec[i] != ',') return fail(errc::invalid_argument, "text after a closing quote");
        ++i;
        continue;
      }
      const auto comma = rec.find(',', i);
      if (comma == std::string_view::npos) {
        fields_.push_back(rec.substr(i));
        break;
      }
      fields_.push_back(rec.substr(i, comma - i));
      i = comma + 1;
    }
    return std::span<const std::string_view>(fields_);
  }

 private:
  std::string& next_scratch() {
    if (scratch_used_ == scratch_.size()) scratch_.emplace_back();
    auto& s = scratch_[scratch_used_++];
    s.clear();
    return s;
  }
  std::vector<std::string_view> fields_;
  std::deque<std::string> scratch_;  // the unescaped quoted fields: a deque, so growing it moves none (views stay valid)
  std::size_t scratch_used_ = 0;
};

std::string_view trim_view(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Result<FileIngestReport> MetricsAggregator::ingest_file(RecordKind kind, const std::string& path, const FileIngestOptions& options) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return fail(errc::not_found, fmt::format("{}: no such file", path));
  const auto total = static_cast<std::uint64_t>(fs::file_size(path, ec));
  FileIngestReport report;
  report.path = path;
  bool csv = true;
  {
    File f(std::fopen(path.c_str(), "rb"));
    if (!f) return fail(errc::io, fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    if (options.format == FileFormat::ndjson) {
      csv = false;
    } else if (options.format == FileFormat::automatic) {
      const auto ext = fs::path(path).extension().string();
      if (ext == ".ndjson" || ext == ".jsonl") {
        csv = false;
      } else if (ext != ".csv") {
        int c;
        while ((c = std::fgetc(f.get())) != EOF && std::isspace(c)) {
        }
        csv = c != '{';
      }
    }
  }
  report.format = csv ? "csv" : "ndjson";
  const auto& cols = kind == RecordKind::events ? kEventColumns : kRevenueColumns;
  const std::string source = "file:" + fs::absolute(path, ec).lexically_normal().string();

  // One pass over the file; with `store` false it only checks (strict mode's first pass).
  auto pass = [&](bool store, FileIngestReport& rep) -> Result<void> {
    File f(std::fopen(path.c_str(), "rb"));
    if (!f) return fail(errc::io, fmt::format("{}: cannot open: {}", path, std::strerror(errno)));
    RecordReader reader(f.get(), csv);
    CsvSplitter splitter;
    std::array<int, 6> index{-1, -1, -1, -1, -1, -1};  // column -> field position (CSV)
    bool header_done = !csv;
    std::string header_line;
    File rejects;
    detail::BlockBuilder builder;
    std::int64_t block_first_row = 0, row = 0;
    std::vector<RevenueRecord> revenue_records;
    Result<void> failure;
    std::array<std::string_view, 6> v;
    std::array<std::string, 6> json_values;
    bj::monotonic_resource mr;
    bj::parse_options popts;

    // Records a bad row; true to go on reading (false when the rejects file cannot be written).
    auto reject = [&](std::uint64_t line, std::string_view raw, std::string reason) {
      ++rep.rejected;
      if (rep.errors.size() < kMaxErrors) rep.errors.push_back({line, std::move(reason)});
      if (!store) return true;
      if (!rejects) {
        rep.rejects_path = options.rejects_path.empty() ? path + ".rejects" : options.rejects_path;
        rejects.reset(std::fopen(rep.rejects_path.c_str(), "wb"));
        if (!rejects) {
          failure = fail(errc::io, fmt::format("{}: cannot write the rejected rows: {}", rep.rejects_path, std::strerror(errno)));
          return false;
        }
        if (csv) std::fprintf(rejects.get(), "%s\n", header_line.c_str());
      }
      std::fwrite(raw.data(), 1, raw.size(), rejects.get());
      std::fputc('\n', rejects.get());
      return true;
    };
    auto flush_events = [&]() -> Result<void> {
      if (builder.empty()) return {};
      if (store) {
        auto r = detail::store_block(store_, options_.time_zone, clock_.now(), builder.block(), {source, block_first_row});
        if (!r) return with_context(r.error(), fmt::format("{}: store rows {}..{}", path, block_first_row + 1, row));
        rep.events += *r;
        if (options.progress) options.progress(reader.consumed(), total);
      }
      builder.clear();
      block_first_row = row;
      return {};
    };
    auto flush_revenue = [&]() -> Result<void> {
      if (revenue_records.empty()) return {};
      if (store) {
        auto r = ingest_revenue(revenue_records);
        if (!r) return with_context(r.error(), fmt::format("{}: store revenue", path));
        rep.revenue += *r;
        if (options.progress) options.progress(reader.consumed(), total);
      }
      revenue_records.clear();
      return {};
    };

    auto on_record = [&](std::string_view raw, std::uint64_t line) -> bool {
      if (!header_done) {
        if (line == 1 && raw.size() >= 3 && raw.substr(0, 3) == "\xEF\xBB\xBF") raw.remove_prefix(3);  // a UTF-8 BOM
        if (trim_view(raw).empty()) return true;
        header_line = std::string(raw);
        auto fields = splitter.split(raw);
        if (!fields) {
          failure = fail(errc::invalid_argument, fmt::format("{} line {}: the header: {}", path, line, fields.error().message));
          return false;
        }
        std::vector<std::string> names;
        std::array<int, 6> rank{};
        for (std::size_t i = 0; i < fields->size(); ++i) {
          const auto name = trim_view((*fields)[i]);
          names.emplace_back(name);
          const auto [c, r] = column_for(cols, name);
          if (c < 0) continue;
          if (index[c] < 0 || r < rank[c]) {  // "timestamp" beats "date", "user_id" beats "user"
            index[c] = static_cast<int>(i);
            rank[c] = r;
          }
        }
        for (std::size_t i = 0; i < names.size() && store; ++i)
          if (std::find(index.begin(), index.end(), static_cast<int>(i)) == index.end()) rep.ignored_columns.push_back(names[i]);
        for (std::size_t c = 0; c < cols.size(); ++c)
          if (cols[c].required && index[c] < 0) {
            failure = fail(errc::invalid_argument, fmt::format("{}: no column for {} (a header such as {}); the header has: {}", path,
                                                               cols[c].field, cols[c].field, fmt::join(names, ", ")));
            return false;
          }
        header_done = true;
        return true;
      }
      if (trim_view(raw).empty()) return true;
      ++row;
      ++rep.rows;
      // The row's values by column.
      if (csv) {
        auto fields = splitter.split(raw);
        if (!fields) return reject(line, raw, fields.error().message);
        for (std::size_t c = 0; c < cols.size(); ++c) {
          if (index[c] < 0) {
            v[c] = {};
          } else if (static_cast<std::size_t>(index[c]) >= fields->size())
            return reject(line, raw, fmt::format("{} fields, the header has more (no {})", fields->size(), cols[c].field));
          else {
            v[c] = trim_view((*fields)[index[c]]);
          }
        }
        for (std::size_t c = 0; c < cols.size(); ++c)
          if (cols[c].required && v[c].empty()) return reject(line, raw, fmt::format("{} is empty", cols[c].field));
      } else {
        mr.release();
        std::error_code jec;
        auto doc = bj::parse(raw, jec, &mr, popts);
        if (jec || !doc.is_object()) return reject(line, raw, jec ? fmt::format("not JSON: {}", jec.message()) : "not a JSON object");
        std::array<int, 6> rank{};
        for (std::size_t c = 0; c < cols.size(); ++c) v[c] = {};
        for (const auto& kv : doc.as_object()) {
          const auto [c, rk] = column_for(cols, kv.key());
          if (c < 0 || (!v[c].empty() && rk >= rank[c])) continue;
          rank[c] = rk;
          const auto& val = kv.value();
          if (val.is_string()) {
            json_values[c] = std::string(val.as_string());
          } else if (val.is_null()) {
            json_values[c].clear();
          } else {
            json_values[c] = bj::serialize(val);
          }
          v[c] = json_values[c];
        }
        for (std::size_t c = 0; c < cols.size(); ++c)
          if (cols[c].required && v[c].empty()) return reject(line, raw, fmt::format("no \"{}\"", cols[c].field));
      }
      if (kind == RecordKind::events) {
        auto t = parse_time_ms(v[0]);
        if (!t) return reject(line, raw, "timestamp: " + t.error().message);
        auto d = parse_duration_us(v[4]);
        if (!d) return reject(line, raw, d.error().message);
        // The strict check pass only parses: nothing is built that would be thrown away.
        if (store) builder.add(*t, v[1], v[2], v[3], *d, no_error(v[5]) ? std::string_view() : v[5]);
        ++rep.accepted;
        if (builder.size() >= options_.block_events) {
          if (auto r = flush_events(); !r) {
            failure = r.error();
            return false;
          }
        }
      } else {
        RevenueRecord r;
        auto date = parse_date(v[0]);
        if (!date) return reject(line, raw, date.error().message);
        r.date = *date;
        r.plan = std::string(v[1]);
        auto [p, pec] = std::from_chars(v[2].data(), v[2].data() + v[2].size(), r.total_revenue);
        if (pec != std::errc() || p != v[2].data() + v[2].size() || !std::isfinite(r.total_revenue) || r.total_revenue < 0)
          return reject(line, raw, fmt::format("total_revenue \"{}\" must be a number >= 0", v[2]));
        auto subs = parse_count(v[3], "new_subscribers");
        auto active = parse_count(v[4], "active_users");
        auto churn = parse_count(v[5], "churn_count");
        for (const auto* x : {&subs, &active, &churn})
          if (!*x) return reject(line, raw, x->error().message);
        r.new_subscribers = *subs;
        r.active_users = *active;
        r.churn_count = *churn;
        if (store) revenue_records.push_back(std::move(r));
        ++rep.accepted;
        if (revenue_records.size() >= kRevenueBatch) {
          if (auto s = flush_revenue(); !s) {
            failure = s.error();
            return false;
          }
        }
      }
      return true;
    };
    if (auto r = reader.each(on_record); !r) return with_context(r.error(), path);
    if (!failure) return failure.error();
    if (!header_done) return fail(errc::invalid_argument, fmt::format("{}: the file is empty (no header)", path));
    if (auto r = kind == RecordKind::events ? flush_events() : flush_revenue(); !r) return r.error();
    if (options.progress) options.progress(total, total);
    return {};
  };

  if (options.strict) {
    FileIngestReport check = report;
    if (auto r = pass(false, check); !r) return r.error();
    if (check.rejected) {
      check.strict_rejected = true;
      return check;
    }
  }
  if (auto r = pass(true, report); !r) return r.error();
  return report;
}

}  // namespace automation::metrics
