#pragma once
/// Statistical forecasting of one series: naive and seasonal naive, linear trend, exponential
/// smoothing (SES, Holt, damped Holt, Holt-Winters additive and multiplicative), Theta (standard and
/// optimised), an automatic choice and a combination, each with prediction intervals at any levels.
/// Thread-safety: pure functions; safe to call from any thread. Nothing is injected.
#include <automation/core/error.hpp>
#include <boost/json/object.hpp>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace automation::forecast {

enum class Method {
  automatic,                    ///< the combination; with fewer than 4 values SES, with 1 naive (reported as "auto")
  combination,                  ///< the mean of Theta, optimised Theta and damped Holt
  naive,                        ///< the last value
  seasonal_naive,               ///< the value one season ago
  linear,                       ///< least-squares linear trend
  ses,                          ///< simple exponential smoothing
  holt,                         ///< Holt's linear trend
  damped,                       ///< Holt's damped trend
  holt_winters_additive,        ///< Holt-Winters with additive seasonality
  holt_winters_multiplicative,  ///< Holt-Winters with multiplicative seasonality
  theta,                        ///< the standard Theta method (theta = 2)
  optimised_theta,              ///< Theta with the theta coefficient fitted
  ets,                          ///< SES, Holt or damped Holt, whichever has the least AICc
};

/// Stable names: "auto", "combination", "naive", "snaive", "linear", "ses", "holt", "damped",
/// "hw_additive", "hw_multiplicative", "theta", "otm", "ets".
std::string_view to_string(Method m) noexcept;
/// Inverse of to_string.
Result<Method> parse_method(std::string_view name);
/// Every method, in the order above.
std::span<const Method> all_methods() noexcept;

/// What to do with missing values (NaN) in the input.
enum class Gaps { reject, interpolate };

struct Options {
  std::size_t horizon = 30;
  Method method = Method::automatic;
  /// The seasonal period (12 for monthly data, 7 for daily data with a weekly cycle); 0 detects it
  /// (the lag in 2..max_detected_period, at most n/3, where the first differences correlate most)
  /// and tests it; 1 means no seasonality.
  std::size_t period = 0;
  std::size_t max_detected_period = 24;
  /// Interval levels in percent, each in (0, 100).
  std::vector<double> levels{80.0, 95.0};
  Gaps gaps = Gaps::reject;
};

/// The seasonality found in a series and why it was or was not used.
struct Seasonality {
  std::size_t period = 1;  ///< 1 when not seasonal
  bool seasonal = false;
  bool multiplicative = true;   ///< how the indices apply (additive when the series has values <= 0)
  double acf = 0.0;             ///< autocorrelation at the period
  double threshold = 0.0;       ///< the 90 % significance bound it was tested against
  std::vector<double> indices;  ///< one per position in the season (empty when not seasonal)
  std::string reason;
};

struct Interval {
  double level = 95.0;
  std::vector<double> lower;
  std::vector<double> upper;
};

struct Forecast {
  Method method = Method::automatic;    ///< the statistical method (the fallback when backend is "llm")
  std::string backend = "statistical";  ///< "statistical" or "llm" (see Forecaster)
  std::string why;                      ///< why this backend and method were used
  std::string detail;                   ///< e.g. "mean of theta(...), otm(...), damped(...) on seasonally adjusted data"
  std::vector<double> mean;
  std::vector<Interval> intervals;  ///< one per requested level, in the order requested
  Seasonality seasonality;
  std::vector<std::string> notes;  ///< fallbacks and input repairs, in plain words
  double in_sample_rmse = 0.0;     ///< one-step-ahead errors of the statistical method on the history
  std::size_t observations = 0;
};

/// Forecasts `history` (oldest first) `options.horizon` steps ahead.
/// Errors (invalid_argument, naming the index or option): an empty history, a horizon of 0, a
/// level outside (0, 100), a NaN or infinity with Gaps::reject. Short or constant series fall back
/// to simpler methods and say so in `notes`.
Result<Forecast> forecast(std::span<const double> history, const Options& options);

/// The seasonality test used by forecast(): the 90 % autocorrelation test of the classical
/// decomposition (as in the Theta method), for a given period > 1, or detected when period == 0.
Seasonality detect_seasonality(std::span<const double> history, std::size_t period, std::size_t max_period = 24);

/// The forecast as one JSON object (the CLI's --json and the HTTP API): method, detail, observations,
/// seasonality, notes, in_sample_rmse and predictions, one per step: step, date (when `dates` has
/// one per step), value, confidence with lower and upper (the widest level), and every interval.
boost::json::object to_json(const Forecast& forecast, std::span<const std::string> dates = {});
/// The inverse of to_json (dates are not kept): a stored forecast read back. errc::corrupt naming
/// the field when the document is not one to_json() wrote.
Result<Forecast> forecast_from_json(const boost::json::value& document);

/// A plain sentence about a forecast and the number behind it.
struct Insight {
  std::string kind;  ///< "trend", "seasonality", "certainty" or "change"
  std::string text;
  double value = 0.0;  ///< trend and change: percent; seasonality: the period; certainty: +-percent
};

/// Insights on a forecast of `metric` made from `history`: the direction and size of the trend,
/// the seasonality, how sure it is, and (given the previous forecast) what changed since then.
/// Missing values (NaN) in `history` are skipped.
std::vector<Insight> insights(const Forecast& forecast, std::span<const double> history, std::string_view metric,
                              const Forecast* previous = nullptr);

/// Accuracy measures with the M4 competition's definitions over the first min(|actual|, |mean|,
/// |interval|) steps. `insample` gives the scale of MASE and MSIS (the mean absolute seasonal
/// difference at lag `period`, or at lag 1 when the history is not longer than the period); MASE
/// and MSIS are NaN when that scale is zero (a constant or one-value history).
struct Accuracy {
  double smape = 0.0;
  double mase = 0.0;
  double msis = 0.0;      ///< of the interval passed to accuracy(); 0 without one
  double coverage = 0.0;  ///< fraction of actuals inside that interval
};
Accuracy accuracy(std::span<const double> insample, std::span<const double> actual, std::span<const double> mean, std::size_t period,
                  const Interval* interval = nullptr);

}  // namespace automation::forecast
