#include <automation/workflow/expression.hpp>
#include <detail/names.hpp>

#include <fmt/format.h>

#include <cctype>
#include <charconv>
#include <cmath>

namespace automation::workflow {

struct Expression::Node {
  enum class Kind { literal, path, call, not_, and_, or_, cmp } kind;
  ExprValue value;                // literal
  std::vector<std::string> path;  // path
  std::string op;                 // call name, or comparison operator
  std::shared_ptr<const Node> a, b;
};

namespace {
using Node = Expression::Node;

std::optional<double> as_number(const ExprValue& v) {
  if (const auto* d = std::get_if<double>(&v)) return *d;
  if (const auto* b = std::get_if<bool>(&v)) return *b ? 1.0 : 0.0;
  if (const auto* s = std::get_if<std::string>(&v)) {
    double x = 0;
    auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), x);
    if (ec == std::errc() && p == s->data() + s->size() && !s->empty() && std::isfinite(x)) return x;  // not "nan" or "inf"
  }
  return std::nullopt;
}

bool compare(const std::string& op, const ExprValue& l, const ExprValue& r) {
  int c = 0;
  const bool both_strings = std::holds_alternative<std::string>(l) && std::holds_alternative<std::string>(r);
  const auto ln = as_number(l), rn = as_number(r);
  if (!both_strings && ln && rn) {
    c = *ln < *rn ? -1 : *ln > *rn ? 1 : 0;
  } else if (std::holds_alternative<std::monostate>(l) || std::holds_alternative<std::monostate>(r)) {
    const bool eq = l.index() == r.index();
    if (op == "==") return eq;
    if (op == "!=") return !eq;
    return false;
  } else {
    const auto ls = to_text(l), rs = to_text(r);
    c = ls < rs ? -1 : ls > rs ? 1 : 0;
  }
  if (op == "==") return c == 0;
  if (op == "!=") return c != 0;
  if (op == "<") return c < 0;
  if (op == "<=") return c <= 0;
  if (op == ">") return c > 0;
  return c >= 0;
}

ExprValue eval(const Node& n, const ExprContext& ctx) {
  switch (n.kind) {
    case Node::Kind::literal:
      return n.value;
    case Node::Kind::path: {
      if (!ctx.lookup) return {};
      auto v = ctx.lookup(n.path);
      return v ? *v : ExprValue{};
    }
    case Node::Kind::call:
      if (n.op == "success") return !ctx.any_failed && !ctx.cancelled;
      if (n.op == "failure") return ctx.any_failed;
      if (n.op == "cancelled") return ctx.cancelled;
      return true;  // always()
    case Node::Kind::not_:
      return !truthy(eval(*n.a, ctx));
    case Node::Kind::and_: {
      auto l = eval(*n.a, ctx);
      return truthy(l) ? eval(*n.b, ctx) : l;
    }
    case Node::Kind::or_: {
      auto l = eval(*n.a, ctx);
      return truthy(l) ? l : eval(*n.b, ctx);
    }
    case Node::Kind::cmp:
      return compare(n.op, eval(*n.a, ctx), eval(*n.b, ctx));
  }
  return {};
}

}  // namespace

std::string to_text(const ExprValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const auto* d = std::get_if<double>(&v)) {
    if (std::isfinite(*d) && *d == std::floor(*d) && std::fabs(*d) < 1e15) return fmt::format("{}", static_cast<long long>(*d));
    return fmt::format("{}", *d);
  }
  return "";
}

bool truthy(const ExprValue& v) {
  if (const auto* b = std::get_if<bool>(&v)) return *b;
  if (const auto* d = std::get_if<double>(&v)) return *d != 0;
  if (const auto* s = std::get_if<std::string>(&v)) return !s->empty();
  return false;
}

struct ExprParser {
  std::string_view s;
  std::size_t i = 0;
  Expression& out;

  Error bad(std::string_view expected) const {
    const std::string at = i < s.size() ? fmt::format("\"{}\"", s.substr(i, 12)) : std::string("the end");
    return Error{errc::invalid_argument, fmt::format("expression \"{}\": at {} (position {}): expected {}", s, at, i + 1, expected)};
  }
  void ws() {
    while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  }
  bool eat(std::string_view tok) {
    ws();
    if (s.substr(i, tok.size()) != tok) return false;
    i += tok.size();
    return true;
  }
  static std::shared_ptr<Node> node(Node::Kind k) {
    auto n = std::make_shared<Node>();
    n->kind = k;
    return n;
  }

  // A left-associative chain `next (op next)*`.
  template <class Next>
  Result<std::shared_ptr<const Node>> chain(std::string_view op, Node::Kind kind, Next next) {
    auto l = (this->*next)();
    if (!l) return l;
    while (eat(op)) {
      auto r = (this->*next)();
      if (!r) return r;
      auto n = node(kind);
      n->a = *l;
      n->b = *r;
      l = std::shared_ptr<const Node>(n);
    }
    return l;
  }
  Result<std::shared_ptr<const Node>> parse_or() { return chain("||", Node::Kind::or_, &ExprParser::parse_and); }
  Result<std::shared_ptr<const Node>> parse_and() { return chain("&&", Node::Kind::and_, &ExprParser::parse_not); }
  Result<std::shared_ptr<const Node>> parse_not() {
    ws();
    if (i < s.size() && s[i] == '!' && s.substr(i, 2) != "!=") {
      ++i;
      auto a = parse_not();
      if (!a) return a;
      auto n = node(Node::Kind::not_);
      n->a = *a;
      return std::shared_ptr<const Node>(n);
    }
    return parse_cmp();
  }
  Result<std::shared_ptr<const Node>> parse_cmp() {
    auto l = parse_primary();
    if (!l) return l;
    for (std::string_view op : {"==", "!=", "<=", ">=", "<", ">"}) {
      if (eat(op)) {
        auto r = parse_primary();
        if (!r) return r;
        auto n = node(Node::Kind::cmp);
        n->op = std::string(op);
        n->a = *l;
        n->b = *r;
        return std::shared_ptr<const Node>(n);
      }
    }
    return l;
  }
  Result<std::shared_ptr<const Node>> parse_primary() {
    ws();
    if (i >= s.size()) return bad("a value, a name or '('");
    const char c = s[i];
    if (c == '(') {
      ++i;
      auto e = parse_or();
      if (!e) return e;
      if (!eat(")")) return bad("')'");
      return e;
    }
    if (c == '\'' || c == '"') {
      std::string text;
      for (++i; i < s.size() && s[i] != c; ++i) text += s[i];
      if (i >= s.size()) return bad(fmt::format("a closing {}", c));
      ++i;
      auto n = node(Node::Kind::literal);
      n->value = std::move(text);
      return std::shared_ptr<const Node>(n);
    }
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '-' && i + 1 < s.size() && std::isdigit(static_cast<unsigned char>(s[i + 1])))) {
      double x = 0;
      auto [p, ec] = std::from_chars(s.data() + i, s.data() + s.size(), x);
      if (ec != std::errc()) return bad("a number");
      i = static_cast<std::size_t>(p - s.data());
      auto n = node(Node::Kind::literal);
      n->value = x;
      return std::shared_ptr<const Node>(n);
    }
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      std::vector<std::string> path;
      for (;;) {
        const std::size_t b = i;
        while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_' || s[i] == '-')) ++i;
        if (i == b) return bad("a name after '.'");
        path.emplace_back(s.substr(b, i - b));
        if (i < s.size() && s[i] == '.') {
          ++i;
          continue;
        }
        break;
      }
      if (path.size() == 1) {
        const auto& w = path[0];
        if (w == "true" || w == "false" || w == "null") {
          auto n = node(Node::Kind::literal);
          if (w != "null") n->value = w == "true";
          return std::shared_ptr<const Node>(n);
        }
        if (eat("(")) {
          if (w != "success" && w != "failure" && w != "always" && w != "cancelled")
            return bad(fmt::format("a known function (success, failure, always, cancelled), not {}()", w));
          if (!eat(")")) return bad("')' (status functions take no arguments)");
          auto n = node(Node::Kind::call);
          n->op = w;
          out.uses_status_ = true;
          return std::shared_ptr<const Node>(n);
        }
      }
      const std::string& root = path[0];
      if (root != "params" && root != "steps" && root != "env") return bad(fmt::format("params.X, steps.X or env.X, not \"{}\"", root));
      if (path.size() < 2) return bad(fmt::format("a name after \"{}.\"", root));
      if (root == "steps" && (path.size() < 3 || (path[2] != "outputs" && path[2] != "outcome") ||
                              (path[2] == "outputs") != (path.size() == 4) || path.size() > 4))
        return bad("steps.ID.outputs.NAME or steps.ID.outcome");
      out.refs_.push_back(path);
      auto n = node(Node::Kind::path);
      n->path = std::move(path);
      return std::shared_ptr<const Node>(n);
    }
    return bad("a value, a name or '('");
  }
};

Result<Expression> Expression::parse(std::string_view text) {
  text = detail::trim(text);
  Expression e;
  e.text_ = std::string(text);
  ExprParser p{e.text_, 0, e};
  auto root = p.parse_or();
  if (!root) return root.error();
  p.ws();
  if (p.i != p.s.size()) return p.bad("an operator (== != < <= > >= && ||) or the end");
  e.root_ = *root;
  return e;
}

ExprValue Expression::evaluate(const ExprContext& ctx) const { return root_ ? eval(*root_, ctx) : ExprValue{}; }

Result<Template> Template::parse(std::string_view text) {
  Template t;
  t.text_ = std::string(text);
  std::size_t i = 0;
  std::string literal;
  while (i < text.size()) {
    const auto open = text.find("${{", i);
    if (open == std::string_view::npos) {
      literal += text.substr(i);
      break;
    }
    literal += text.substr(i, open - i);
    const auto close = text.find("}}", open + 3);
    if (close == std::string_view::npos)
      return fail(errc::invalid_argument, fmt::format("\"{}\": \"${{{{\" at position {} is never closed with \"}}}}\"", text, open + 1));
    auto e = Expression::parse(text.substr(open + 3, close - open - 3));
    if (!e) return e.error();
    t.parts_.push_back({std::move(literal), std::move(*e)});
    literal.clear();
    i = close + 2;
  }
  if (!literal.empty() || t.parts_.empty()) t.parts_.push_back({std::move(literal), std::nullopt});
  return t;
}

std::string Template::render(const ExprContext& ctx) const {
  std::string out;
  for (const auto& p : parts_) {
    out += p.literal;
    if (p.expr) out += to_text(p.expr->evaluate(ctx));
  }
  return out;
}

std::vector<const Expression*> Template::expressions() const {
  std::vector<const Expression*> out;
  for (const auto& p : parts_)
    if (p.expr) out.push_back(&*p.expr);
  return out;
}

}  // namespace automation::workflow
