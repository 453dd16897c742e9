#pragma once
// The Numenta Anomaly Benchmark (v1.1) shared by the benchmark and the regression test: loads
// ../shared/data/nab (58 series and their labelled windows) and scores a detector's per-row
// anomaly scores the way NAB's sweeper and runner do:
// - the first 15 % of each file (at most 750 rows) is probationary and not scored;
// - in a window only the earliest detection counts, worth scaledSigmoid(position) / scaledSigmoid(-1)
//   times A_TP, where position runs from -1 at the window's first row to ~0 at its last; a window
//   without a detection costs A_FN;
// - a detection outside every window costs A_FP times -scaledSigmoid(distance past the last window
//   in window widths), the full A_FP before the first window;
// - the threshold is the one that maximises the score summed over the corpus (an exact sweep over
//   every distinct score), and the total is normalised to 100 for a perfect detector and 0 for the
//   null detector: 100 * (raw - null) / (windows * A_TP - null).
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/metrics/anomaly.hpp>

#include "support/temp_dir.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace nab {

struct Series {
  std::string name;                // "realKnownCause/nyc_taxi.csv"
  std::vector<std::int64_t> time;  // seconds since the epoch (UTC)
  std::vector<double> value;
  std::vector<std::pair<std::size_t, std::size_t>> windows;  // inclusive row ranges
};

struct Profile {
  std::string name;
  double tp = 1.0, fp = 0.11, fn = 1.0;
};
inline const Profile kStandard{"standard", 1.0, 0.11, 1.0};
inline const Profile kRewardLowFp{"reward_low_FP_rate", 1.0, 0.22, 1.0};
inline const Profile kRewardLowFn{"reward_low_FN_rate", 1.0, 0.11, 2.0};

/// The shared data directory: $AUTOMATION_SHARED_DATA, else ../shared/data beside the source tree,
/// else /work/shared/data.
inline std::filesystem::path data_dir(const std::filesystem::path& source_dir) {
  if (const char* env = std::getenv("AUTOMATION_SHARED_DATA")) return env;
  for (auto p : {source_dir / ".." / "shared" / "data", std::filesystem::path("/work/shared/data")})
    if (std::filesystem::exists(p / "nab" / "labels" / "combined_windows.json")) return p;
  throw std::runtime_error("NAB data not found: set AUTOMATION_SHARED_DATA to the folder holding nab/");
}

/// "YYYY-MM-DD HH:MM:SS[.ffffff]" (UTC) -> whole seconds since the epoch.
inline std::int64_t parse_time(const std::string& s) {
  auto t = automation::parse_timestamp(s);
  if (!t) throw std::runtime_error("NAB: " + t.error().message);
  return std::chrono::floor<std::chrono::seconds>(t->time_since_epoch()).count();
}

inline std::vector<Series> load(const std::filesystem::path& nab_dir) {
  const auto labels = nab_dir / "labels" / "combined_windows.json";
  if (!std::filesystem::exists(labels)) throw std::runtime_error("cannot open " + labels.string());
  auto doc = automation::json::parse(automation::test::read_file(labels.string()), "combined_windows.json");
  if (!doc) throw std::runtime_error(doc.error().message);
  std::vector<Series> all;
  for (const auto& [key, wins] : doc->as_object()) {
    Series s;
    s.name = std::string(key);
    std::ifstream in(nab_dir / "data" / s.name);
    if (!in) throw std::runtime_error("cannot open NAB file " + s.name);
    std::string line;
    std::getline(in, line);  // header
    std::map<std::int64_t, std::size_t> row_of;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      const auto comma = line.find(',');
      if (comma == std::string::npos) throw std::runtime_error("NAB: bad line in " + s.name + ": " + line);
      s.time.push_back(parse_time(line.substr(0, comma)));
      s.value.push_back(std::stod(line.substr(comma + 1)));
      row_of.emplace(s.time.back(), s.time.size() - 1);  // a repeated time is its first row, as in NAB
    }
    for (const auto& w : wins.as_array()) {
      const auto& pair = w.as_array();
      const auto a = row_of.find(parse_time(std::string(pair.at(0).as_string())));
      const auto b = row_of.find(parse_time(std::string(pair.at(1).as_string())));
      if (a == row_of.end() || b == row_of.end()) throw std::runtime_error("NAB: window not in data: " + s.name);
      s.windows.emplace_back(a->second, b->second);
    }
    all.push_back(std::move(s));
  }
  std::sort(all.begin(), all.end(), [](const Series& a, const Series& b) { return a.name < b.name; });
  return all;
}

inline double scaled_sigmoid(double position) {
  if (position >= 3.0) return -1.0;
  return 2.0 / (1.0 + std::exp(5.0 * position)) - 1.0;
}

inline std::size_t probation_rows(std::size_t rows) {
  return static_cast<std::size_t>(std::min(std::floor(0.15 * static_cast<double>(rows)), 0.15 * 5000));
}

struct Result {
  double threshold = 0;   // detections are rows with score >= threshold
  double raw = 0;         // the profile's raw score
  double normalized = 0;  // 0 = null detector, 100 = perfect
  std::size_t windows = 0, detected_windows = 0, fp_rows = 0, tp_rows = 0;
};

namespace detail {
struct Point {
  double score;
  double sweep;  // weighted contribution when detected
  int window;    // corpus-wide window id, -1 outside windows
};
}  // namespace detail

/// Scores per-row anomaly scores (scores[f][i] for series f, row i). With `fixed_threshold` < 0
/// the threshold is optimised over the corpus, as NAB does; otherwise it is used as given.
inline Result score(const std::vector<Series>& corpus, const std::vector<std::vector<double>>& scores, const Profile& profile,
                    double fixed_threshold = -1) {
  if (scores.size() != corpus.size()) throw std::runtime_error("NAB: one score vector per series");
  const double max_tp = scaled_sigmoid(-1.0);
  std::vector<detail::Point> points;
  std::size_t total_windows = 0;
  std::vector<char> scorable_window;
  for (std::size_t f = 0; f < corpus.size(); ++f) {
    const auto& s = corpus[f];
    if (scores[f].size() != s.value.size()) throw std::runtime_error("NAB: score count differs for " + s.name);
    total_windows += s.windows.size();
    const std::size_t probation = probation_rows(s.value.size());
    const int base = static_cast<int>(scorable_window.size());
    scorable_window.resize(scorable_window.size() + s.windows.size(), 0);
    std::size_t next = 0;
    long prev_right = -1;
    double prev_width = 0;
    for (std::size_t i = 0; i < s.value.size(); ++i) {
      while (next < s.windows.size() && s.windows[next].second < i) {
        prev_right = static_cast<long>(s.windows[next].second);
        prev_width = static_cast<double>(s.windows[next].second - s.windows[next].first + 1);
        ++next;
      }
      detail::Point p{scores[f][i], 0, -1};
      if (next < s.windows.size() && s.windows[next].first <= i) {
        const auto [l, r] = s.windows[next];
        const double width = static_cast<double>(r - l + 1);
        p.sweep = scaled_sigmoid(-static_cast<double>(r - i + 1) / width) * profile.tp / max_tp;
        p.window = base + static_cast<int>(next);
      } else {
        const double pos = prev_right < 0 ? 3.0 : std::abs(static_cast<double>(prev_right) - static_cast<double>(i)) / (prev_width - 1);
        p.sweep = scaled_sigmoid(pos) * profile.fp;
      }
      if (i < probation) continue;
      if (p.window >= 0) scorable_window[static_cast<std::size_t>(p.window)] = 1;
      points.push_back(p);
    }
  }
  std::sort(points.begin(), points.end(), [](const auto& a, const auto& b) { return a.score > b.score; });
  std::size_t scorable = 0;
  for (char c : scorable_window) scorable += c != 0;
  std::vector<double> best(scorable_window.size(), -profile.fn);
  double total = -profile.fn * static_cast<double>(scorable);
  Result out;
  out.threshold = points.empty() ? 1.0 : points.front().score + 1.0;
  out.raw = total;
  std::size_t fp = 0, tp = 0;
  std::vector<char> hit(scorable_window.size(), 0);
  std::size_t detected = 0;
  for (std::size_t k = 0; k < points.size();) {
    const double level = points[k].score;
    if (fixed_threshold >= 0 && level < fixed_threshold) break;
    for (; k < points.size() && points[k].score == level; ++k) {
      const auto& p = points[k];
      if (p.window < 0) {
        total += p.sweep;
        ++fp;
      } else {
        const auto w = static_cast<std::size_t>(p.window);
        if (p.sweep > best[w]) {
          total += p.sweep - best[w];
          best[w] = p.sweep;
        }
        ++tp;
        if (!hit[w]) hit[w] = 1, ++detected;
      }
    }
    if (fixed_threshold >= 0 || total > out.raw) {
      out.raw = total;
      out.threshold = level;
      out.fp_rows = fp;
      out.tp_rows = tp;
      out.detected_windows = detected;
    }
  }
  out.windows = total_windows;
  const double null_score = -profile.fn * static_cast<double>(scorable);
  const double perfect = static_cast<double>(total_windows) * profile.tp;
  out.normalized = 100.0 * (out.raw - null_score) / (perfect - null_score);
  if (fixed_threshold >= 0) out.threshold = fixed_threshold;
  return out;
}

/// NAB's windowed Gaussian baseline (published standard score 39.6): the score is 1 - Q(|z|), z the
/// value's distance from the mean of the last 6,400 values in their standard deviations (so in
/// [0.5, 1]), the window moving in steps of 100.
inline std::vector<double> windowed_gaussian(const Series& s) {
  std::vector<double> out, window, step;
  double mean = 0, sd = 1;
  auto refit = [&] {
    double sum = 0, sq = 0;
    for (double x : window) sum += x;
    mean = sum / static_cast<double>(window.size());
    for (double x : window) sq += (x - mean) * (x - mean);
    sd = std::sqrt(sq / static_cast<double>(window.size()));
    if (sd == 0) sd = 1e-6;
  };
  for (double x : s.value) {
    out.push_back(window.empty() ? 0.0 : 1.0 - 0.5 * std::erfc(std::abs(x - mean) / sd / std::sqrt(2.0)));
    if (window.size() < 6400) {
      window.push_back(x);
      refit();
    } else if (step.push_back(x); step.size() == 100) {
      window.erase(window.begin(), window.begin() + 100);
      window.insert(window.end(), step.begin(), step.end());
      step.clear();
      refit();
    }
  }
  return out;
}

/// The corpus under ../shared/data/nab, loaded once per process.
inline const std::vector<Series>& corpus(const std::filesystem::path& source_dir) {
  static const auto all = load(data_dir(source_dir) / "nab");
  return all;
}

/// A fresh AnomalyDetector per series, learning for NAB's probationary period: its score per row.
inline std::vector<std::vector<double>> detector_scores(const std::vector<Series>& all) {
  std::vector<std::vector<double>> scores;
  for (const auto& s : all) {
    automation::metrics::AnomalyOptions o;
    o.learning_points = probation_rows(s.value.size());  // NAB's rule, as its scorer applies it
    std::vector<automation::metrics::SeriesPoint> points(s.value.size());
    for (std::size_t i = 0; i < points.size(); ++i) points[i] = {automation::TimePoint(std::chrono::seconds(s.time[i])), s.value[i]};
    auto r = automation::metrics::detect_anomalies(points, o);
    if (!r) throw std::runtime_error(s.name + ": " + r.error().message);
    auto& out = scores.emplace_back();
    out.reserve(r->size());
    for (const auto& x : *r) out.push_back(x.score);
  }
  return scores;
}

/// The published standard-profile score of a detector in results/final_results.json.
inline double published(const std::filesystem::path& nab_dir, const std::string& detector, const std::string& profile = "standard") {
  auto doc =
      automation::json::parse(automation::test::read_file((nab_dir / "results" / "final_results.json").string()), "final_results.json");
  if (!doc) throw std::runtime_error(doc.error().message);
  return doc->at(detector).at(profile).to_number<double>();
}

}  // namespace nab
