#pragma once
// Parsing an enum from its name, for every enum with a to_string() found by ADL: one loop and one
// error message ("unknown task outcome \"x\" (use success, failure, timeout or cancelled)").
#include <automation/core/error.hpp>

#include <fmt/format.h>

#include <initializer_list>
#include <string>
#include <string_view>

namespace automation::detail {

template <class E>
Result<E> parse_name(std::string_view text, std::initializer_list<E> values, std::string_view what) {
  std::string choices;
  std::size_t i = 0;
  for (E v : values) {
    if (to_string(v) == text) return v;
    if (i > 0) choices += i + 1 == values.size() ? " or " : ", ";
    choices += to_string(v);
    ++i;
  }
  return fail(errc::invalid_argument, fmt::format("unknown {} \"{}\" (use {})", what, text, choices));
}

}  // namespace automation::detail
