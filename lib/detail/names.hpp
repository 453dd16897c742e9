#pragma once
// Small text helpers for parsers: an enum from its name, for every enum with a to_string() found by
// ADL (one loop and one error message: "unknown task outcome \"x\" (use success, failure, timeout or
// cancelled)"), a did-you-mean suggestion, trimming, and splitting into words or comma-separated items.
#include <automation/core/error.hpp>

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <initializer_list>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace automation::detail {

/// `s` without leading and trailing white space.
inline std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

/// "10.0.0.9" of "10.0.0.9:53122" (and "[::1]" of "[::1]:53122"): a source address without its port.
inline std::string_view address_of(std::string_view source) noexcept {
  const auto colon = source.rfind(':');
  return colon == std::string_view::npos || source.ends_with(']') ? source : source.substr(0, colon);
}

/// The comma-separated items of `s`, each trimmed, empty ones left out ("a, b,,c" -> a, b, c): lists
/// in a configuration value, a header (Sec-WebSocket-Protocol), recipients.
inline std::vector<std::string_view> comma_list(std::string_view s) {
  std::vector<std::string_view> out;
  for (std::size_t start = 0; start <= s.size();) {
    const auto end = std::min(s.find(',', start), s.size());
    if (const auto item = trim(s.substr(start, end - start)); !item.empty()) out.push_back(item);
    start = end + 1;
  }
  return out;
}

/// The white-space separated words of `s`.
inline std::vector<std::string_view> words(std::string_view s) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    const std::size_t b = i;
    while (i < s.size() && !std::isspace(static_cast<unsigned char>(s[i]))) ++i;
    if (i > b) out.push_back(s.substr(b, i - b));
  }
  return out;
}

template <class E>
Result<E> parse_name(std::string_view text, std::span<const E> values, std::string_view what) {
  for (E v : values)
    if (to_string(v) == text) return v;
  // The message is built only on failure: parsing sits on row-reading paths.
  std::string choices;
  std::size_t i = 0;
  for (E v : values) {
    if (i > 0) choices += i + 1 == values.size() ? " or " : ", ";
    choices += to_string(v);
    ++i;
  }
  return fail(errc::invalid_argument, fmt::format("unknown {} \"{}\" (use {})", what, text, choices));
}

template <class E>
Result<E> parse_name(std::string_view text, std::initializer_list<E> values, std::string_view what) {
  return parse_name(text, std::span<const E>(values.begin(), values.size()), what);
}

/// " (did you mean \"x\"?)" for the candidate closest to `unknown` (edit distance under 4), else "".
template <class Range>
std::string did_you_mean(std::string_view unknown, const Range& candidates) {
  auto distance = [](std::string_view a, std::string_view b) {
    std::vector<std::size_t> prev(b.size() + 1), cur(b.size() + 1);
    for (std::size_t j = 0; j <= b.size(); ++j) prev[j] = j;
    for (std::size_t i = 1; i <= a.size(); ++i) {
      cur[0] = i;
      for (std::size_t j = 1; j <= b.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    return prev[b.size()];
  };
  std::string best;
  std::size_t best_d = 4;
  for (const auto& c : candidates) {
    const std::string_view name(c);
    if (const auto d = distance(unknown, name); d < best_d) {
      best_d = d;
      best = std::string(name);
    }
  }
  return best.empty() ? std::string() : fmt::format(" (did you mean \"{}\"?)", best);
}

}  // namespace automation::detail
