#include <automation/core/json.hpp>

#include <fmt/format.h>
#include <boost/json/serialize.hpp>
#include <boost/json/stream_parser.hpp>

#include <cmath>

namespace automation::json {

Result<boost::json::value> parse(std::string_view text, std::string_view origin) {
  boost::json::stream_parser p;
  boost::system::error_code ec;
  std::size_t consumed = p.write_some(text.data(), text.size(), ec);
  if (!ec && consumed < text.size()) ec = boost::json::error::extra_data;
  if (!ec) p.finish(ec);
  if (ec) {
    // Point at the offending character: count lines and columns up to where the parser stopped.
    std::size_t line = 1, col = 1;
    for (std::size_t i = 0; i < consumed && i < text.size(); ++i) {
      if (text[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return fail(errc::invalid_argument, fmt::format("{}: invalid JSON at line {}, column {}: {}", origin, line, col, ec.message()));
  }
  return p.release();
}

namespace {
// Numbers as people write them: 0.75 and 555000, not 7.5E-1 and 5.55E5 (Boost's double format).
// Non-finite doubles, which JSON cannot carry, become null.
void write_into(std::string& out, const boost::json::value& v, int indent, bool pretty) {
  const std::string pad = pretty ? std::string(static_cast<std::size_t>(indent) * 2, ' ') : std::string();
  const std::string inner = pretty ? std::string(static_cast<std::size_t>(indent + 1) * 2, ' ') : std::string();
  const char* nl = pretty ? "\n" : "";
  if (v.is_object()) {
    const auto& o = v.get_object();
    if (o.empty()) {
      out += "{}";
      return;
    }
    out += '{';
    out += nl;
    bool first = true;
    for (const auto& kv : o) {
      if (!first) {
        out += ',';
        out += nl;
      }
      first = false;
      out += inner;
      out += boost::json::serialize(boost::json::value(kv.key()));
      out += pretty ? ": " : ":";
      write_into(out, kv.value(), indent + 1, pretty);
    }
    out += nl;
    out += pad + "}";
  } else if (v.is_array()) {
    const auto& a = v.get_array();
    if (a.empty()) {
      out += "[]";
      return;
    }
    out += '[';
    out += nl;
    bool first = true;
    for (const auto& e : a) {
      if (!first) {
        out += ',';
        out += nl;
      }
      first = false;
      out += inner;
      write_into(out, e, indent + 1, pretty);
    }
    out += nl;
    out += pad + "]";
  } else if (v.is_double()) {
    const double d = v.get_double();
    out += std::isfinite(d) ? fmt::format("{}", d) : std::string("null");
  } else {
    out += boost::json::serialize(v);
  }
}
}  // namespace

std::string dump(const boost::json::value& v) {
  std::string out;
  write_into(out, v, 0, false);
  return out;
}

std::string pretty(const boost::json::value& v) {
  std::string out;
  write_into(out, v, 0, true);
  return out;
}

std::string_view type_name(const boost::json::value& v) noexcept {
  switch (v.kind()) {
    case boost::json::kind::null:
      return "null";
    case boost::json::kind::bool_:
      return "boolean";
    case boost::json::kind::int64:
    case boost::json::kind::uint64:
    case boost::json::kind::double_:
      return "number";
    case boost::json::kind::string:
      return "string";
    case boost::json::kind::array:
      return "array";
    case boost::json::kind::object:
      return "object";
  }
  return "unknown";
}

}  // namespace automation::json
