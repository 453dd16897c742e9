#pragma once
/// Step conditions (`if`) and `${{ ... }}` substitutions in workflow definitions.
/// Grammar: `||`, `&&`, `!`, comparisons `== != < <= > >=`, parentheses, string literals in single
/// or double quotes, numbers, true/false/null, the status functions success(), failure(),
/// always() and cancelled(), and dotted names: `params.NAME`, `env.NAME`,
/// `steps.ID.outputs.NAME`, `steps.ID.outcome` ("succeeded", "failed", "skipped", ...).
/// Comparisons of a number with a string compare numerically when the string is a number; strings
/// compare as text. Truthiness: null, false, 0 and "" are false.
/// Thread-safety: a parsed expression is immutable.
#include <automation/core/error.hpp>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace automation::workflow {

/// A value during evaluation.
using ExprValue = std::variant<std::monostate, bool, double, std::string>;
std::string to_text(const ExprValue& v);  ///< how a value is substituted into a string
bool truthy(const ExprValue& v);

/// What an expression may look at while it is evaluated.
struct ExprContext {
  /// Resolves a dotted name ({"params","region"}); nullopt when unknown (evaluates to null).
  std::function<std::optional<ExprValue>(const std::vector<std::string>& path)> lookup;
  bool any_failed = false;  ///< an earlier step this one depends on failed (failure())
  bool cancelled = false;   ///< the run is being cancelled (cancelled())
};

class Expression {
 public:
  /// Parses `text`; errc::invalid_argument naming the position and what was expected.
  static Result<Expression> parse(std::string_view text);
  ExprValue evaluate(const ExprContext& ctx) const;
  bool test(const ExprContext& ctx) const { return truthy(evaluate(ctx)); }

  const std::string& text() const noexcept { return text_; }
  /// Every dotted name the expression reads, for validation.
  const std::vector<std::vector<std::string>>& references() const noexcept { return refs_; }
  /// Whether it calls a status function (then a failed dependency does not skip the step by itself).
  bool uses_status() const noexcept { return uses_status_; }

  struct Node;

 private:
  std::string text_;
  std::shared_ptr<const Node> root_;
  std::vector<std::vector<std::string>> refs_;
  bool uses_status_ = false;
  friend struct ExprParser;
};

/// A string with `${{ expr }}` parts.
class Template {
 public:
  static Result<Template> parse(std::string_view text);
  std::string render(const ExprContext& ctx) const;
  const std::string& text() const noexcept { return text_; }
  std::vector<const Expression*> expressions() const;

 private:
  struct Part {
    std::string literal;
    std::optional<Expression> expr;
  };
  std::string text_;
  std::vector<Part> parts_;
};

}  // namespace automation::workflow
