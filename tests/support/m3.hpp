#pragma once
// The M3 competition evaluation shared by the benchmark and the regression test: loads
// ../shared/data/m3/m3.csv and scores a forecasting method per category with the M4 definitions
// (sMAPE, MASE, OWA against Naive2, 95 % coverage and MSIS).
#include <automation/forecast/forecast.hpp>

#include <array>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace m3 {

struct Series {
  std::string id;
  std::string category;  // YEARLY, QUARTERLY, MONTHLY, OTHER
  std::size_t period = 1;
  std::vector<double> train, test;
};

/// The shared data directory: $AUTOMATION_SHARED_DATA, else ../shared/data beside the source
/// tree, else /work/shared/data.
inline std::filesystem::path data_dir(const std::filesystem::path& source_dir) {
  if (const char* env = std::getenv("AUTOMATION_SHARED_DATA")) return env;
  for (auto p : {source_dir / ".." / "shared" / "data", std::filesystem::path("/work/shared/data")})
    if (std::filesystem::exists(p / "m3" / "m3.csv")) return p;
  throw std::runtime_error("M3 data not found: set AUTOMATION_SHARED_DATA to the folder holding m3/m3.csv");
}

inline std::vector<double> numbers(const std::string& field) {
  std::vector<double> v;
  std::istringstream in(field);
  double x;
  while (in >> x) v.push_back(x);
  return v;
}

inline std::vector<Series> load(const std::filesystem::path& csv) {
  std::ifstream in(csv);
  if (!in) throw std::runtime_error("cannot open " + csv.string());
  std::string line;
  std::getline(in, line);  // header
  std::vector<Series> all;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::string cell;
    std::istringstream row(line);
    while (std::getline(row, cell, ',')) f.push_back(cell);
    if (f.size() != 11) throw std::runtime_error("m3.csv: bad line " + line.substr(0, 40));
    Series s;
    s.id = f[0];
    s.category = f[2];
    s.period = std::stoul(f[4]);
    s.train = numbers(f[9]);
    s.test = numbers(f[10]);
    all.push_back(std::move(s));
  }
  return all;
}

struct Totals {
  std::size_t n = 0;
  double smape = 0, mase = 0, msis = 0, covered = 0, points = 0;
  double naive2_smape = 0, naive2_mase = 0;
  double seconds = 0;
  double mean_smape() const { return n ? smape / static_cast<double>(n) : 0; }
  double mean_mase() const { return n ? mase / static_cast<double>(n) : 0; }
  double owa() const { return n && naive2_smape > 0 && naive2_mase > 0 ? (smape / naive2_smape + mase / naive2_mase) / 2 : 0; }
  double coverage() const { return points ? 100 * covered / points : 0; }
  double mean_msis() const { return n ? msis / static_cast<double>(n) : 0; }
};

/// Scores `method` on every series (or every `stride`-th one); keys are the categories and "ALL".
inline std::map<std::string, Totals> evaluate(const std::vector<Series>& series, automation::forecast::Method method,
                                              std::size_t stride = 1) {
  using namespace automation::forecast;
  std::map<std::string, Totals> out;
  for (std::size_t i = 0; i < series.size(); i += stride) {
    const Series& s = series[i];
    Options o;
    o.horizon = s.test.size();
    o.method = method;
    o.period = s.period;
    o.levels = {95.0};
    const auto start = std::chrono::steady_clock::now();
    auto f = forecast(s.train, o);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (!f) throw std::runtime_error(s.id + ": " + f.error().what());
    Options n2 = o;
    n2.method = Method::naive;
    const auto naive2 = o.method == Method::naive ? f : forecast(s.train, n2);  // Naive2: naive on seasonally adjusted data
    if (!naive2) throw std::runtime_error(s.id + " (Naive2): " + naive2.error().what());
    const auto a = accuracy(s.train, s.test, f->mean, s.period, &f->intervals[0]);
    const auto b = accuracy(s.train, s.test, naive2->mean, s.period);
    for (const std::string& key : {s.category, std::string("ALL")}) {
      Totals& t = out[key];
      ++t.n;
      t.smape += a.smape;
      t.mase += a.mase;
      t.msis += a.msis;
      t.covered += a.coverage * static_cast<double>(s.test.size());
      t.points += static_cast<double>(s.test.size());
      t.naive2_smape += b.smape;
      t.naive2_mase += b.mase;
      t.seconds += secs;
    }
  }
  return out;
}

}  // namespace m3
