#pragma once
// The fitted models behind forecast(). Each model is fitted once to a series x (already
// deseasonalised where that applies) and can then forecast from any origin t with its fitted
// parameters: path(n, h) is the forecast, path(t < n, k) gives the rolling-origin errors the
// prediction intervals are built from. These are in-sample errors: the parameters (and the
// regression line of linear and Theta) were fitted to all of x.
#include <automation/forecast/forecast.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace automation::forecast::internal {

/// The history checked against `options` and, with Gaps::interpolate, its gaps filled (a note says
/// how many). Shared by forecast() and the Forecaster, which sends the same series to the LLM.
struct Prepared {
  std::vector<double> y;
  std::vector<std::string> notes;
};
Result<Prepared> prepare(std::span<const double> history, const Options& options);

class Model {
 public:
  virtual ~Model() = default;
  /// Forecasts x[origin .. origin+h) into out[0..h).
  virtual void path(std::size_t origin, std::size_t h, double* out) const = 0;
  virtual std::string name() const = 0;
};

enum class Trend { none, additive, damped };

std::unique_ptr<Model> fit_naive(std::span<const double> x);
std::unique_ptr<Model> fit_seasonal_naive(std::span<const double> x, std::size_t m);
std::unique_ptr<Model> fit_linear(std::span<const double> x);
/// SES (Trend::none), Holt (additive) or damped Holt; smoothing parameters and initial states are
/// fitted by least squares (Nelder-Mead).
std::unique_ptr<Model> fit_smoothing(std::span<const double> x, Trend trend);
/// Holt-Winters with additive or multiplicative seasonality of period m (needs 2 full seasons).
std::unique_ptr<Model> fit_holt_winters(std::span<const double> x, std::size_t m, bool multiplicative);
/// Theta: the linear trend line weighted 1 - 1/theta, SES of the theta line weighted 1/theta.
/// theta <= 0 fits theta on a grid by one-step least squares.
std::unique_ptr<Model> fit_theta(std::span<const double> x, double theta);
/// The mean of several fitted models.
std::unique_ptr<Model> combine(std::vector<std::unique_ptr<Model>> members);

/// ETS: the smoothing model (SES, Holt or damped Holt) with the least AICc, the information
/// criterion R's ets() uses (Gaussian likelihood of the least-squares fit).
std::unique_ptr<Model> fit_ets(std::span<const double> x);

/// Minimises f over a box with Nelder-Mead; x0 must be inside [lo, hi].
using Objective = double (*)(const double* p, const void* ctx);
std::vector<double> minimise(Objective f, const void* ctx, std::vector<double> x0, const std::vector<double>& lo,
                             const std::vector<double>& hi, const std::vector<double>& step, int max_evaluations);

}  // namespace automation::forecast::internal
