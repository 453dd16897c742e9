#include <automation/forecast/forecast.hpp>

#include "detail/names.hpp"
#include "forecast/models.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <array>
#include <boost/json.hpp>
#include <cmath>
#include <limits>
#include <numbers>
#include <numeric>
#include <optional>

namespace automation::forecast {
namespace {

using internal::Model;
using internal::Trend;

constexpr std::array kMethods{Method::automatic,
                              Method::combination,
                              Method::naive,
                              Method::seasonal_naive,
                              Method::linear,
                              Method::ses,
                              Method::holt,
                              Method::damped,
                              Method::holt_winters_additive,
                              Method::holt_winters_multiplicative,
                              Method::theta,
                              Method::optimised_theta,
                              Method::ets};

std::vector<double> acf(std::span<const double> x, std::size_t max_lag) {
  const auto n = x.size();
  const double mean = std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(n);
  double c0 = 0;
  for (double v : x) c0 += (v - mean) * (v - mean);
  std::vector<double> r(max_lag + 1, 0.0);
  if (c0 <= 0) return r;
  for (std::size_t k = 0; k <= max_lag && k < n; ++k) {
    double c = 0;
    for (std::size_t t = k; t < n; ++t) c += (x[t] - mean) * (x[t - k] - mean);
    r[k] = c / c0;
  }
  return r;
}

// The widest interval (the first of equal levels), or nullptr when there is none.
const Interval* widest_interval(const Forecast& f) {
  const Interval* widest = nullptr;
  for (const auto& iv : f.intervals)
    if (!widest || iv.level > widest->level) widest = &iv;
  return widest;
}

// Classical decomposition: the seasonal indices of period m from the ratios (or differences) of the
// series to its centred moving average, normalised to average 1 (or 0).
std::vector<double> seasonal_indices(std::span<const double> y, std::size_t m, bool multiplicative) {
  const std::size_t n = y.size();
  std::vector<double> sum(m, 0.0);
  std::vector<std::size_t> count(m, 0);
  const std::size_t half = m / 2;
  for (std::size_t t = half; t + half < n; ++t) {
    // An odd period averages m values; an even one the m + 1 around t, the two ends weighted 1/2.
    double cma = m % 2 == 1 ? y[t - half] + y[t + half] : 0.5 * (y[t - half] + y[t + half]);
    for (std::size_t j = t - half + 1; j < t + half; ++j) cma += y[j];
    cma /= static_cast<double>(m);
    const double r = multiplicative ? y[t] / cma : y[t] - cma;
    sum[t % m] += r;
    ++count[t % m];
  }
  std::vector<double> idx(m);
  for (std::size_t i = 0; i < m; ++i) idx[i] = count[i] ? sum[i] / static_cast<double>(count[i]) : (multiplicative ? 1.0 : 0.0);
  const double avg = std::accumulate(idx.begin(), idx.end(), 0.0) / static_cast<double>(m);
  for (double& v : idx) v = multiplicative ? v / avg : v - avg;
  return idx;
}

// The season's kind (multiplicative when every value is positive) and, given two seasons of data,
// its indices, for s.period.
void fill_indices(Seasonality& s, std::span<const double> y) {
  s.multiplicative = *std::min_element(y.begin(), y.end()) > 0;
  if (y.size() >= 2 * s.period) s.indices = seasonal_indices(y, s.period, s.multiplicative);
}

// Inverse of the standard normal distribution function (Acklam's rational approximation, refined
// by one Halley step; relative error below 1e-12).
double normal_quantile(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,  -2.759285104469687e+02,
                                 1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                 -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00};
  double x;
  if (p < 0.02425) {
    const double q = std::sqrt(-2 * std::log(p));
    x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else if (p > 1 - 0.02425) {
    const double q = std::sqrt(-2 * std::log(1 - p));
    x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) / ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  } else {
    const double q = p - 0.5, r = q * q;
    x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
        (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
  }
  const double e = 0.5 * std::erfc(-x / std::sqrt(2.0)) - p;
  const double u = e * std::sqrt(2 * std::numbers::pi) * std::exp(x * x / 2);
  return x - u / (1 + x * u / 2);
}

}  // namespace

Result<internal::Prepared> internal::prepare(std::span<const double> history, const Options& options) {
  if (history.empty()) return fail(errc::invalid_argument, "the history is empty: nothing to forecast from");
  if (options.horizon == 0) return fail(errc::invalid_argument, "horizon: must be at least 1");
  if (options.period == 0 && options.max_detected_period < 2)
    return fail(errc::invalid_argument, "max_detected_period: must be at least 2 to detect a period");
  for (double level : options.levels)
    if (!(level > 0 && level < 100)) return fail(errc::invalid_argument, fmt::format("levels: {} is not a percentage in (0, 100)", level));
  internal::Prepared p;
  p.y.assign(history.begin(), history.end());
  std::size_t missing = 0;
  for (std::size_t i = 0; i < p.y.size(); ++i) {
    if (std::isinf(p.y[i])) return fail(errc::invalid_argument, fmt::format("value {} (index {}) is infinite", p.y[i], i));
    if (!std::isnan(p.y[i])) continue;
    if (options.gaps == Gaps::reject)
      return fail(errc::invalid_argument, fmt::format("value at index {} is missing (NaN); fill the gap or ask for interpolation", i));
    ++missing;
  }
  if (missing) {
    if (missing == p.y.size()) return fail(errc::invalid_argument, "every value is missing (NaN)");
    // Linear interpolation between the neighbours; the ends repeat the nearest value.
    std::size_t prev = p.y.size();
    for (std::size_t i = 0; i < p.y.size(); ++i) {
      if (std::isnan(p.y[i])) continue;
      if (prev == p.y.size())
        std::fill(p.y.begin(), p.y.begin() + static_cast<std::ptrdiff_t>(i), p.y[i]);
      else
        for (std::size_t j = prev + 1; j < i; ++j)
          p.y[j] = p.y[prev] + (p.y[i] - p.y[prev]) * static_cast<double>(j - prev) / static_cast<double>(i - prev);
      prev = i;
    }
    std::fill(p.y.begin() + static_cast<std::ptrdiff_t>(prev) + 1, p.y.end(), p.y[prev]);
    p.notes.push_back(fmt::format("{} missing value(s) filled by linear interpolation", missing));
  }
  return p;
}

namespace {

struct Fitted {
  std::unique_ptr<Model> model;
  Method method;
};

bool is_constant(std::span<const double> y) {
  return std::all_of(y.begin(), y.end(), [&](double v) { return v == y[0]; });
}

// Fits the requested method to x (deseasonalised unless the method models the season itself),
// falling back to a simpler one when the series is too short, and saying so.
Fitted fit(Method method, std::span<const double> x, std::size_t m, std::vector<std::string>& notes) {
  const std::size_t n = x.size();
  auto fallback = [&](Method to, std::string why) {
    notes.push_back(fmt::format("{} needs {}; used {}", to_string(method), why, to_string(to)));
    method = to;
  };
  if (n < 2 && method != Method::naive) fallback(Method::naive, "at least 2 values");
  if (method == Method::holt_winters_additive || method == Method::holt_winters_multiplicative) {
    if (m < 2)
      fallback(Method::damped, "a seasonal period above 1");
    else if (n < 2 * m + 2)
      fallback(Method::damped, fmt::format("at least {} values (two seasons and two more)", 2 * m + 2));
    else if (method == Method::holt_winters_multiplicative && *std::min_element(x.begin(), x.end()) <= 0)
      fallback(Method::holt_winters_additive, "values above zero");
  }
  if (method == Method::seasonal_naive && m < 2) fallback(Method::naive, "a seasonal period above 1");
  if (method == Method::seasonal_naive && n < m) fallback(Method::naive, "a full season");
  const bool trended = method == Method::holt || method == Method::damped || method == Method::automatic || method == Method::combination ||
                       method == Method::ets;
  if (trended && n < 4) fallback(Method::ses, "at least 4 values");
  if (method != Method::naive && method != Method::seasonal_naive && n >= 2 && is_constant(x)) {
    notes.push_back("the series is constant; used naive");
    method = Method::naive;
  }
  switch (method) {
    case Method::naive:
      return {internal::fit_naive(x), method};
    case Method::seasonal_naive:
      return {internal::fit_seasonal_naive(x, m), method};
    case Method::linear:
      return {internal::fit_linear(x), method};
    case Method::ses:
      return {internal::fit_smoothing(x, Trend::none), method};
    case Method::holt:
      return {internal::fit_smoothing(x, Trend::additive), method};
    case Method::damped:
      return {internal::fit_smoothing(x, Trend::damped), method};
    case Method::holt_winters_additive:
      return {internal::fit_holt_winters(x, m, false), method};
    case Method::holt_winters_multiplicative:
      return {internal::fit_holt_winters(x, m, true), method};
    case Method::theta:
      return {internal::fit_theta(x, 2.0), method};
    case Method::optimised_theta:
      return {internal::fit_theta(x, 0.0), method};
    case Method::ets:
      return {internal::fit_ets(x), method};
    case Method::automatic:
    case Method::combination: {
      std::vector<std::unique_ptr<Model>> members;
      members.push_back(internal::fit_theta(x, 2.0));
      members.push_back(internal::fit_theta(x, 0.0));
      members.push_back(internal::fit_smoothing(x, Trend::damped));
      return {internal::combine(std::move(members)), method};
    }
  }
  return {internal::fit_naive(x), Method::naive};
}

bool models_season(Method m) {
  return m == Method::seasonal_naive || m == Method::holt_winters_additive || m == Method::holt_winters_multiplicative;
}

}  // namespace

std::string_view to_string(Method m) noexcept {
  switch (m) {
    case Method::automatic:
      return "auto";
    case Method::combination:
      return "combination";
    case Method::naive:
      return "naive";
    case Method::seasonal_naive:
      return "snaive";
    case Method::linear:
      return "linear";
    case Method::ses:
      return "ses";
    case Method::holt:
      return "holt";
    case Method::damped:
      return "damped";
    case Method::holt_winters_additive:
      return "hw_additive";
    case Method::holt_winters_multiplicative:
      return "hw_multiplicative";
    case Method::theta:
      return "theta";
    case Method::optimised_theta:
      return "otm";
    case Method::ets:
      return "ets";
  }
  return "auto";
}

std::span<const Method> all_methods() noexcept { return kMethods; }

Result<Method> parse_method(std::string_view name) { return detail::parse_name(name, std::span<const Method>(kMethods), "method"); }

Seasonality detect_seasonality(std::span<const double> y, std::size_t period, std::size_t max_period) {
  Seasonality s;
  const std::size_t n = y.size();
  if (period == 1) {
    s.reason = "no seasonal period (period 1)";
    return s;
  }
  if (period == 0) {
    // Pick the lag with the highest autocorrelation of the first differences (which removes a
    // trend that would make every lag look significant), preferring the shortest of near-equal lags.
    if (n < 3 * 2 + 1) {
      s.reason = "too short to detect a seasonal period";
      return s;
    }
    std::vector<double> diff(n - 1);
    for (std::size_t t = 1; t < n; ++t) diff[t - 1] = y[t] - y[t - 1];
    const std::size_t top = std::min(max_period, n / 3);
    const auto r = acf(diff, top);
    double best = 0;
    for (std::size_t k = 2; k <= top; ++k)
      if (r[k] > best + 0.05) best = r[k], period = k;
    if (period == 0) {
      s.reason = fmt::format("no seasonal period found among lags 2..{}", top);
      return s;
    }
  }
  s.period = period;
  if (n < 3 * period) {
    s.period = 1;
    s.reason = fmt::format("period {} needs at least {} values for the seasonal test, have {}", period, 3 * period, n);
    return s;
  }
  const auto r = acf(y, period);
  double cum = 1;
  for (std::size_t k = 1; k < period; ++k) cum += 2 * r[k] * r[k];
  s.acf = r[period];
  s.threshold = 1.645 * std::sqrt(cum / static_cast<double>(n));
  s.seasonal = std::abs(s.acf) > s.threshold;
  if (!s.seasonal) {
    s.reason = fmt::format("autocorrelation {:.3f} at lag {} is within the 90 % bound {:.3f}: not seasonal", s.acf, period, s.threshold);
    s.period = 1;
    return s;
  }
  fill_indices(s, y);
  s.reason = fmt::format("autocorrelation {:.3f} at lag {} exceeds the 90 % bound {:.3f}: {} seasonality", s.acf, period, s.threshold,
                         s.multiplicative ? "multiplicative" : "additive");
  return s;
}

Result<Forecast> forecast(std::span<const double> history, const Options& options) {
  auto prepared = internal::prepare(history, options);
  if (!prepared) return prepared.error();
  const std::vector<double>& y = prepared->y;
  const std::size_t n = y.size(), h = options.horizon;
  Forecast out;
  out.observations = n;
  out.notes = std::move(prepared->notes);

  // Seasonality: methods that model the season take the period as given; the others work on the
  // seasonally adjusted series when the season is significant.
  const bool seasonal_method = models_season(options.method);
  if (seasonal_method && options.period > 1) {
    auto& s = out.seasonality;
    s.period = options.period;
    s.seasonal = true;
    fill_indices(s, y);
    s.reason = fmt::format("period {} given to {}, which models the season itself", s.period, to_string(options.method));
  } else {
    out.seasonality = detect_seasonality(y, options.period, options.max_detected_period);
  }
  const std::size_t m = out.seasonality.period;
  const auto& idx = out.seasonality.indices;
  const bool adjust = !seasonal_method && out.seasonality.seasonal;
  std::vector<double> x = y;
  if (adjust)
    for (std::size_t t = 0; t < n; ++t) x[t] = out.seasonality.multiplicative ? y[t] / idx[t % m] : y[t] - idx[t % m];
  auto reseason = [&](std::size_t t, double v) {
    if (!adjust) return v;
    return out.seasonality.multiplicative ? v * idx[t % m] : v + idx[t % m];
  };

  Fitted fitted = fit(options.method, x, m, out.notes);
  out.mean.resize(h);
  fitted.model->path(n, h, out.mean.data());
  if (!std::all_of(out.mean.begin(), out.mean.end(), [](double v) { return std::isfinite(v); })) {
    // A fit that diverged (possible for Holt-Winters on wild data) must not reach the caller.
    out.notes.push_back(fmt::format("{} gave a non-finite forecast; used naive", to_string(fitted.method)));
    fitted = {internal::fit_naive(x), Method::naive};
    fitted.model->path(n, h, out.mean.data());
  }
  for (std::size_t k = 0; k < h; ++k) out.mean[k] = reseason(n + k, out.mean[k]);
  out.method = fitted.method;
  out.detail = fitted.model->name() + (adjust ? " on seasonally adjusted data" : "");
  out.why = fitted.method == options.method
                ? fmt::format("{} was asked for", to_string(options.method))
                : fmt::format("{} was asked for; {} ran instead (see notes)", to_string(options.method), to_string(fitted.method));

  // Rolling-origin errors of the fitted forecaster on its own history, per horizon step: the
  // spread the intervals are built from. Logarithmic when everything is positive (errors of
  // positive series grow with their level), absolute otherwise.
  bool log_space = std::all_of(y.begin(), y.end(), [](double v) { return v > 0; }) &&
                   std::all_of(out.mean.begin(), out.mean.end(), [](double v) { return v > 0; });
  const std::size_t first = std::min(n - 1, std::max<std::size_t>(2, n / 4));
  std::vector<double> sq(h, 0.0);
  std::vector<std::size_t> count(h, 0);
  std::vector<double> path(h);
  // Squared errors per step from the origins at or after `first`; false when a logarithm is
  // impossible (a forecast <= 0), so that the caller retries in absolute terms.
  auto collect = [&](bool log) {
    std::fill(sq.begin(), sq.end(), 0.0);
    std::fill(count.begin(), count.end(), 0);
    for (std::size_t t = first; t < n; ++t) {
      const std::size_t steps = std::min(h, n - t);
      fitted.model->path(t, steps, path.data());
      for (std::size_t k = 0; k < steps; ++k) {
        const double f = reseason(t + k, path[k]);
        if (log && f <= 0) return false;
        const double e = log ? std::log(y[t + k] / f) : y[t + k] - f;
        sq[k] += e * e;
        ++count[k];
      }
    }
    return true;
  };
  if (!collect(log_space)) {
    log_space = false;
    collect(false);
  }
  double one_step_sq = 0;
  for (std::size_t t = 1; t < n; ++t) {
    fitted.model->path(t, 1, path.data());
    const double e = y[t] - reseason(t, path[0]);
    one_step_sq += e * e;
  }
  out.in_sample_rmse = n > 1 ? std::sqrt(one_step_sq / static_cast<double>(n - 1)) : 0.0;
  // sigma_k = c * k^p fitted to the per-step RMSEs (weighted by their counts) so that steps with
  // few or no errors still get a spread that grows with the horizon.
  double sw = 0, sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t k = 0; k < h; ++k) {
    if (count[k] < 2 || sq[k] <= 0) continue;
    const double w = static_cast<double>(count[k]);
    const double lx = std::log(static_cast<double>(k + 1)), ly = 0.5 * std::log(sq[k] / w);
    sw += w, sx += w * lx, sy += w * ly, sxx += w * lx * lx, sxy += w * lx * ly;
  }
  double c = 0, p = 0.5;
  if (sw > 0) {
    const double var = sxx / sw - (sx / sw) * (sx / sw);
    p = var > 1e-12 ? (sxy / sw - (sx / sw) * (sy / sw)) / var : 0.5;
    p = std::clamp(p, 0.3, 1.5);
    c = std::exp(sy / sw - p * sx / sw);
  } else {
    // Too short to measure the forecaster's own errors (2 or 3 values): the spread of the changes.
    double s2 = 0;
    for (std::size_t t = 1; t < n; ++t) {
      const double d = log_space ? std::log(y[t] / y[t - 1]) : y[t] - y[t - 1];
      s2 += d * d;
    }
    c = n > 1 ? std::sqrt(s2 / static_cast<double>(n - 1)) : 0.0;
    if (c > 0) out.notes.push_back("too few values to measure the forecast's own errors; the intervals use the spread of the changes");
  }
  // In-sample errors understate out-of-sample ones (the parameters were fitted to the same data),
  // the more so the shorter the series. The factor 1 + 10/n was chosen on M3 (see docs/forecasting.md).
  const double inflation = 1.0 + 10.0 / static_cast<double>(n);
  for (double level : options.levels) {
    Interval iv;
    iv.level = level;
    const double z = normal_quantile(0.5 + level / 200);
    for (std::size_t k = 0; k < h; ++k) {
      const double sigma = c * std::pow(static_cast<double>(k + 1), p) * inflation;
      if (log_space) {
        iv.lower.push_back(out.mean[k] * std::exp(-z * sigma));
        iv.upper.push_back(out.mean[k] * std::exp(z * sigma));
      } else {
        iv.lower.push_back(out.mean[k] - z * sigma);
        iv.upper.push_back(out.mean[k] + z * sigma);
      }
    }
    out.intervals.push_back(std::move(iv));
  }
  return out;
}

boost::json::object to_json(const Forecast& f, std::span<const std::string> dates) {
  boost::json::object seasonality{{"period", f.seasonality.period},
                                  {"seasonal", f.seasonality.seasonal},
                                  {"acf", f.seasonality.acf},
                                  {"threshold", f.seasonality.threshold},
                                  {"reason", f.seasonality.reason}};
  if (f.seasonality.seasonal) {
    seasonality["multiplicative"] = f.seasonality.multiplicative;
    seasonality["indices"] = boost::json::value_from(f.seasonality.indices);
  }
  const Interval* widest = widest_interval(f);
  boost::json::array predictions;
  for (std::size_t k = 0; k < f.mean.size(); ++k) {
    boost::json::object p{{"step", k + 1}};
    if (dates.size() == f.mean.size()) p["date"] = dates[k];
    p["value"] = f.mean[k];
    if (widest) {
      p["confidence"] = widest->level;
      p["lower"] = widest->lower[k];
      p["upper"] = widest->upper[k];
    }
    boost::json::array intervals;
    for (const auto& iv : f.intervals)
      intervals.push_back(boost::json::object{{"level", iv.level}, {"lower", iv.lower[k]}, {"upper", iv.upper[k]}});
    p["intervals"] = std::move(intervals);
    predictions.push_back(std::move(p));
  }
  return {{"backend", f.backend},
          {"why", f.why},
          {"method", to_string(f.method)},
          {"detail", f.detail},
          {"horizon", f.mean.size()},
          {"observations", f.observations},
          {"seasonality", std::move(seasonality)},
          {"notes", boost::json::value_from(f.notes)},
          {"in_sample_rmse", f.in_sample_rmse},
          {"predictions", std::move(predictions)}};
}

Result<Forecast> forecast_from_json(const boost::json::value& doc) {
  auto bad = [](std::string_view what) { return fail(errc::corrupt, fmt::format("stored forecast: {}", what)); };
  const auto* o = doc.if_object();
  if (!o) return bad("not a JSON object");
  auto text = [&](std::string_view key) -> std::string {
    const auto* v = o->if_contains(key);
    return v && v->is_string() ? std::string(v->as_string()) : std::string();
  };
  auto number = [](const boost::json::value* v) -> std::optional<double> {
    if (!v || !v->is_number()) return std::nullopt;
    return v->to_number<double>();
  };
  Forecast f;
  f.backend = text("backend");
  f.why = text("why");
  f.detail = text("detail");
  auto method = parse_method(text("method"));
  if (!method) return bad(fmt::format("method: {}", method.error().message));
  f.method = *method;
  if (const auto* notes = o->if_contains("notes"); notes && notes->is_array())
    for (const auto& n : notes->as_array())
      if (n.is_string()) f.notes.emplace_back(n.as_string());
  f.in_sample_rmse = number(o->if_contains("in_sample_rmse")).value_or(0.0);
  const auto count = [](std::optional<double> v, double fallback) {
    const double x = v.value_or(fallback);
    return x >= 0 && x <= 1e12 ? static_cast<std::size_t>(x) : static_cast<std::size_t>(fallback);
  };
  f.observations = count(number(o->if_contains("observations")), 0.0);
  if (const auto* s = o->if_contains("seasonality"); s && s->is_object()) {
    const auto& so = s->as_object();
    f.seasonality.period = std::max<std::size_t>(1, count(number(so.if_contains("period")), 1.0));
    f.seasonality.seasonal = so.contains("seasonal") && so.at("seasonal").is_bool() && so.at("seasonal").as_bool();
    f.seasonality.multiplicative = so.contains("multiplicative") && so.at("multiplicative").is_bool() && so.at("multiplicative").as_bool();
    f.seasonality.acf = number(so.if_contains("acf")).value_or(0.0);
    f.seasonality.threshold = number(so.if_contains("threshold")).value_or(0.0);
    if (const auto* r = so.if_contains("reason"); r && r->is_string()) f.seasonality.reason = std::string(r->as_string());
    if (const auto* ix = so.if_contains("indices"); ix && ix->is_array())
      for (const auto& v : ix->as_array())
        if (v.is_number()) f.seasonality.indices.push_back(v.to_number<double>());
  }
  const auto* preds = o->if_contains("predictions");
  if (!preds || !preds->is_array()) return bad("no predictions");
  for (std::size_t k = 0; k < preds->as_array().size(); ++k) {
    const auto* p = preds->as_array()[k].if_object();
    const auto value = p ? number(p->if_contains("value")) : std::nullopt;
    if (!value) return bad(fmt::format("prediction {} has no value", k + 1));
    f.mean.push_back(*value);
    const auto* ivs = p->if_contains("intervals");
    if (!ivs || !ivs->is_array()) return bad(fmt::format("prediction {} has no intervals", k + 1));
    const auto& arr = ivs->as_array();
    if (k == 0) {
      for (const auto& iv : arr) {
        const auto level = iv.is_object() ? number(iv.as_object().if_contains("level")) : std::nullopt;
        if (!level) return bad("an interval without a level");
        f.intervals.push_back(Interval{*level, {}, {}});
      }
    }
    if (arr.size() != f.intervals.size())
      return bad(fmt::format("prediction {} has {} intervals, not {}", k + 1, arr.size(), f.intervals.size()));
    for (std::size_t j = 0; j < arr.size(); ++j) {
      const auto& iv = arr[j].as_object();
      // json::dump writes a non-finite bound as null: an unbounded side.
      const auto* lv = iv.if_contains("lower");
      const auto* hv = iv.if_contains("upper");
      const auto lo = lv && lv->is_null() ? std::optional<double>(-std::numeric_limits<double>::infinity()) : number(lv);
      const auto hi = hv && hv->is_null() ? std::optional<double>(std::numeric_limits<double>::infinity()) : number(hv);
      if (!lo || !hi) return bad(fmt::format("prediction {}: an interval without bounds", k + 1));
      f.intervals[j].lower.push_back(*lo);
      f.intervals[j].upper.push_back(*hi);
    }
  }
  return f;
}

std::vector<Insight> insights(const Forecast& f, std::span<const double> history, std::string_view metric, const Forecast* previous) {
  std::vector<Insight> out;
  if (f.mean.empty() || history.empty()) return out;
  const std::size_t h = f.mean.size();
  // Trend: the forecast's average against the history. For a seasonal series each step is set
  // against the same point of the cycle one season back (so a horizon that is not whole seasons is
  // not biased by where it falls in the cycle); otherwise against the last values (at most 7).
  // Missing values in the history are skipped.
  const std::size_t n = history.size();
  const bool cycle = f.seasonality.seasonal && f.seasonality.period > 1 && n >= f.seasonality.period;
  const double average = std::accumulate(f.mean.begin(), f.mean.end(), 0.0) / static_cast<double>(h);
  double base = 0, ahead = 0;
  std::size_t known = 0;
  if (cycle) {  // the steps whose point one season back is known, on both sides
    const std::size_t p = f.seasonality.period;
    for (std::size_t k = 0; k < h; ++k) {
      const double v = history[n - p + k % p];
      if (!std::isfinite(v)) continue;
      base += v;
      ahead += f.mean[k];
      ++known;
    }
    ahead = known ? ahead / static_cast<double>(known) : average;
  } else {
    for (double v : history.last(std::min<std::size_t>(n, std::min<std::size_t>(h, 7))))
      if (std::isfinite(v)) base += v, ++known;
    ahead = average;
  }
  base = known ? base / static_cast<double>(known) : 0.0;
  const double change = base != 0 ? 100 * (ahead - base) / std::abs(base) : 0.0;
  const char* direction = std::abs(change) < 1 ? "flat" : change > 0 ? "trending upward" : "trending downward";
  const auto against = cycle ? fmt::format("the same points of the last cycle of {} ({:.6g})", f.seasonality.period, base)
                             : fmt::format("the last {} value(s) ({:.6g})", std::min<std::size_t>(n, std::min<std::size_t>(h, 7)), base);
  out.push_back({"trend",
                 fmt::format("{} is {}: the forecast averages {:.6g} over the next {} steps, {:+.1f} % on {}", metric, direction, average,
                             h, change, against),
                 change});
  if (f.seasonality.seasonal && f.seasonality.indices.empty()) {
    out.push_back({"seasonality", fmt::format("{} repeats every {} steps ({})", metric, f.seasonality.period, f.seasonality.reason),
                   static_cast<double>(f.seasonality.period)});
  } else if (f.seasonality.seasonal) {
    const auto& idx = f.seasonality.indices;
    const auto top = static_cast<std::size_t>(std::max_element(idx.begin(), idx.end()) - idx.begin());
    const std::size_t position = (top + f.seasonality.period - history.size() % f.seasonality.period) % f.seasonality.period;
    out.push_back({"seasonality",
                   fmt::format("{} repeats every {} steps (autocorrelation {:.2f}); the highest point of the cycle is {} "
                               "step(s) ahead",
                               metric, f.seasonality.period, f.seasonality.acf, position + 1),
                   static_cast<double>(f.seasonality.period)});
  } else {
    out.push_back({"seasonality", fmt::format("{} shows no seasonality ({})", metric, f.seasonality.reason), 1.0});
  }
  if (const Interval* widest = widest_interval(f)) {
    const double half = (widest->upper.back() - widest->lower.back()) / 2;
    const double rel = f.mean.back() != 0 ? 100 * half / std::abs(f.mean.back()) : 0.0;
    const char* sure = rel < 10 ? "high" : rel < 30 ? "moderate" : "low";
    out.push_back({"certainty",
                   fmt::format("{} certainty: the {:g} % interval at step {} is {:.6g} to {:.6g} (+-{:.1f} % of the "
                               "forecast)",
                               sure, widest->level, h, widest->lower.back(), widest->upper.back(), rel),
                   rel});
  }
  if (previous && !previous->mean.empty()) {
    const double before = previous->mean.back(), now = f.mean.back();
    const double moved = before != 0 ? 100 * (now - before) / std::abs(before) : 0.0;
    out.push_back({"change",
                   fmt::format("since the last forecast ({}), the forecast at the end of the horizon moved {:+.1f} % "
                               "({:.6g} to {:.6g}); method now {}",
                               to_string(previous->method), moved, before, now, to_string(f.method)),
                   moved});
  }
  return out;
}

Accuracy accuracy(std::span<const double> insample, std::span<const double> actual, std::span<const double> mean, std::size_t period,
                  const Interval* interval) {
  Accuracy a;
  std::size_t h = std::min(actual.size(), mean.size());
  if (interval) h = std::min({h, interval->lower.size(), interval->upper.size()});
  if (h == 0) return a;
  const std::size_t m = period >= 1 && insample.size() > period ? period : 1;
  double scale = 0;
  for (std::size_t t = m; t < insample.size(); ++t) scale += std::abs(insample[t] - insample[t - m]);
  scale = insample.size() > m ? scale / static_cast<double>(insample.size() - m) : 0.0;
  double smape = 0, ae = 0, is = 0;
  std::size_t inside = 0;
  for (std::size_t k = 0; k < h; ++k) {
    const double denom = std::abs(actual[k]) + std::abs(mean[k]);
    smape += denom > 0 ? 2 * std::abs(actual[k] - mean[k]) / denom : 0.0;
    ae += std::abs(actual[k] - mean[k]);
    if (interval) {
      const double lo = interval->lower[k], hi = interval->upper[k];
      const double alpha = 1 - interval->level / 100;
      is += (hi - lo) + (2 / alpha) * (lo - actual[k]) * (actual[k] < lo) + (2 / alpha) * (actual[k] - hi) * (actual[k] > hi);
      inside += actual[k] >= lo && actual[k] <= hi;
    }
  }
  const auto hd = static_cast<double>(h);
  a.smape = 100 * smape / hd;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  a.mase = scale > 0 ? ae / hd / scale : nan;
  if (interval) {
    a.msis = scale > 0 ? is / hd / scale : nan;
    a.coverage = static_cast<double>(inside) / hd;
  }
  return a;
}

}  // namespace automation::forecast
