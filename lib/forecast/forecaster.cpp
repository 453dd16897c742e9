#include <automation/core/json.hpp>
#include <automation/forecast/forecaster.hpp>

#include "detail/http_client.hpp"
#include "detail/log.hpp"
#include "detail/names.hpp"
#include "forecast/models.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <atomic>
#include <cmath>
#include <numeric>

namespace automation::forecast {
namespace {

std::string level_key(const char* side, double level) { return fmt::format("{}_{:g}", side, level); }

std::string prompt(std::span<const double> history, const Options& options, std::size_t period) {
  boost::json::object answer_entry{{"value", "number"}};
  for (double level : options.levels) {
    answer_entry[level_key("lower", level)] = "number";
    answer_entry[level_key("upper", level)] = "number";
  }
  boost::json::object task{
      {"task", "forecast the next values of the series"},
      {"horizon", options.horizon},
      {"seasonal_period", period},
      {"interval_levels_percent", boost::json::value_from(options.levels)},
      {"history_oldest_first", boost::json::array(history.begin(), history.end())},
      {"answer_format", boost::json::object{{"forecast", boost::json::array{answer_entry}}}},
      {"rules", boost::json::array{"answer with one JSON object and nothing else",
                                   fmt::format("the forecast array has exactly {} entries, one per step", options.horizon),
                                   "each lower_L <= value <= upper_L, and wider levels enclose narrower ones"}}};
  return json::dump(task);
}

// The message content may come wrapped in a Markdown code fence.
std::string_view unfence(std::string_view s) {
  s = detail::trim(s);
  if (s.rfind("```", 0) != 0) return s;
  const auto newline = s.find('\n');
  const auto close = s.rfind("```");
  if (newline == std::string_view::npos || close <= newline) return s;
  return s.substr(newline + 1, close - newline - 1);
}

Result<double> number_at(const boost::json::object& entry, const std::string& key, std::size_t step) {
  const auto* v = entry.if_contains(key);
  if (!v) return fail(errc::corrupt, fmt::format("forecast[{}]: \"{}\" is missing", step, key));
  if (!v->is_number()) return fail(errc::corrupt, fmt::format("forecast[{}].{}: a {}, not a number", step, key, json::type_name(*v)));
  const double d = v->to_number<double>();
  if (!std::isfinite(d)) return fail(errc::corrupt, fmt::format("forecast[{}].{}: not a finite number", step, key));
  return d;
}

Result<Forecast> parse_answer(std::string_view content, const Options& options) {
  auto doc = json::parse(unfence(content), "the LLM's answer");
  if (!doc) return fail(errc::corrupt, doc.error().message);
  const auto* obj = doc->if_object();
  const auto* list = obj ? obj->if_contains("forecast") : nullptr;
  if (!list || !list->is_array()) return fail(errc::corrupt, "the LLM's answer has no \"forecast\" array");
  const auto& a = list->as_array();
  if (a.size() != options.horizon)
    return fail(errc::corrupt, fmt::format("the LLM's forecast has {} entries, the horizon is {}", a.size(), options.horizon));
  // Levels from the narrowest to the widest, to check that each encloses the previous.
  std::vector<std::size_t> order(options.levels.size());
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](std::size_t x, std::size_t y) { return options.levels[x] < options.levels[y]; });
  Forecast f;
  for (double level : options.levels) f.intervals.push_back({level, {}, {}});
  for (std::size_t k = 0; k < a.size(); ++k) {
    const auto* entry = a[k].if_object();
    if (!entry) return fail(errc::corrupt, fmt::format("forecast[{}]: not an object", k));
    auto value = number_at(*entry, "value", k);
    if (!value) return value.error();
    f.mean.push_back(*value);
    double lo_prev = *value, hi_prev = *value;
    for (std::size_t i : order) {
      const double level = options.levels[i];
      auto lo = number_at(*entry, level_key("lower", level), k);
      if (!lo) return lo.error();
      auto hi = number_at(*entry, level_key("upper", level), k);
      if (!hi) return hi.error();
      if (!(*lo <= lo_prev && *hi >= hi_prev))
        return fail(errc::corrupt,
                    fmt::format("forecast[{}]: the {:g} % bounds {} .. {} do not enclose {} .. {}", k, level, *lo, *hi, lo_prev, hi_prev));
      f.intervals[i].lower.push_back(*lo);
      f.intervals[i].upper.push_back(*hi);
      lo_prev = *lo, hi_prev = *hi;
    }
  }
  return f;
}

}  // namespace

Result<std::optional<LlmConfig>> LlmConfig::from_config(const Config& config, const Environment& env) {
  auto from_env = [&](const char* name) {
    const auto it = env.find(name);
    return it == env.end() ? std::string() : it->second;
  };
  LlmConfig c;
  static_cast<LlmSettings&>(c) = config.llm;
  // OPENAI_BASE_URL alone (often exported for other tools) does not switch the backend on: it
  // counts only once a model is configured.
  if (c.base_url.empty() && !c.model.empty()) c.base_url = from_env("OPENAI_BASE_URL");
  if (c.api_key.empty()) c.api_key = from_env("OPENAI_API_KEY");
  if (c.base_url.empty()) return std::optional<LlmConfig>();
  if (auto v = c.validate(); !v) return v.error();
  return std::optional<LlmConfig>(std::move(c));
}

Result<void> LlmConfig::validate() const {
  if (base_url.rfind("http://", 0) != 0 && base_url.rfind("https://", 0) != 0)
    return fail(errc::config, fmt::format("llm base URL \"{}\" is not an http:// or https:// URL", base_url));
  if (model.empty()) return fail(errc::config, "llm.model is not set (AUTOMATION_LLM_MODEL)");
  if (timeout.count() <= 0) return fail(errc::config, "llm timeout must be positive");
  if (max_points == 0) return fail(errc::config, "llm max_points must be at least 1");
  return {};
}

Result<Forecast> llm_forecast(const LlmConfig& config, std::span<const double> history, const Options& options, std::size_t period) {
  if (history.size() > config.max_points) history = history.last(config.max_points);
  detail::HttpCall call;
  call.method = "POST";
  call.url = config.base_url;
  while (!call.url.empty() && call.url.back() == '/') call.url.pop_back();
  call.url += "/chat/completions";
  call.timeout = config.timeout;
  call.ca_file = config.ca_file;
  if (!config.api_key.empty()) call.headers.emplace_back("Authorization", "Bearer " + config.api_key);
  call.body = json::dump(boost::json::object{
      {"model", config.model},
      {"temperature", 0},
      {"response_format", boost::json::object{{"type", "json_object"}}},
      {"messages", boost::json::array{
                       boost::json::object{{"role", "system"}, {"content", "You are a forecasting engine. Reply with strict JSON only."}},
                       boost::json::object{{"role", "user"}, {"content", prompt(history, options, period)}}}}});
  const std::atomic<bool> never{false};
  auto answer = detail::perform_http(call, never);
  if (!answer) return answer.error();
  if (!answer->accepted)
    return fail(errc::unavailable, fmt::format("{} answered HTTP {}: {}", call.url, answer->status, answer->body.substr(0, 200)));
  auto doc = json::parse(answer->body, "the chat-completions response");
  if (!doc) return fail(errc::corrupt, doc.error().message);
  boost::system::error_code not_there;
  const boost::json::value* content = doc->find_pointer("/choices/0/message/content", not_there);
  if (!content || !content->is_string())
    return fail(errc::corrupt, "the chat-completions response has no choices[0].message.content string");
  auto f = parse_answer(content->as_string(), options);
  if (!f) return f.error();
  f->backend = "llm";
  f->detail = fmt::format("llm {} at {}", config.model, config.base_url);
  return f;
}

BreakerConfig ForecasterOptions::default_llm_breaker() {
  BreakerConfig c;
  c.failure_rate_threshold.reset();
  c.consecutive_failures = 3;
  c.open_duration.base = std::chrono::minutes(5);
  c.half_open_successes_to_close = 1;
  return c;
}

Forecaster::Forecaster(const Clock& clock, ForecasterOptions options) : options_(std::move(options)) {
  if (options_.llm) {
    if (auto v = options_.llm->validate(); !v) throw Exception(v.error());
    breaker_ = std::make_unique<CircuitBreaker>("forecast-llm", options_.llm_breaker, clock);
  }
}

Forecaster::~Forecaster() = default;

Result<Forecast> Forecaster::forecast(std::span<const double> history, const Options& options) {
  // The statistical forecast first: it checks the input and is the fallback.
  auto statistical = forecast::forecast(history, options);
  if (!statistical) return statistical.error();
  if (!breaker_) {
    statistical->why = "no LLM backend is configured; " + statistical->why;
    return statistical;
  }
  // The LLM gets the same checked series, its gaps filled as asked (prepare() succeeded above).
  const auto prepared = internal::prepare(history, options).value();
  auto llm = breaker_->execute(
      [&]() -> Result<Forecast> { return llm_forecast(*options_.llm, prepared.y, options, statistical->seasonality.period); });
  if (!llm) {
    detail::logf(LogLevel::warn, "forecast", "LLM backend failed, using {}: {}", to_string(statistical->method), llm.error().what());
    statistical->why = fmt::format("the LLM backend failed ({}: {}); fell back to {}", llm.error().name(), llm.error().what(),
                                   to_string(statistical->method));

    return statistical;
  }
  llm->method = statistical->method;
  llm->seasonality = statistical->seasonality;
  llm->observations = statistical->observations;
  llm->notes = statistical->notes;
  llm->in_sample_rmse = statistical->in_sample_rmse;
  llm->why = fmt::format("the LLM backend ({}) answered and its forecast passed validation", options_.llm->model);
  return llm;
}

}  // namespace automation::forecast
