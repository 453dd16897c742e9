#pragma once
// Reading the fields of one JSON object of a configuration file (scaling resources, health
// targets): typed getters that name the object and the field in errors, durations as "5m" or
// seconds, and a check that every field present was asked for (an unknown one is a typo).
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace automation::detail {

namespace bj = boost::json;

/// Reads the fields of one JSON object, naming where it is in errors and refusing unknown keys.
class Fields {
 public:
  static Result<Fields> of(const bj::value& v, std::string where) {
    if (!v.is_object()) return fail(errc::invalid_argument, fmt::format("{}: expected an object, not {}", where, json::type_name(v)));
    return Fields(v.as_object(), std::move(where));
  }
  /// The object itself (not a copy: it must outlive the Fields).
  static Result<Fields> of(const bj::object& o, std::string where) { return Fields(o, std::move(where)); }

  const std::string& where() const { return where_; }
  const bj::value* get(std::string_view key) {
    seen_.insert(std::string(key));
    return o_->if_contains(key);
  }
  Error bad(std::string_view key, std::string_view what) const {
    return Error{errc::invalid_argument, fmt::format("{}: \"{}\" {}", where_, key, what)};
  }
  Result<std::optional<double>> number(std::string_view key) {
    auto* v = get(key);
    if (!v) return std::optional<double>();
    if (!v->is_number()) return bad(key, fmt::format("must be a number, not {}", json::type_name(*v)));
    const double d = v->to_number<double>();
    if (!std::isfinite(d)) return bad(key, "must be finite");
    return std::optional<double>(d);
  }
  Result<std::optional<int>> integer(std::string_view key) {
    auto* v = get(key);
    if (!v) return std::optional<int>();
    if (!v->is_int64() && !v->is_uint64()) return bad(key, fmt::format("must be an integer, not {}", json::type_name(*v)));
    const auto i = v->to_number<std::int64_t>();
    if (i < -1000000 || i > 1000000) return bad(key, "is out of range");
    return std::optional<int>(static_cast<int>(i));
  }
  Result<std::optional<std::string>> string(std::string_view key) {
    auto* v = get(key);
    if (!v) return std::optional<std::string>();
    if (!v->is_string()) return bad(key, fmt::format("must be a string, not {}", json::type_name(*v)));
    return std::optional<std::string>(std::string(v->as_string()));
  }
  Result<std::optional<bool>> boolean(std::string_view key) {
    auto* v = get(key);
    if (!v) return std::optional<bool>();
    if (!v->is_bool()) return bad(key, fmt::format("must be true or false, not {}", json::type_name(*v)));
    return std::optional<bool>(v->as_bool());
  }
  /// A duration: a string ("5m") or a number of seconds.
  Result<std::optional<Duration>> duration(std::string_view key) {
    auto* v = get(key);
    if (!v) return std::optional<Duration>();
    if (v->is_number()) {
      const double s = v->to_number<double>();
      if (!std::isfinite(s) || s < 0) return bad(key, "must be 0 seconds or more");
      return std::optional<Duration>(std::chrono::duration_cast<Duration>(std::chrono::duration<double>(s)));
    }
    if (!v->is_string()) return bad(key, fmt::format("must be a duration such as \"5m\", not {}", json::type_name(*v)));
    auto d = parse_duration(v->as_string());
    if (!d) return bad(key, d.error().message);
    return std::optional<Duration>(*d);
  }
  Result<std::optional<std::vector<std::string>>> strings(std::string_view key) {
    auto* v = get(key);
    if (!v) return std::optional<std::vector<std::string>>();
    if (!v->is_array()) return bad(key, fmt::format("must be an array of strings, not {}", json::type_name(*v)));
    std::vector<std::string> out;
    for (const auto& e : v->as_array()) {
      if (!e.is_string()) return bad(key, "must be an array of strings");
      out.emplace_back(e.as_string());
    }
    return std::optional<std::vector<std::string>>(std::move(out));
  }
  Result<std::map<std::string, std::string>> string_map(std::string_view key) {
    std::map<std::string, std::string> out;
    auto* v = get(key);
    if (!v) return out;
    if (!v->is_object()) return bad(key, fmt::format("must be an object of strings, not {}", json::type_name(*v)));
    for (const auto& [k, e] : v->as_object()) {
      if (!e.is_string()) return bad(key, fmt::format("\"{}\" must be a string", std::string_view(k)));
      out.emplace(std::string(k), std::string(e.as_string()));
    }
    return out;
  }
  /// errc::invalid_argument naming the first key that was never asked for.
  Result<void> no_others() const {
    for (const auto& [k, v] : *o_)
      if (!seen_.contains(std::string(k)))
        return fail(errc::invalid_argument, fmt::format("{}: unknown field \"{}\"", where_, std::string_view(k)));
    return {};
  }

 private:
  Fields(const bj::object& o, std::string where) : o_(&o), where_(std::move(where)) {}
  const bj::object* o_;
  std::string where_;
  std::set<std::string> seen_;
};

/// Assigns what a Fields getter found (if anything) to `target`, returning its error.
#define TRY_ASSIGN(target, expr)       \
  do {                                 \
    auto r_ = (expr);                  \
    if (!r_) return r_.error();        \
    if (*r_) target = std::move(**r_); \
  } while (0)

}  // namespace automation::detail
