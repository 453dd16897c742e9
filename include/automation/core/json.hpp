#pragma once
/// Small helpers over Boost.JSON used across the library: parsing with line/column in errors and
/// stable, compact printing. Thread-safety: pure functions.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>

#include <boost/json/value.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace automation::json {

/// Parses a JSON document. On error the message names `origin` (a file name or "request body"),
/// the line and column, and what is wrong.
Result<boost::json::value> parse(std::string_view text, std::string_view origin = "input");
/// Compact serialization.
std::string dump(const boost::json::value& v);
/// Indented serialization (2 spaces), for humans.
std::string pretty(const boost::json::value& v);
/// The JSON type name of a value ("string", "number", "object", ...), for error messages.
std::string_view type_name(const boost::json::value& v) noexcept;
/// A recorded time as JSON: ISO-8601 UTC, or null for the epoch (which records use for "not yet").
boost::json::value time_or_null(TimePoint t);
/// Stored JSON text as a value, or the text itself when it does not parse.
boost::json::value object_or_text(std::string_view text);
/// An optional as JSON: its value, or null when it has none.
template <class T>
boost::json::value or_null(const std::optional<T>& v) {
  return v ? boost::json::value(*v) : boost::json::value(nullptr);
}

}  // namespace automation::json
