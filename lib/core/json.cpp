#include <automation/core/json.hpp>
#include <automation/core/time.hpp>

#include <fmt/format.h>
#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value_stack.hpp>

#include <charconv>
#include <cmath>

namespace automation::json {

namespace {

// Boost.JSON 1.81 converts numbers with a fast algorithm that can be a few units in the last place
// off (0.09090909090909091 comes back as 0.09090909090909093), so a stored double would not read
// back equal. This handler builds the same value, converting doubles with std::from_chars, which
// rounds correctly.
struct PreciseHandler {
  static constexpr std::size_t max_object_size = boost::json::object::max_size();
  static constexpr std::size_t max_array_size = boost::json::array::max_size();
  static constexpr std::size_t max_key_size = boost::json::string::max_size();
  static constexpr std::size_t max_string_size = boost::json::string::max_size();

  boost::json::value_stack st;
  std::string number;  // the parts of a number split across writes (never, for one write_some)

  bool on_document_begin(boost::system::error_code&) { return true; }
  bool on_document_end(boost::system::error_code&) { return true; }
  bool on_array_begin(boost::system::error_code&) { return true; }
  bool on_array_end(std::size_t n, boost::system::error_code&) {
    st.push_array(n);
    return true;
  }
  bool on_object_begin(boost::system::error_code&) { return true; }
  bool on_object_end(std::size_t n, boost::system::error_code&) {
    st.push_object(n);
    return true;
  }
  bool on_string_part(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_string(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    st.push_string(s);
    return true;
  }
  bool on_key_part(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    st.push_chars(s);
    return true;
  }
  bool on_key(boost::json::string_view s, std::size_t, boost::system::error_code&) {
    st.push_key(s);
    return true;
  }
  bool on_number_part(boost::json::string_view s, boost::system::error_code&) {
    number.append(s.data(), s.size());
    return true;
  }
  bool on_int64(std::int64_t i, boost::json::string_view, boost::system::error_code&) {
    number.clear();
    st.push_int64(i);
    return true;
  }
  bool on_uint64(std::uint64_t u, boost::json::string_view, boost::system::error_code&) {
    number.clear();
    st.push_uint64(u);
    return true;
  }
  bool on_double(double d, boost::json::string_view s, boost::system::error_code&) {
    number.append(s.data(), s.size());
    double exact = 0;
    const auto [end, ec] = std::from_chars(number.data(), number.data() + number.size(), exact);
    // Out of range (1e400) keeps Boost's value; anything else parsed by Boost parses here.
    if (ec == std::errc() && end == number.data() + number.size()) d = exact;
    number.clear();
    st.push_double(d);
    return true;
  }
  bool on_bool(bool b, boost::system::error_code&) {
    st.push_bool(b);
    return true;
  }
  bool on_null(boost::system::error_code&) {
    st.push_null();
    return true;
  }
  bool on_comment_part(boost::json::string_view, boost::system::error_code&) { return true; }
  bool on_comment(boost::json::string_view, boost::system::error_code&) { return true; }
};

}  // namespace

Result<boost::json::value> parse(std::string_view text, std::string_view origin) {
  boost::json::basic_parser<PreciseHandler> p{boost::json::parse_options{}};
  p.handler().st.reset();
  boost::system::error_code ec;
  std::size_t consumed = p.write_some(false, text.data(), text.size(), ec);
  if (!ec && consumed < text.size()) ec = boost::json::error::extra_data;
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
  return p.handler().st.release();
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

boost::json::value time_or_null(TimePoint t) {
  return t == TimePoint{} ? boost::json::value(nullptr) : boost::json::value(format_timestamp(t));
}

boost::json::value object_or_text(std::string_view text) {
  auto doc = parse(text, "stored JSON");
  return doc ? std::move(*doc) : boost::json::value(text);
}

}  // namespace automation::json
