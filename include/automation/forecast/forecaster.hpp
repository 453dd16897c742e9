#pragma once
/// Forecaster: forecasts from an optional LLM backend (an OpenAI-compatible chat-completions
/// endpoint, behind a circuit breaker) with the statistical methods as the fallback, recording in
/// every forecast which backend produced it and why.
/// Thread-safety: forecast() may be called from several threads (the breaker is thread-safe; each
/// call makes its own HTTP request). Needs a Clock (for the breaker) injected.
#include <automation/core/clock.hpp>
#include <automation/core/config.hpp>
#include <automation/forecast/forecast.hpp>
#include <automation/resilience/circuit_breaker.hpp>

#include <memory>
#include <optional>
#include <string>

namespace automation::forecast {

using resilience::BreakerConfig;
using resilience::CircuitBreaker;

/// Where and how to reach the LLM backend: the configuration's settings (base_url such as
/// "https://api.openai.com/v1", to which "/chat/completions" is appended; model; api_key, sent as
/// "Authorization: Bearer ..." and may be empty for local servers; timeout; ca_file, extra trusted
/// CA certificates in PEM for HTTPS) and how much history to send.
struct LlmConfig : LlmSettings {
  std::size_t max_points = 1000;  ///< only the most recent values are sent

  /// From the configuration's llm section (keys llm.*, variables AUTOMATION_LLM_*), with
  /// OPENAI_API_KEY from `env` when no key is set and OPENAI_BASE_URL when no base URL is set but a
  /// model is. nullopt when no base URL results; errc::config when the result is not usable.
  static Result<std::optional<LlmConfig>> from_config(const Config& config, const Environment& env);
  Result<void> validate() const;
};

/// Asks the LLM for a forecast and validates the answer: a JSON object {"forecast": [...]} with
/// exactly `options.horizon` entries, each {"value", "lower_L", "upper_L"} for every level L, all
/// finite numbers, lower <= value <= upper and wider levels enclosing narrower ones.
/// errc::invalid_argument for a bad URL or CA file, errc::unavailable / timeout for transport
/// failures and HTTP errors, errc::corrupt for an answer
/// that fails validation (the message says which entry and why).
Result<Forecast> llm_forecast(const LlmConfig& config, std::span<const double> history, const Options& options, std::size_t period);

struct ForecasterOptions {
  std::optional<LlmConfig> llm;
  /// The LLM backend's breaker: by default opens after 3 consecutive failures for 5 minutes.
  BreakerConfig llm_breaker = default_llm_breaker();
  static BreakerConfig default_llm_breaker();
};

class Forecaster {
 public:
  /// Throws automation::Exception (errc::config) when options.llm does not validate.
  explicit Forecaster(const Clock& clock, ForecasterOptions options = {});
  ~Forecaster();
  Forecaster(const Forecaster&) = delete;
  Forecaster& operator=(const Forecaster&) = delete;

  /// The statistical forecast of `options.method`, or the LLM's when one is configured, its breaker
  /// admits the call and the answer validates. Forecast::backend is "llm" or "statistical" and
  /// Forecast::why says why (including the LLM's error when it fell back). Input errors are
  /// reported before any call to the LLM.
  Result<Forecast> forecast(std::span<const double> history, const Options& options);

  bool llm_enabled() const noexcept { return breaker_ != nullptr; }
  /// The LLM backend's breaker (nullptr without an LLM backend).
  CircuitBreaker* llm_breaker() noexcept { return breaker_.get(); }

 private:
  ForecasterOptions options_;
  std::unique_ptr<CircuitBreaker> breaker_;
};

}  // namespace automation::forecast
