#pragma once
// Validation of JSON documents that reports every problem with its JSON path ("$.steps[2].needs:
// ..."), shared by workflow and schedule definitions.
#include <automation/core/error.hpp>
#include <automation/core/time.hpp>
#include <detail/names.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace automation::detail {

namespace bj = boost::json;

struct JsonChecker {
  std::vector<std::string> problems;

  void add(const std::string& path, std::string msg) { problems.push_back(path + ": " + std::move(msg)); }

  void unknown_keys(const bj::object& o, const std::string& path, std::initializer_list<std::string_view> known) {
    for (const auto& kv : o) {
      const std::string_view k = kv.key();
      if (std::find(known.begin(), known.end(), k) == known.end())
        add(path, fmt::format("unknown key \"{}\"{}", k, detail::did_you_mean(k, known)));
    }
  }
  const bj::object* object(const bj::value& v, const std::string& path) {
    if (!v.is_object()) {
      add(path, "must be an object");
      return nullptr;
    }
    return &v.as_object();
  }
  std::optional<std::string> string(const bj::value& v, const std::string& path, bool non_empty = false) {
    if (!v.is_string()) {
      add(path, "must be a string");
      return std::nullopt;
    }
    std::string s(v.as_string());
    if (non_empty && s.empty()) {
      add(path, "must not be empty");
      return std::nullopt;
    }
    return s;
  }
  std::optional<Duration> duration(const bj::value& v, const std::string& path, bool allow_zero = false) {
    auto s = string(v, path);
    if (!s) return std::nullopt;
    auto d = parse_duration(*s);
    if (!d) {
      add(path, d.error().message);
      return std::nullopt;
    }
    if (!allow_zero && d->count() == 0) {
      add(path, "must be more than zero");
      return std::nullopt;
    }
    return std::chrono::duration_cast<Duration>(*d);
  }
  std::vector<std::string> strings(const bj::value& v, const std::string& path) {
    std::vector<std::string> out;
    if (!v.is_array()) {
      add(path, "must be an array of strings");
      return out;
    }
    for (std::size_t i = 0; i < v.as_array().size(); ++i)
      if (auto s = string(v.as_array()[i], fmt::format("{}[{}]", path, i), true)) out.push_back(*s);
    return out;
  }
};

/// errc::invalid_argument listing every problem, one per line, or success when there are none.
inline Result<void> verdict(const JsonChecker& c, std::string_view source) {
  if (c.problems.empty()) return {};
  std::string msg = fmt::format("{}: {} problem{}:", source, c.problems.size(), c.problems.size() == 1 ? "" : "s");
  for (const auto& p : c.problems) msg += "\n  " + p;
  return fail(errc::invalid_argument, msg);
}

}  // namespace automation::detail
