#pragma once
// Reading one series from a CSV file (a value column, optionally a date column) for the commands
// that take --input: forecast and anomalies.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <string>
#include <vector>

namespace autoctl {

struct SeriesInput {
  std::string input, column, date_column;
  bool fill_gaps = false;                                                   ///< empty or NA values become NaN instead of an error
  std::string gap_hint = "pass --fill-gaps to interpolate missing values";  ///< said when a value is missing
};

struct Series {
  std::vector<double> values;
  std::vector<automation::TimePoint> dates;  // empty without a date column
};

/// Reads the file: the value column is --column, else value, y, amount, total or count, else the
/// only (other) column; the date column is --date-column, else date, timestamp, time, ds, day, month
/// or period, if any. Dates must increase. Errors name the file, line and column.
automation::Result<Series> read_series(const SeriesInput& o);

}  // namespace autoctl
