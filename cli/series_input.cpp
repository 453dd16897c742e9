#include "series_input.hpp"

#include <automation/core/time.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <fstream>
#include <limits>
#include <optional>

namespace autoctl {

using automation::errc;
using automation::fail;
using automation::Result;

namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

/// Plain CSV: commas separate, double quotes may enclose a cell ("" is a quote inside one).
/// nullopt when a quote is left open.
std::optional<std::vector<std::string>> split_csv(const std::string& line) {
  std::vector<std::string> cells(1);
  bool quoted = false;
  for (std::size_t i = 0; i < line.size(); ++i) {
    const char c = line[i];
    if (quoted) {
      if (c == '"' && i + 1 < line.size() && line[i + 1] == '"')
        cells.back() += '"', ++i;
      else if (c == '"')
        quoted = false;
      else
        cells.back() += c;
    } else if (c == '"') {
      quoted = true;
    } else if (c == ',') {
      cells.emplace_back();
    } else if (c != '\r') {
      cells.back() += c;
    }
  }
  if (quoted) return std::nullopt;
  for (auto& cell : cells) {
    const auto b = cell.find_first_not_of(" \t"), e = cell.find_last_not_of(" \t");
    cell = b == std::string::npos ? "" : cell.substr(b, e - b + 1);
  }
  return cells;
}

}  // namespace

Result<Series> read_series(const SeriesInput& o) {
  std::ifstream in(o.input);
  if (!in) return fail(errc::not_found, fmt::format("{}: cannot open the file", o.input));
  std::string line;
  if (!std::getline(in, line)) return fail(errc::invalid_argument, fmt::format("{}: the file is empty", o.input));
  if (line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a UTF-8 byte order mark (spreadsheet exports)
  const auto header_cells = split_csv(line);
  if (!header_cells) return fail(errc::invalid_argument, fmt::format("{}:1: a quote is not closed", o.input));
  const auto& header = *header_cells;
  auto find = [&](const std::vector<std::string>& names) -> std::optional<std::size_t> {
    for (const auto& name : names)
      for (std::size_t i = 0; i < header.size(); ++i)
        if (lower(header[i]) == lower(name)) return i;
    return std::nullopt;
  };
  std::optional<std::size_t> value_col, date_col;
  if (!o.column.empty()) {
    value_col = find({o.column});
    if (!value_col) return fail(errc::invalid_argument, fmt::format("{}:1: no column '{}' in the header", o.input, o.column));
  }
  if (!o.date_column.empty()) {
    date_col = find({o.date_column});
    if (!date_col) return fail(errc::invalid_argument, fmt::format("{}:1: no column '{}' in the header", o.input, o.date_column));
  } else {
    date_col = find({"date", "timestamp", "time", "ds", "day", "month", "period"});
  }
  if (!value_col) value_col = find({"value", "y", "amount", "total", "count"});
  if (!value_col && header.size() == 1) value_col = 0;
  if (!value_col && header.size() == 2 && date_col) value_col = 1 - *date_col;
  if (!value_col)
    return fail(errc::invalid_argument,
                fmt::format("{}:1: which column holds the values? name it with --column (columns: {})", o.input, fmt::join(header, ", ")));
  Series s;
  std::size_t line_no = 1;
  while (std::getline(in, line)) {
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const auto where = fmt::format("{}:{}", o.input, line_no);
    const auto row = split_csv(line);
    if (!row) return fail(errc::invalid_argument, fmt::format("{}: a quote is not closed", where));
    const auto& cells = *row;
    if (cells.size() <= std::max(*value_col, date_col.value_or(0)))
      return fail(errc::invalid_argument, fmt::format("{}: {} cell(s), the header has {}", where, cells.size(), header.size()));
    const std::string& cell = cells[*value_col];
    double v = std::numeric_limits<double>::quiet_NaN();
    if (const auto word = lower(cell); word.empty() || word == "na" || word == "nan") {
      if (!o.fill_gaps) return fail(errc::invalid_argument, fmt::format("{}: the value is missing; {}", where, o.gap_hint));
    } else {
      auto [end, ec] = std::from_chars(cell.data(), cell.data() + cell.size(), v);
      if (ec != std::errc() || end != cell.data() + cell.size() || !std::isfinite(v))
        return fail(errc::invalid_argument, fmt::format("{}: '{}' in column '{}' is not a number", where, cell, header[*value_col]));
    }
    if (date_col) {
      auto t = automation::parse_timestamp(cells[*date_col]);
      if (!t) return fail(errc::invalid_argument, fmt::format("{}: column '{}': {}", where, header[*date_col], t.error().message));
      if (!s.dates.empty() && *t <= s.dates.back())
        return fail(errc::invalid_argument,
                    fmt::format("{}: {} is not after the previous row's date; sort the file by date", where, cells[*date_col]));
      s.dates.push_back(*t);
    }
    s.values.push_back(v);
  }
  if (s.values.empty()) return fail(errc::invalid_argument, fmt::format("{}: no data rows after the header", o.input));
  return s;
}

}  // namespace autoctl
