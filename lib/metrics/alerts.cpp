#include <automation/core/ids.hpp>
#include <automation/core/json.hpp>
#include <automation/core/logging.hpp>
#include <automation/core/time.hpp>
#include <automation/metrics/alerts.hpp>
#include <automation/workflow/scheduler.hpp>

#include <detail/log.hpp>
#include <detail/names.hpp>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <set>

#include <unistd.h>

namespace automation::metrics {

namespace bj = boost::json;
namespace fs = std::filesystem;
using namespace std::chrono;

// ---- conditions ----------------------------------------------------------------------------------

enum class Op : std::uint8_t { gt, ge, lt, le, eq, ne };

struct Condition::Node {
  enum class Kind : std::uint8_t { compare, all, any, negate, held } kind = Kind::compare;
  // compare
  std::string metric;
  std::vector<std::pair<std::string, std::string>> selector;
  Op op = Op::gt;
  double threshold = 0;
  // all, any: several; negate, held: one
  std::vector<std::shared_ptr<const Node>> children;
  Duration duration{};  // held
};

namespace {

using Node = Condition::Node;
using NodePtr = std::shared_ptr<const Node>;

bool compare(Op op, double v, double t) {
  switch (op) {
    case Op::gt:
      return v > t;
    case Op::ge:
      return v >= t;
    case Op::lt:
      return v < t;
    case Op::le:
      return v <= t;
    case Op::eq:
      return v == t;
    case Op::ne:
      return v != t;
  }
  return false;
}

bool name_start(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool name_char(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() &&
         std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) { return std::tolower(static_cast<unsigned char>(x)) == y; });
}

class Parser {
 public:
  explicit Parser(std::string_view text) : s_(text) {}

  Result<NodePtr> parse() {
    auto n = parse_or();
    if (!n) return n;
    skip();
    if (i_ < s_.size()) return error("\"and\", \"or\", \"for\" or the end");
    return n;
  }

 private:
  Error error(std::string_view expected) const {
    const auto found = i_ < s_.size() ? fmt::format("\"{}\"", s_.substr(i_, std::min<std::size_t>(12, s_.size() - i_))) : "the end";
    return Error{errc::invalid_argument, fmt::format("condition \"{}\": at {}: expected {}, found {}", s_, i_ + 1, expected, found)};
  }
  void skip() {
    while (i_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
  }
  // The next word (letters, digits, _) without consuming it.
  std::string_view peek_word() {
    skip();
    std::size_t j = i_;
    while (j < s_.size() && name_char(s_[j])) ++j;
    return s_.substr(i_, j - i_);
  }
  bool keyword(std::string_view k) {
    const auto w = peek_word();
    if (!iequals(w, k)) return false;
    i_ += w.size();
    return true;
  }
  bool is_keyword(std::string_view w) { return iequals(w, "and") || iequals(w, "or") || iequals(w, "not") || iequals(w, "for"); }

  Result<NodePtr> parse_or() {
    std::vector<NodePtr> parts;
    do {
      auto a = parse_and();
      if (!a) return a;
      parts.push_back(std::move(*a));
    } while (keyword("or"));
    if (parts.size() == 1) return parts.front();
    auto n = std::make_shared<Node>();
    n->kind = Node::Kind::any;
    n->children = std::move(parts);
    return NodePtr(n);
  }

  // Terms joined by "and". A "for D" that ends the chain ("A and B for 5m") or stands as a term of
  // its own ("A and for 5m") applies to the whole chain; one followed by "and" ("A for 5m and B")
  // belongs to the term before it.
  Result<NodePtr> parse_and() {
    std::vector<NodePtr> parts;
    std::optional<Duration> held;
    std::size_t held_at = 0;
    auto hold_all = [&](std::size_t at) -> Result<void> {
      if (held) {
        i_ = at;
        return error(fmt::format("one \"for\" over a whole \"and\" (it has one at {} already; use parentheses)", held_at + 1));
      }
      auto d = parse_duration_word();
      if (!d) return d.error();
      held = *d;
      held_at = at;
      return {};
    };
    do {
      skip();
      const auto at = i_;
      if (keyword("for")) {
        if (auto h = hold_all(at); !h) return h.error();
        continue;
      }
      auto t = parse_primary();
      if (!t) return t;
      skip();
      const auto for_at = i_;
      if (keyword("for")) {
        const auto before = i_;
        auto d = parse_duration_word();
        if (!d) return d.error();
        if (iequals(peek_word(), "and")) {  // "A for 5m and B": A's own
          auto n = std::make_shared<Node>();
          n->kind = Node::Kind::held;
          n->duration = *d;
          n->children = {std::move(*t)};
          t = NodePtr(n);
        } else {  // it ends the chain: the whole chain's
          i_ = before;
          parts.push_back(std::move(*t));
          if (auto h = hold_all(for_at); !h) return h.error();
          continue;
        }
      }
      parts.push_back(std::move(*t));
    } while (keyword("and"));
    if (parts.empty()) {
      i_ = held_at;
      return error("a condition before \"for\"");
    }
    NodePtr body = parts.front();
    if (parts.size() > 1) {
      auto n = std::make_shared<Node>();
      n->kind = Node::Kind::all;
      n->children = std::move(parts);
      body = n;
    }
    if (!held) return body;
    auto n = std::make_shared<Node>();
    n->kind = Node::Kind::held;
    n->duration = *held;
    n->children = {body};
    return NodePtr(n);
  }

  Result<Duration> parse_duration_word() {
    skip();
    std::size_t j = i_;
    while (j < s_.size() && (std::isalnum(static_cast<unsigned char>(s_[j])) || s_[j] == '.')) ++j;
    if (j == i_) return error("a duration after \"for\" (30s, 5m, 1h)");
    auto d = parse_duration(s_.substr(i_, j - i_));
    if (!d) return error(fmt::format("a duration after \"for\" ({})", d.error().message));
    if (d->count() <= 0) return error("a duration longer than 0 after \"for\"");
    i_ = j;
    return Duration(*d);
  }

  // A term, with an optional "for D" after it.
  Result<NodePtr> parse_term() {
    auto t = parse_primary();
    if (!t) return t;
    const auto save = i_;
    if (keyword("for")) {  // "not A for 5m": not (A for 5m)
      auto d = parse_duration_word();
      if (!d) return d.error();
      auto n = std::make_shared<Node>();
      n->kind = Node::Kind::held;
      n->duration = *d;
      n->children = {std::move(*t)};
      return NodePtr(n);
    }
    i_ = save;
    return t;
  }

  Result<NodePtr> parse_primary() {
    skip();
    if (i_ < s_.size() && s_[i_] == '(') {
      ++i_;
      auto inner = parse_or();
      if (!inner) return inner;
      skip();
      if (i_ >= s_.size() || s_[i_] != ')') return error("\")\"");
      ++i_;
      return inner;
    }
    if (keyword("not")) {
      auto inner = parse_term();
      if (!inner) return inner;
      auto n = std::make_shared<Node>();
      n->kind = Node::Kind::negate;
      n->children = {std::move(*inner)};
      return NodePtr(n);
    }
    return parse_comparison();
  }

  Result<NodePtr> parse_comparison() {
    skip();
    auto n = std::make_shared<Node>();
    if (i_ >= s_.size() || !name_start(s_[i_])) return error("a metric name, \"(\" or \"not\"");
    const auto start = i_;
    while (i_ < s_.size() && name_char(s_[i_])) ++i_;
    n->metric = std::string(s_.substr(start, i_ - start));
    if (is_keyword(n->metric)) {
      i_ = start;
      return error("a metric name");
    }
    skip();
    if (i_ < s_.size() && s_[i_] == '{') {
      ++i_;
      for (;;) {
        skip();
        const auto ks = i_;
        while (i_ < s_.size() && name_char(s_[i_])) ++i_;
        if (i_ == ks || !name_start(s_[ks])) return error("a label name");
        std::string key(s_.substr(ks, i_ - ks));
        skip();
        if (i_ >= s_.size() || s_[i_] != '=') return error("\"=\" after the label name");
        ++i_;
        skip();
        std::string value;
        if (i_ < s_.size() && s_[i_] == '"') {
          const auto close = s_.find('"', i_ + 1);
          if (close == std::string_view::npos) return error("a closing quote");
          value = std::string(s_.substr(i_ + 1, close - i_ - 1));
          i_ = close + 1;
        } else {
          const auto vs = i_;
          while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != '}' && !std::isspace(static_cast<unsigned char>(s_[i_]))) ++i_;
          value = std::string(s_.substr(vs, i_ - vs));
        }
        if (value.empty()) return error("a label value");
        if (value.find_first_of(",={}\"") != std::string::npos) return error("a label value without , = { } or \"");
        for (const auto& [k, v] : n->selector)
          if (k == key) return error(fmt::format("the label {} once", key));
        n->selector.emplace_back(std::move(key), std::move(value));
        skip();
        if (i_ < s_.size() && s_[i_] == ',') {
          ++i_;
          continue;
        }
        if (i_ < s_.size() && s_[i_] == '}') {
          ++i_;
          break;
        }
        return error("\",\" or \"}\"");
      }
      std::sort(n->selector.begin(), n->selector.end());
      skip();
    }
    static constexpr std::pair<std::string_view, Op> kOps[] = {{">=", Op::ge}, {"<=", Op::le}, {"==", Op::eq},
                                                               {"!=", Op::ne}, {">", Op::gt},  {"<", Op::lt}};
    bool found = false;
    for (const auto& [text, op] : kOps) {
      if (s_.substr(i_, text.size()) == text) {
        n->op = op;
        i_ += text.size();
        found = true;
        break;
      }
    }
    if (!found) return error(fmt::format("a comparison (> >= < <= == !=) after {}", n->metric));
    skip();
    const auto ns = i_;
    if (i_ >= s_.size()) return error("a number");
    if (s_[i_] == '-' || s_[i_] == '+') ++i_;
    while (i_ < s_.size() && (std::isdigit(static_cast<unsigned char>(s_[i_])) || s_[i_] == '.' || s_[i_] == 'e' || s_[i_] == 'E' ||
                              ((s_[i_] == '-' || s_[i_] == '+') && (s_[i_ - 1] == 'e' || s_[i_ - 1] == 'E'))))
      ++i_;
    const auto num = s_.substr(ns + (s_[ns] == '+' ? 1 : 0), i_ - ns - (s_[ns] == '+' ? 1 : 0));
    const auto [end, ec] = std::from_chars(num.data(), num.data() + num.size(), n->threshold);
    if (num.empty() || ec != std::errc{} || end != num.data() + num.size() || !std::isfinite(n->threshold)) {
      i_ = ns;
      return error("a number");
    }
    if (i_ < s_.size() && s_[i_] == '%') ++i_;  // "cpu_usage > 80%": the metric is in percent already
    if (i_ < s_.size() && name_char(s_[i_])) return error("a space after the number");
    return NodePtr(n);
  }

  std::string_view s_;
  std::size_t i_ = 0;
};

void collect_metrics(const Node& n, std::set<std::string>& out) {
  if (n.kind == Node::Kind::compare) out.insert(n.metric);
  for (const auto& c : n.children) collect_metrics(*c, out);
}

Duration lookback_of(const Node& n) {
  Duration d{};
  for (const auto& c : n.children) d = std::max(d, lookback_of(*c));
  return n.kind == Node::Kind::held ? d + n.duration : d;
}

void collect_comparisons(const Node& n, std::vector<const Node*>& out) {
  if (n.kind == Node::Kind::compare) out.push_back(&n);
  for (const auto& c : n.children) collect_comparisons(*c, out);
}

// "a=1,b=2" -> pairs; labels are written by validate()d code, so this only splits.
std::vector<std::pair<std::string_view, std::string_view>> split_labels(std::string_view labels) {
  std::vector<std::pair<std::string_view, std::string_view>> out;
  for (std::size_t start = 0; start < labels.size();) {
    auto end = labels.find(',', start);
    if (end == std::string_view::npos) end = labels.size();
    const auto item = labels.substr(start, end - start);
    const auto eq = item.find('=');
    if (eq != std::string_view::npos) out.emplace_back(item.substr(0, eq), item.substr(eq + 1));
    start = end + 1;
  }
  return out;
}

bool selects(const Node& cmp, const Series& s) {
  if (s.name != cmp.metric) return false;
  if (cmp.selector.empty()) return true;
  const auto have = split_labels(s.labels);
  return std::all_of(cmp.selector.begin(), cmp.selector.end(), [&](const auto& want) {
    return std::any_of(have.begin(), have.end(), [&](const auto& h) { return h.first == want.first && h.second == want.second; });
  });
}

std::string number(double v) {
  if (v == std::floor(v) && std::abs(v) < 1e15) return fmt::format("{:.0f}", v);
  if (std::abs(v) >= 100) return fmt::format("{:.1f}", v);
  return fmt::format("{:.3g}", v);
}

// One instance's evaluation: the series each comparison reads, the shared timeline and the truth of
// every node at every moment of it.
struct Timeline {
  std::vector<TimePoint> times;
  std::map<const Node*, const Series*> reads;
  Duration staleness{};

  // The value of `s` at times[i]: its latest point no older than the staleness.
  std::vector<std::optional<double>> values(const Series* s) const {
    std::vector<std::optional<double>> out(times.size());
    if (!s) return out;
    std::size_t p = 0;
    for (std::size_t i = 0; i < times.size(); ++i) {
      while (p < s->points.size() && s->points[p].first <= times[i]) ++p;
      if (p > 0 && times[i] - s->points[p - 1].first <= staleness) out[i] = s->points[p - 1].second;
    }
    return out;
  }

  // Three-valued (Kleene) truth: a comparison without a fresh value is unknown, "not unknown" is
  // unknown, "and" is false when any part is false, "or" true when any part is true. A condition
  // holds only when it is true, so missing data never makes "not x == 1" fire.
  enum class Truth : std::uint8_t { no, unknown, yes };

  std::vector<Truth> truth(const Node& n) const {
    std::vector<Truth> out(times.size(), Truth::unknown);
    switch (n.kind) {
      case Node::Kind::compare: {
        const auto it = reads.find(&n);
        const auto v = values(it == reads.end() ? nullptr : it->second);
        for (std::size_t i = 0; i < times.size(); ++i)
          if (v[i]) out[i] = compare(n.op, *v[i], n.threshold) ? Truth::yes : Truth::no;
        break;
      }
      case Node::Kind::all:
      case Node::Kind::any: {
        const bool all = n.kind == Node::Kind::all;
        const auto decisive = all ? Truth::no : Truth::yes;
        std::fill(out.begin(), out.end(), all ? Truth::yes : Truth::no);
        for (const auto& c : n.children) {
          const auto t = truth(*c);
          for (std::size_t i = 0; i < times.size(); ++i) {
            if (out[i] == decisive) continue;
            if (t[i] == decisive || t[i] == Truth::unknown) out[i] = t[i];
          }
        }
        break;
      }
      case Node::Kind::negate: {
        const auto t = truth(*n.children.front());
        for (std::size_t i = 0; i < times.size(); ++i)
          out[i] = t[i] == Truth::yes ? Truth::no : t[i] == Truth::no ? Truth::yes : Truth::unknown;
        break;
      }
      case Node::Kind::held: {  // true once the body has been true at every moment for the duration
        const auto t = truth(*n.children.front());
        std::optional<TimePoint> start;
        for (std::size_t i = 0; i < times.size(); ++i) {
          if (t[i] != Truth::yes) {
            start.reset();
            out[i] = t[i];
            continue;
          }
          if (!start) start = times[i];
          out[i] = times[i] - *start >= n.duration ? Truth::yes : Truth::no;
        }
        break;
      }
    }
    return out;
  }

  // Since when `n` (a `for`: its body) has held without a break up to the last moment.
  TimePoint since(const Node& n) const {
    const Node& body = n.kind == Node::Kind::held ? *n.children.front() : n;
    const auto t = truth(body);
    std::size_t i = times.size();
    while (i > 0 && t[i - 1] == Truth::yes) --i;
    return i < times.size() ? times[i] : times.back();
  }
};

}  // namespace

Result<Condition> Condition::parse(std::string_view text) {
  Parser p(text);
  auto root = p.parse();
  if (!root) return root.error();
  Condition c;
  c.root_ = std::move(*root);
  c.text_ = std::string(automation::detail::trim(text));
  return c;
}

std::vector<std::string> Condition::metrics() const {
  std::set<std::string> out;
  if (root_) collect_metrics(*root_, out);
  return {out.begin(), out.end()};
}

Duration Condition::lookback() const { return root_ ? lookback_of(*root_) : Duration{}; }

std::vector<ConditionState> evaluate(const Condition& condition, std::span<const Series> series, TimePoint now, Duration staleness) {
  std::vector<const Node*> comparisons;
  collect_comparisons(condition.root(), comparisons);
  // Instances: the label sets of the labelled series the comparisons match.
  std::set<std::string> instances;
  for (const auto* c : comparisons)
    for (const auto& s : series)
      if (!s.labels.empty() && selects(*c, s)) instances.insert(s.labels);
  if (instances.empty()) instances.insert("");

  const auto window_start = now - condition.lookback() - staleness;
  std::vector<ConditionState> out;
  for (const auto& instance : instances) {
    Timeline tl;
    tl.staleness = staleness;
    std::set<TimePoint> times;
    for (const auto* c : comparisons) {
      const Series* exact = nullptr;
      const Series* unlabelled = nullptr;
      for (const auto& s : series) {
        if (!selects(*c, s)) continue;
        if (s.labels == instance) exact = &s;
        if (s.labels.empty()) unlabelled = &s;
      }
      const Series* read = exact ? exact : unlabelled;
      if (!read) continue;
      tl.reads[c] = read;
      // Each point, and the moment it goes stale: a gap in the samples breaks a `for`.
      for (const auto& [t, v] : read->points) {
        if (t >= window_start && t <= now) times.insert(t);
        if (const auto gone = t + staleness + Duration(1); gone >= window_start && gone <= now) times.insert(gone);
      }
    }
    times.insert(now);
    tl.times.assign(times.begin(), times.end());

    ConditionState st;
    st.labels = instance;
    st.holds = tl.truth(condition.root()).back() == Timeline::Truth::yes;
    std::optional<TimePoint> newest;
    std::vector<std::string> shown;
    for (const auto& [c, s] : tl.reads) {
      if (!s->points.empty()) newest = std::max(newest.value_or(s->points.back().first), s->points.back().first);
      const auto v = tl.values(s).back();
      if (!v || st.values.contains(c->metric)) continue;
      st.values[c->metric] = *v;
      shown.push_back(fmt::format("{} = {}", c->metric, number(*v)));
    }
    std::sort(shown.begin(), shown.end());
    st.stale = st.values.empty();
    if (st.holds) {
      st.active_since = tl.since(condition.root());
      st.summary = fmt::format("{}: {} since {}", condition.text(), fmt::join(shown, ", "), format_timestamp(st.active_since));
    } else if (st.stale) {
      st.summary = newest ? fmt::format("{}: no data since {}", condition.text(), format_timestamp(*newest))
                          : fmt::format("{}: no data", condition.text());
    } else {
      st.summary = fmt::format("{}: {}", condition.text(), fmt::join(shown, ", "));
    }
    out.push_back(std::move(st));
  }
  return out;
}

// ---- rules ---------------------------------------------------------------------------------------

std::string_view to_string(Severity s) noexcept {
  switch (s) {
    case Severity::info:
      return "info";
    case Severity::warning:
      return "warning";
    case Severity::critical:
      return "critical";
  }
  return "warning";
}

Result<Severity> parse_severity(std::string_view text) {
  if (text == "info") return Severity::info;
  if (text == "warning") return Severity::warning;
  if (text == "critical") return Severity::critical;
  return fail(errc::invalid_argument, fmt::format("severity \"{}\": expected info, warning or critical", text));
}

namespace {

bool valid_rule_name(std::string_view s) {
  return !s.empty() && s.size() <= 100 && std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
  });
}

}  // namespace

Result<AlertRules> parse_alert_rules(std::string_view json_text, std::string_view origin) {
  auto doc = json::parse(json_text);
  if (!doc) return fail(errc::config, fmt::format("{}: {}", origin, doc.error().message));
  if (!doc->is_object()) return fail(errc::config, fmt::format("{}: expected a JSON object with \"rules\"", origin));
  const auto& top = doc->as_object();
  std::vector<std::string> problems;
  AlertRules out;
  for (const auto& [k, v] : top)
    if (k != "rules" && k != "channels")
      problems.push_back(fmt::format("{}: unknown key \"{}\" (expected \"rules\" and \"channels\")", origin, std::string_view(k)));
  if (const auto* ch = top.if_contains("channels")) {
    if (!ch->is_object()) {
      problems.push_back(fmt::format("{}: channels: expected an object of name: target", origin));
    } else {
      for (const auto& [name, target] : ch->as_object()) {
        const auto where = fmt::format("{}: channels.{}", origin, std::string_view(name));
        if (!target.is_string()) {
          problems.push_back(where + ": expected a target string (webhook:URL, email:A,B or file:PATH)");
          continue;
        }
        if (auto t = parse_target(target.as_string()); !t) problems.push_back(fmt::format("{}: {}", where, t.error().message));
        out.channels.emplace(std::string(name), std::string(target.as_string()));
      }
    }
  }
  // A list of channel names or targets.
  auto targets_of = [&](const bj::value* v, const std::string& where, std::vector<DeliveryTarget>& into) {
    if (!v) return;
    if (!v->is_array()) {
      problems.push_back(where + ": expected an array of channel names or targets");
      return;
    }
    for (const auto& item : v->as_array()) {
      if (!item.is_string()) {
        problems.push_back(where + ": expected strings");
        continue;
      }
      const std::string text(item.as_string());
      const auto channel = out.channels.find(text);
      const auto* target = channel != out.channels.end() ? &channel->second : &text;
      if (channel == out.channels.end() && text.find(':') == std::string::npos) {
        problems.push_back(fmt::format("{}: \"{}\" is neither a channel nor a target", where, text));
        continue;
      }
      auto t = parse_target(*target);
      if (!t) {
        problems.push_back(fmt::format("{}: {}", where, t.error().message));
        continue;
      }
      t->format = ReportFormat::markdown;  // a file target gets the notice's text
      into.push_back(std::move(*t));
    }
  };
  const auto* rules = top.if_contains("rules");
  if (!rules || !rules->is_array()) {
    problems.push_back(fmt::format("{}: \"rules\": expected an array of rules", origin));
  } else {
    std::set<std::string> names;
    for (std::size_t i = 0; i < rules->as_array().size(); ++i) {
      const auto& rv = rules->as_array()[i];
      auto where = fmt::format("{}: rules[{}]", origin, i);
      if (!rv.is_object()) {
        problems.push_back(where + ": expected an object");
        continue;
      }
      const auto& r = rv.as_object();
      auto text = [&](std::string_view key) -> std::optional<std::string> {
        const auto* v = r.if_contains(key);
        if (!v) return std::nullopt;
        if (!v->is_string()) {
          problems.push_back(fmt::format("{}: {}: expected a string", where, key));
          return std::nullopt;
        }
        return std::string(v->as_string());
      };
      AlertRule rule;
      const auto name = text("name");
      if (!name || !valid_rule_name(*name)) {
        problems.push_back(where + ": name: expected letters, digits and . _ - (at most 100)");
      } else {
        rule.name = *name;
        where += " (" + *name + ")";
        if (!names.insert(*name).second) problems.push_back(where + ": a rule with this name exists already");
      }
      for (const auto& [k, v] : r)
        if (k != "name" && k != "when" && k != "severity" && k != "description" && k != "cooldown" && k != "notify" && k != "escalate" &&
            k != "event")
          problems.push_back(fmt::format("{}: unknown key \"{}\"", where, std::string_view(k)));
      if (const auto when = text("when")) {
        if (auto c = Condition::parse(*when); c)
          rule.condition = std::move(*c);
        else
          problems.push_back(fmt::format("{}: when: {}", where, c.error().message));
      } else if (!r.contains("when")) {
        problems.push_back(where + ": when: missing (a condition such as \"cpu_usage > 80 for 5m\")");
      }
      if (const auto sev = text("severity")) {
        if (auto s = parse_severity(*sev); s)
          rule.severity = *s;
        else
          problems.push_back(fmt::format("{}: {}", where, s.error().message));
      }
      rule.description = text("description").value_or("");
      if (const auto cd = text("cooldown")) {
        if (auto d = parse_duration(*cd); d)
          rule.cooldown = *d;
        else
          problems.push_back(fmt::format("{}: cooldown: {}", where, d.error().message));
      }
      if (const auto ev = text("event")) {
        if (storage::is_event_name(*ev))
          rule.event = *ev;
        else
          problems.push_back(fmt::format("{}: event \"{}\": expected letters, digits and . _ - :", where, *ev));
      }
      targets_of(r.if_contains("notify"), where + ": notify", rule.notify);
      if (const auto* esc = r.if_contains("escalate")) {
        if (!esc->is_array()) problems.push_back(where + ": escalate: expected an array of {\"after\", \"notify\"}");
        for (std::size_t j = 0; esc->is_array() && j < esc->as_array().size(); ++j) {
          const auto ew = fmt::format("{}: escalate[{}]", where, j);
          const auto& e = esc->as_array()[j];
          if (!e.is_object()) {
            problems.push_back(ew + ": expected an object with \"after\" and \"notify\"");
            continue;
          }
          EscalationStep step;
          const auto* after = e.as_object().if_contains("after");
          auto d =
              after && after->is_string() ? parse_duration(after->as_string()) : Result<Millis>(fail(errc::invalid_argument, "missing"));
          if (!d || d->count() <= 0)
            problems.push_back(ew + ": after: expected a duration longer than 0 (\"15m\")");
          else
            step.after = *d;
          for (const auto& [k, v] : e.as_object())
            if (k != "after" && k != "notify") problems.push_back(fmt::format("{}: unknown key \"{}\"", ew, std::string_view(k)));
          targets_of(e.as_object().if_contains("notify"), ew + ": notify", step.targets);
          if (step.targets.empty()) problems.push_back(ew + ": notify: expected at least one target");
          if (!rule.escalate.empty() && step.after <= rule.escalate.back().after)
            problems.push_back(ew + ": after: each step must come later than the one before");
          rule.escalate.push_back(std::move(step));
        }
      }
      out.rules.push_back(std::move(rule));
    }
  }
  if (!problems.empty()) return fail(errc::config, fmt::format("{}", fmt::join(problems, "\n")));
  return out;
}

AlertRules default_alert_rules(double cpu_high, double memory_high, double disk_high, std::vector<DeliveryTarget> notify) {
  AlertRules out;
  auto add = [&](std::string name, std::string when, Severity sev, std::string description) {
    AlertRule r;
    r.name = std::move(name);
    r.condition = Condition::parse(when).value();
    r.severity = sev;
    r.description = std::move(description);
    r.notify = notify;
    out.rules.push_back(std::move(r));
  };
  add("high-cpu", fmt::format("cpu_usage > {} for 5m", number(cpu_high)), Severity::warning,
      "CPU usage has stayed above the threshold for 5 minutes");
  add("high-memory", fmt::format("memory_usage > {} for 5m", number(memory_high)), Severity::warning,
      "Memory usage has stayed above the threshold for 5 minutes");
  add("disk-full", fmt::format("disk_usage > {} for 1m", number(disk_high)), Severity::critical, "A file system is nearly full");
  return out;
}

// ---- notices -------------------------------------------------------------------------------------

Notice alert_notice(const storage::AlertRecord& a, const AlertRule& rule) {
  const bool firing = a.state == "firing";
  const auto instance = a.labels.empty() ? std::string() : fmt::format(" {{{}}}", a.labels);
  const auto state = firing ? std::string("firing") : std::string("resolved");
  Notice n;
  n.subject = fmt::format("alert:{}:{}", a.id, state);
  if (firing && a.level > 1) n.subject += fmt::format(":{}", a.level);
  n.name = fmt::format("alert-{}-{}", a.id, state);
  if (firing && a.level > 1) n.name += fmt::format("-{}", a.level);
  const auto severity = std::string(a.severity);
  n.title = firing ? fmt::format("[FIRING {}] {}{}", severity, a.rule, instance) : fmt::format("[RESOLVED] {}{}", a.rule, instance);
  if (firing && a.level > 1) n.title += fmt::format(" (escalated, level {})", a.level);
  std::string lines;
  lines += fmt::format("- **Alert:** {} ({})\n", a.id, severity);
  lines += fmt::format("- **Condition:** {}\n", a.summary);
  lines += fmt::format("- **Firing since:** {}\n", format_timestamp(a.fired));
  if (!firing) lines += fmt::format("- **Resolved at:** {}\n", format_timestamp(a.resolved));
  if (!rule.description.empty()) lines += fmt::format("- **About:** {}\n", rule.description);
  if (firing) lines += fmt::format("- **Acknowledge:** `autoctl alerts ack {}`\n", a.id);
  n.markdown = fmt::format("# {}\n\n{}", n.title, lines);
  n.summary = firing ? fmt::format("*{}* {}{} ({}): {}{}. Acknowledge with `autoctl alerts ack {}`", "FIRING", a.rule, instance, severity,
                                   a.summary, rule.description.empty() ? "" : " - " + rule.description, a.id)
                     : fmt::format("*RESOLVED* {}{}: {}", a.rule, instance, a.summary);
  auto values = json::parse(a.values);
  n.json = json::dump(bj::object{{"alert", a.id},
                                 {"rule", a.rule},
                                 {"labels", a.labels},
                                 {"severity", severity},
                                 {"state", state},
                                 {"summary", a.summary},
                                 {"values", values ? *values : bj::value(bj::object{})},
                                 {"fired", format_timestamp(a.fired)},
                                 {"resolved", firing ? bj::value(nullptr) : bj::value(format_timestamp(a.resolved))},
                                 {"level", a.level},
                                 {"description", rule.description}});
  // The same alert, state and level is one message, whatever its figures say by the time it is sent.
  n.identity = n.subject;
  return n;
}

// ---- the manager ---------------------------------------------------------------------------------

DeliveryOptions AlertOptions::default_delivery() {
  DeliveryOptions d;
  d.actor = "system:alerts";
  d.domain = "alerts";
  d.breaker_name = "alerts-webhook";
  d.subject_prefix = "alert:";
  return d;
}

AlertManager::AlertManager(storage::Store& store, const Clock& clock, AlertOptions options)
    : store_(store), clock_(clock), options_(std::move(options)) {
  // The rules are checked once, here: a name each, a condition each, and a way to send every notice.
  auto refuse = [](std::string why) { throw Exception(Error{errc::invalid_argument, std::move(why)}); };
  std::set<std::string> names;
  for (const auto& r : options_.rules.rules) {
    if (!valid_rule_name(r.name)) refuse(fmt::format("alert rule \"{}\": expected a name of letters, digits and . _ -", r.name));
    if (!names.insert(r.name).second) refuse(fmt::format("alert rule {}: defined twice", r.name));
    if (r.condition.empty()) refuse(fmt::format("alert rule {}: no condition", r.name));
    auto check = [&](const std::vector<DeliveryTarget>& targets) {
      for (const auto& t : targets)
        if (t.kind == TargetKind::email && options_.delivery.smtp.host.empty())
          refuse(fmt::format("alert rule {}: email target {} needs an SMTP server (reports.smtp_host)", r.name, t.destination));
    };
    check(r.notify);
    for (const auto& e : r.escalate) check(e.targets);
  }
  if (options_.staleness <= Duration{}) refuse("alert staleness must be longer than 0");
  deliverer_ = std::make_unique<ReportDeliverer>(store, clock, options_.delivery);
  if (!options_.emit) {
    options_.emit = [this](std::string name, const bj::object& payload) {
      return workflow::emit_event(store_, std::move(name), payload, "alerts", clock_.now());
    };
  }
}

AlertManager::~AlertManager() = default;

namespace {

void record_task(storage::Store& store, const storage::AlertRecord& a, std::string_view action, std::string_view why, TimePoint now) {
  storage::TaskRecord t;
  t.domain = "alerts";
  t.action = std::string(action);
  t.params = json::dump(bj::object{
      {"alert", a.id}, {"rule", a.rule}, {"labels", a.labels}, {"severity", a.severity}, {"summary", a.summary}, {"reason", why}});
  t.started = t.ended = now;
  t.correlation_id = std::string(current_correlation_id());
  if (auto r = store.append_tasks({&t, 1}); !r)
    automation::detail::logf(LogLevel::warn, "alerts", "could not record {} of alert {} in the task history: {}", action, a.id,
                             r.error().message);
}

}  // namespace

Result<storage::AlertRecord> AlertManager::save(storage::AlertRecord a) {
  a.updated = clock_.now();
  if (a.id == 0) {
    auto id = store_.create_alert(a);
    if (!id) return id.error();
    a.id = *id;
    a.version = 1;
    return a;
  }
  auto v = store_.update_alert(a);
  if (!v) return v.error();
  a.version = *v;
  return a;
}

// What an evaluation decided for one alert: its new state and what to do once that is saved.
struct AlertManager::Pending {
  storage::AlertRecord alert;
  bool created = false;                                          // stored by this evaluation (its "fired" is recorded)
  std::vector<std::pair<std::string, std::string>> transitions;  // (task action, why): "resolve", "reopen"
  struct Send {
    std::vector<DeliveryTarget> targets;
    std::string what, why;  // "notified" / "escalated"
    int level = 0;          // the alert's level for the notice
  };
  std::vector<Send> sends;
  std::vector<std::string> events;
};

void AlertManager::plan_notices(const AlertRule& rule, Pending& p) {
  auto& a = p.alert;
  const auto now = clock_.now();
  // The state changed since the last notice. A firing goes out at once; a resolution waits until
  // the cooldown since the last notice ends (a condition back by then continues the same alert).
  const bool pending = a.state != a.notified_state && !(a.state == "resolved" && a.notified_state.empty());
  if (pending) {
    const bool firing = a.state == "firing";
    const auto ready = firing || a.notified == TimePoint{} ? now : a.notified + rule.cooldown;
    if (now < ready) {
      p.sends.push_back({{},
                         "notice-held",
                         fmt::format("the resolution is held by the cooldown ({}) until {}",
                                     format_duration(duration_cast<Millis>(rule.cooldown)), format_timestamp(ready)),
                         a.level});
    } else {
      std::vector<DeliveryTarget> targets = rule.notify;
      if (firing) {
        a.level = std::max(a.level, 1);
      } else {  // the resolution goes to every level that heard of the firing
        for (int k = 0; k + 1 < a.level && k < static_cast<int>(rule.escalate.size()); ++k)
          targets.insert(targets.end(), rule.escalate[k].targets.begin(), rule.escalate[k].targets.end());
      }
      p.sends.push_back({std::move(targets), "notified", fmt::format("alert {} {} {}: {}", a.id, rule.name, a.state, a.summary), a.level});
      p.events.push_back(firing ? "alert.firing" : "alert.resolved");
      if (firing && !rule.event.empty()) p.events.push_back(rule.event);
      a.notified_state = a.state;
      a.notified = now;
    }
  }
  // Escalation: a firing alert nobody acknowledged reaches the next level when its time comes.
  while (a.state == "firing" && a.notified_state == "firing" && a.acknowledged == TimePoint{} && a.level >= 1 &&
         a.level - 1 < static_cast<int>(rule.escalate.size())) {
    const auto& step = rule.escalate[a.level - 1];
    if (now < a.fired + step.after) break;
    a.level += 1;
    p.sends.push_back(
        {step.targets, "escalated",
         fmt::format("alert {} {} not acknowledged {} after it fired", a.id, rule.name, format_duration(duration_cast<Millis>(step.after))),
         a.level});
  }
}

// Saves what was decided, then (only when the save won) sends the notices and emits the events, so
// that two processes never both announce one change.
void AlertManager::commit(const AlertRule& rule, Pending p, std::vector<AlertChange>& changes) {
  auto& a = p.alert;
  const auto now = clock_.now();
  auto change = [&](std::string what, std::string detail) {
    changes.push_back({a.id, a.rule, a.labels, std::move(what), std::move(detail)});
  };
  auto saved = save(a);
  if (!saved) {
    change(saved.error().code == errc::conflict ? "skipped" : "error", saved.error().code == errc::conflict
                                                                           ? "changed by another process during this evaluation"
                                                                           : "could not be saved: " + saved.error().message);
    return;
  }
  a = std::move(*saved);
  for (const auto& [action, why] : p.transitions) {
    change(action == "reopen" ? "reopened" : "resolved", why);
    record_task(store_, a, action, why, now);
  }
  for (const auto& send : p.sends) {
    if (send.what == "notice-held") {
      change(send.what, send.why);
      continue;
    }
    std::string detail = "no targets";
    if (!send.targets.empty()) {
      auto shaped = a;
      shaped.level = send.level;
      auto out = deliverer_->deliver(alert_notice(shaped, rule), send.targets, send.why);
      if (!out) {
        change("error", fmt::format("{} notice not stored: {}", send.what == "escalated" ? "escalation" : a.state, out.error().message));
        continue;
      }
      std::vector<std::string> parts;
      for (const auto& o : *out) parts.push_back(fmt::format("{} {}", o.target, o.state));
      detail = fmt::format("{}", fmt::join(parts, ", "));
    }
    if (send.what == "escalated") {
      change("escalated", fmt::format("level {}: {}; {}", send.level, send.why, detail));
      record_task(store_, a, "escalate", send.why, now);
    } else {
      change("notified", fmt::format("{}: {}", a.state, detail));
      record_task(store_, a, a.state == "firing" ? "notify.firing" : "notify.resolved", detail, now);
    }
  }
  bj::object payload{{"alert", a.id},          {"rule", a.rule},       {"labels", a.labels},
                     {"severity", a.severity}, {"summary", a.summary}, {"state", a.state}};
  if (auto v = json::parse(a.values); v) payload["values"] = *v;
  for (const auto& e : p.events) {
    if (auto id = options_.emit(e, payload); id)
      change("emitted", fmt::format("event {} ({})", e, *id));
    else
      change("error", fmt::format("could not emit {}: {}", e, id.error().message));
  }
}

Result<void> AlertManager::evaluate_rule(const AlertRule& rule, std::vector<AlertChange>& changes) {
  const auto now = clock_.now();
  const auto since = now - rule.condition.lookback() - options_.staleness;
  std::vector<Series> series;
  for (const auto& m : rule.condition.metrics()) {
    auto points = store_.query_metric_points({.name = m, .since = since, .until = now + milliseconds(1)});
    if (!points) return with_context(points.error(), fmt::format("rule {}: reading {}", rule.name, m));
    for (auto& p : *points) {
      if (series.empty() || series.back().name != p.name || series.back().labels != p.labels)
        series.push_back(Series{p.name, p.labels, {}});
      series.back().points.emplace_back(p.time, p.value);
    }
  }
  const auto states = metrics::evaluate(rule.condition, series, now, options_.staleness);

  auto firing = store_.list_alerts({.state = std::string("firing"), .rule = rule.name, .limit = 0});
  if (!firing) return with_context(firing.error(), fmt::format("rule {}: listing its alerts", rule.name));
  std::map<std::string, storage::AlertRecord> open;
  for (auto& a : *firing) open.emplace(a.labels, std::move(a));
  // Resolved alerts whose resolution is not announced yet: held by the cooldown (a condition back in
  // that time continues the alert), or due now.
  auto owed = store_.list_alerts({.state = std::string("resolved"), .rule = rule.name, .limit = 0, .notice_owed = true});
  if (!owed) return with_context(owed.error(), fmt::format("rule {}: listing its alerts", rule.name));
  std::map<std::string, storage::AlertRecord> owing;
  for (auto& a : *owed)
    if (!open.contains(a.labels) && !owing.contains(a.labels)) owing.emplace(a.labels, std::move(a));

  std::vector<Pending> decided;
  auto take = [](std::map<std::string, storage::AlertRecord>& m, const std::string& labels) {
    std::optional<storage::AlertRecord> out;
    if (auto it = m.find(labels); it != m.end()) {
      out = std::move(it->second);
      m.erase(it);
    }
    return out;
  };
  for (const auto& st : states) {
    const auto values = json::dump(st.values);
    auto current = take(open, st.labels);
    if (st.holds) {
      if (current) {  // still firing: deduplicated, its figures refreshed
        Pending p{std::move(*current)};
        p.alert.summary = st.summary;
        p.alert.values = values;
        if (p.alert.active_since == TimePoint{} || st.active_since < p.alert.active_since) p.alert.active_since = st.active_since;
        decided.push_back(std::move(p));
        continue;
      }
      auto previous = take(owing, st.labels);
      if (previous && now < previous->notified + rule.cooldown) {  // flapping: the same alert fires again
        Pending p{std::move(*previous)};
        auto& a = p.alert;
        a.state = "firing";
        a.resolved = {};
        a.reopened += 1;
        a.summary = st.summary;
        a.values = values;
        a.reason = fmt::format("fired again at {} before its resolution was announced", format_timestamp(now));
        p.transitions.emplace_back("reopen", a.reason);
        decided.push_back(std::move(p));
        continue;
      }
      if (previous) decided.push_back(Pending{std::move(*previous)});  // its resolution is due: announce it first
      storage::AlertRecord a;
      a.rule = rule.name;
      a.labels = st.labels;
      a.severity = std::string(to_string(rule.severity));
      a.state = "firing";
      a.summary = st.summary;
      a.values = values;
      a.active_since = st.active_since;
      a.fired = now;
      a.reason = fmt::format("{} (rule {})", st.summary, rule.name);
      auto created = save(a);
      if (!created) {
        if (created.error().code == errc::conflict) continue;  // another process fired it first
        return with_context(created.error(), fmt::format("rule {}: storing an alert", rule.name));
      }
      changes.push_back({created->id, created->rule, created->labels, "fired", created->reason});
      record_task(store_, *created, "fire", created->reason, now);
      decided.push_back(Pending{std::move(*created), true});
    } else if (current) {
      Pending p{std::move(*current)};
      auto& a = p.alert;
      a.state = "resolved";
      a.resolved = now;
      a.values = values;
      a.reason = st.stale ? st.summary : "cleared: " + st.summary;
      p.transitions.emplace_back("resolve", a.reason);
      decided.push_back(std::move(p));
    }
  }
  // Firing alerts of instances that no longer have any series.
  for (auto& [labels, a] : open) {
    Pending p{std::move(a)};
    p.alert.state = "resolved";
    p.alert.resolved = now;
    p.alert.reason = fmt::format("{}: no data for {{{}}} in the last {}", rule.condition.text(), labels,
                                 format_duration(duration_cast<Millis>(now - since)));
    p.transitions.emplace_back("resolve", p.alert.reason);
    decided.push_back(std::move(p));
  }
  // Resolutions still owed whose instance stayed clear.
  for (auto& [labels, a] : owing) decided.push_back(Pending{std::move(a)});

  for (auto& p : decided) {
    plan_notices(rule, p);
    commit(rule, std::move(p), changes);
  }
  return {};
}

// A firing alert of a rule this manager does not have. Another process may evaluate a different
// rule set, so only one nobody has updated for `orphan_after` is resolved; its resolution goes to
// the targets its firing reached (found in the delivery outbox) and emits alert.resolved.
void AlertManager::resolve_orphan(storage::AlertRecord a, std::vector<AlertChange>& changes) {
  const auto now = clock_.now();
  AlertRule gone;
  gone.name = a.rule;
  gone.cooldown = Duration{};
  Pending p{std::move(a)};
  auto& al = p.alert;
  al.state = "resolved";
  al.resolved = now;
  al.reason = fmt::format("rule {} is no longer configured (not evaluated since {})", al.rule, format_timestamp(al.updated));
  p.transitions.emplace_back("resolve", al.reason);
  std::vector<DeliveryTarget> targets;
  std::set<std::string> seen;
  for (int level = 1; level <= std::max(al.level, 1); ++level) {
    const auto subject = level > 1 ? fmt::format("alert:{}:firing:{}", al.id, level) : fmt::format("alert:{}:firing", al.id);
    auto sent = store_.list_deliveries({.subject = subject, .limit = 0});
    if (!sent) continue;
    for (const auto& d : *sent) {
      auto t = parse_target(d.target);
      if (!t || !seen.insert(d.target).second) continue;
      if (t->kind == TargetKind::file) {  // the firing's file: the resolution goes beside it
        t->destination = fs::path(t->destination).parent_path().string() + "/";
        t->format = ReportFormat::markdown;
      }
      targets.push_back(std::move(*t));
    }
  }
  p.sends.push_back({std::move(targets), "notified", fmt::format("alert {} {} resolved: {}", al.id, al.rule, al.reason), al.level});
  p.events.push_back("alert.resolved");
  al.notified_state = "resolved";
  al.notified = now;
  commit(gone, std::move(p), changes);
}

Result<std::vector<AlertChange>> AlertManager::evaluate() {
  std::vector<AlertChange> changes;
  for (const auto& rule : options_.rules.rules) {
    if (auto r = evaluate_rule(rule, changes); !r) {
      changes.push_back({0, rule.name, "", "error", r.error().message});
      automation::detail::logf(LogLevel::warn, "alerts", "{}", r.error().message);
    }
  }
  const auto now = clock_.now();
  if (auto firing = store_.list_alerts({.state = std::string("firing"), .limit = 0}); !firing) {
    changes.push_back({0, "", "", "error", "listing firing alerts: " + firing.error().message});
  } else {
    const auto& rules = options_.rules.rules;
    for (auto& a : *firing) {
      if (std::any_of(rules.begin(), rules.end(), [&](const AlertRule& r) { return r.name == a.rule; })) continue;
      if (now - a.updated < options_.orphan_after) continue;
      resolve_orphan(std::move(a), changes);
    }
  }
  // Alert notices that failed before and are due again (the deliverer's subject prefix is "alert:").
  if (auto due = deliverer_->retry_due(); !due) {
    changes.push_back({0, "", "", "error", "retrying due notices: " + due.error().message});
  } else {
    for (const auto& o : *due)
      if (o.attempted)
        changes.push_back({0, "", "", "notified", fmt::format("retried delivery {} ({}): {} {}", o.id, o.subject, o.target, o.state)});
  }
  return changes;
}

Result<storage::AlertRecord> AlertManager::acknowledge(std::int64_t id, std::string actor, std::string reason) {
  for (int tries = 0; tries < 5; ++tries) {
    auto got = store_.get_alert(id);
    if (!got) return got.error();
    if (!*got) return fail(errc::not_found, fmt::format("alert {} does not exist", id));
    auto a = std::move(**got);
    if (a.acknowledged != TimePoint{}) return a;
    const auto now = clock_.now();
    a.acknowledged = now;
    a.acknowledged_by = actor;
    a.ack_reason = reason;
    auto saved = save(a);
    if (!saved) {
      if (saved.error().code == errc::conflict) continue;
      return saved.error();
    }
    storage::AuditRecord r;
    r.time = now;
    r.actor = actor;
    r.action = "alert.ack";
    r.resource = fmt::format("alert:{}", id);
    r.origin = this_process();
    r.reason = reason.empty() ? "acknowledged" : reason;
    r.details = json::dump(bj::object{{"rule", a.rule}, {"labels", a.labels}, {"state", a.state}, {"level", a.level}});
    r.correlation_id = std::string(current_correlation_id());
    if (auto w = store_.append_audit({&r, 1}); !w)
      automation::detail::logf(LogLevel::warn, "alerts", "could not record the acknowledgement of alert {}: {}", id, w.error().message);
    record_task(store_, *saved, "ack", r.reason, now);
    return saved;
  }
  return fail(errc::conflict, fmt::format("alert {} kept changing while it was acknowledged; try again", id));
}

}  // namespace automation::metrics
