#include "forecast/models.hpp"

#include <fmt/format.h>
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace automation::forecast::internal {
namespace {

constexpr double kHuge = std::numeric_limits<double>::max() / 4;

struct Line {
  double a = 0.0;  // value at t = 0
  double b = 0.0;  // slope per step
};

Line least_squares(std::span<const double> x) {
  const auto n = static_cast<double>(x.size());
  if (x.size() < 2) return {x.empty() ? 0.0 : x[0], 0.0};
  const double tbar = (n - 1) / 2;
  double xbar = 0, sxy = 0, sxx = 0;
  for (double v : x) xbar += v;
  xbar /= n;
  for (std::size_t t = 0; t < x.size(); ++t) {
    const double dt = static_cast<double>(t) - tbar;
    sxy += dt * (x[t] - xbar);
    sxx += dt * dt;
  }
  const double b = sxx > 0 ? sxy / sxx : 0.0;
  return {xbar - b * tbar, b};
}

double scale_of(std::span<const double> x) {
  double s = 0;
  for (double v : x) s += std::abs(v);
  s /= static_cast<double>(std::max<std::size_t>(x.size(), 1));
  return s > 0 ? s : 1.0;
}

// ---- naive, seasonal naive, linear ------------------------------------------------------------

class Naive final : public Model {
 public:
  explicit Naive(std::span<const double> x) : x_(x.begin(), x.end()) {}
  void path(std::size_t origin, std::size_t h, double* out) const override {
    const double last = x_[origin == 0 ? 0 : origin - 1];
    std::fill(out, out + h, last);
  }
  std::string name() const override { return "naive"; }

 private:
  std::vector<double> x_;
};

class SeasonalNaive final : public Model {
 public:
  SeasonalNaive(std::span<const double> x, std::size_t m) : x_(x.begin(), x.end()), m_(m) {}
  void path(std::size_t origin, std::size_t h, double* out) const override {
    for (std::size_t k = 0; k < h; ++k) out[k] = origin >= m_ ? x_[origin - m_ + k % m_] : x_[origin == 0 ? 0 : origin - 1];
  }
  std::string name() const override { return "snaive"; }

 private:
  std::vector<double> x_;
  std::size_t m_;
};

class Linear final : public Model {
 public:
  explicit Linear(std::span<const double> x) : line_(least_squares(x)) {}
  void path(std::size_t origin, std::size_t h, double* out) const override {
    for (std::size_t k = 0; k < h; ++k) out[k] = line_.a + line_.b * static_cast<double>(origin + k);
  }
  std::string name() const override { return "linear"; }

 private:
  Line line_;
};

// ---- exponential smoothing (SES, Holt, damped) -------------------------------------------------

struct SmoothingFilter {
  std::span<const double> x;
  Trend trend;
};

// p = alpha, beta/alpha, phi, l0, b0 (unused ones ignored). Returns the SSE of one-step errors and,
// for each of level/slope given, the states after each observation.
double run_smoothing(const SmoothingFilter& f, const double* p, double* level, double* slope) {
  const double alpha = p[0];
  const double beta = f.trend == Trend::none ? 0.0 : p[0] * p[1];
  const double phi = f.trend == Trend::damped ? p[2] : 1.0;
  double l = p[3], b = f.trend == Trend::none ? 0.0 : p[4];
  double sse = 0;
  if (level) level[0] = l;
  if (slope) slope[0] = b;
  for (std::size_t t = 0; t < f.x.size(); ++t) {
    const double fc = l + phi * b;
    const double e = f.x[t] - fc;
    sse += e * e;
    l = fc + alpha * e;
    b = phi * b + beta * e;
    if (level) level[t + 1] = l;
    if (slope) slope[t + 1] = b;
  }
  return sse;
}

double smoothing_objective(const double* p, const void* ctx) {
  return run_smoothing(*static_cast<const SmoothingFilter*>(ctx), p, nullptr, nullptr);
}

class Smoothing final : public Model {
 public:
  Smoothing(std::span<const double> x, Trend trend) : trend_(trend) {
    const auto n = x.size();
    const double scale = scale_of(x);
    const Line start = least_squares(x.first(std::min<std::size_t>(x.size(), 10)));
    // alpha, beta as a share of alpha, phi, l0, b0
    std::vector<double> p0{0.3, 0.1, 0.95, trend == Trend::none ? x[0] : start.a, trend == Trend::none ? 0.0 : start.b};
    std::vector<double> lo{1e-4, 1e-4, 0.8, -kHuge, -kHuge};
    std::vector<double> hi{0.9999, 0.9999, 0.98, kHuge, kHuge};
    std::vector<double> step{0.1, 0.1, 0.05, 0.1 * scale, 0.02 * scale};
    if (trend != Trend::damped) lo[2] = hi[2] = p0[2] = 1.0, step[2] = 0;
    if (trend == Trend::none) lo[1] = hi[1] = lo[4] = hi[4] = 0.0, p0[1] = 0.0, step[1] = step[4] = 0;
    SmoothingFilter f{x, trend};
    p_ = minimise(&smoothing_objective, &f, p0, lo, hi, step, 600);
    level_.resize(n + 1);
    slope_.resize(n + 1);
    sse_ = run_smoothing(f, p_.data(), level_.data(), slope_.data());
  }
  /// AICc of the least-squares fit (Gaussian likelihood); parameters: the smoothing parameters,
  /// the initial states and the variance.
  double aicc() const {
    const auto n = static_cast<double>(level_.size() - 1);
    const auto k = static_cast<double>((trend_ == Trend::none ? 2 : trend_ == Trend::additive ? 4 : 5) + 1);
    const double mse = std::max(sse_ / n, 1e-300);
    const double aic = n * std::log(mse) + 2 * k;
    return n - k - 1 > 0 ? aic + 2 * k * (k + 1) / (n - k - 1) : kHuge;
  }
  void path(std::size_t origin, std::size_t h, double* out) const override {
    const double phi = trend_ == Trend::damped ? p_[2] : 1.0;
    double damp = 0, power = 1;
    for (std::size_t k = 0; k < h; ++k) {
      power *= phi;
      damp += power;
      out[k] = level_[origin] + damp * slope_[origin];
    }
  }
  std::string name() const override {
    switch (trend_) {
      case Trend::none:
        return fmt::format("ses(alpha={:.3f})", p_[0]);
      case Trend::additive:
        return fmt::format("holt(alpha={:.3f}, beta={:.3f})", p_[0], p_[0] * p_[1]);
      case Trend::damped:
        break;
    }
    return fmt::format("damped(alpha={:.3f}, beta={:.3f}, phi={:.3f})", p_[0], p_[0] * p_[1], p_[2]);
  }

 private:
  Trend trend_;
  std::vector<double> p_;
  std::vector<double> level_, slope_;
  double sse_ = 0;  // one-step squared error of the fit
};

// ---- Holt-Winters ------------------------------------------------------------------------------

struct HwFilter {
  std::span<const double> x;
  std::size_t m;
  bool multiplicative;
  double l0, b0;
  const std::vector<double>* s0;
  std::vector<double>& scratch;  // n + m seasonal slots for the evaluations that keep no states
};

// p = alpha, beta, gamma (classic Holt-Winters recursions). season has n + m slots: season[t] is
// the index used at time t.
double run_hw(const HwFilter& f, const double* p, double* level, double* slope, double* season) {
  const double alpha = p[0], beta = p[1], gamma = p[2];  // each in (0, 1) in this classic form
  double l = f.l0, b = f.b0;
  if (!season) season = f.scratch.data();
  std::copy(f.s0->begin(), f.s0->end(), season);
  if (level) level[0] = l, slope[0] = b;
  double sse = 0;
  for (std::size_t t = 0; t < f.x.size(); ++t) {
    const double s = season[t];
    const double fc = f.multiplicative ? (l + b) * s : l + b + s;
    const double e = f.x[t] - fc;
    sse += e * e;
    const double l_new = f.multiplicative ? alpha * f.x[t] / s + (1 - alpha) * (l + b) : alpha * (f.x[t] - s) + (1 - alpha) * (l + b);
    b = beta * (l_new - l) + (1 - beta) * b;
    l = l_new;
    season[t + f.m] = f.multiplicative ? (l != 0 ? gamma * f.x[t] / l + (1 - gamma) * s : s) : gamma * (f.x[t] - l) + (1 - gamma) * s;
    if (level) level[t + 1] = l, slope[t + 1] = b;
    if (!std::isfinite(sse)) return kHuge;
  }
  return sse;
}

double hw_objective(const double* p, const void* ctx) { return run_hw(*static_cast<const HwFilter*>(ctx), p, nullptr, nullptr, nullptr); }

class HoltWinters final : public Model {
 public:
  HoltWinters(std::span<const double> x, std::size_t m, bool multiplicative) : m_(m), multiplicative_(multiplicative) {
    const auto n = x.size();
    // Initial states from the first two seasons: level and slope from their means, indices from
    // each season's values against its own mean.
    double mean1 = 0, mean2 = 0;
    for (std::size_t i = 0; i < m; ++i) mean1 += x[i], mean2 += x[m + i];
    mean1 /= static_cast<double>(m);
    mean2 /= static_cast<double>(m);
    std::vector<double> s0(m);
    for (std::size_t i = 0; i < m; ++i) {
      s0[i] = multiplicative ? (x[i] / mean1 + x[m + i] / mean2) / 2 : ((x[i] - mean1) + (x[m + i] - mean2)) / 2;
    }
    // mean1 is the level in the middle of the first season, (m - 1) / 2 steps after its start; l0 is
    // the level one step before the first value.
    const double slope = (mean2 - mean1) / static_cast<double>(m);
    std::vector<double> scratch(n + m);
    HwFilter f{x, m, multiplicative, mean1 - (static_cast<double>(m) + 1) / 2 * slope, slope, &s0, scratch};
    p_ = minimise(&hw_objective, &f, {0.2, 0.05, 0.1}, {1e-4, 1e-4, 1e-4}, {0.9999, 0.9999, 0.9999}, {0.1, 0.05, 0.1}, 600);
    level_.resize(n + 1);
    slope_.resize(n + 1);
    season_.resize(n + m);
    run_hw(f, p_.data(), level_.data(), slope_.data(), season_.data());
  }
  void path(std::size_t origin, std::size_t h, double* out) const override {
    for (std::size_t k = 0; k < h; ++k) {
      const double trend = level_[origin] + static_cast<double>(k + 1) * slope_[origin];
      const double s = season_[origin + k % m_];
      out[k] = multiplicative_ ? trend * s : trend + s;
    }
  }
  std::string name() const override {
    return fmt::format("hw_{}(alpha={:.3f}, beta={:.3f}, gamma={:.3f})", multiplicative_ ? "multiplicative" : "additive", p_[0], p_[1],
                       p_[2]);
  }

 private:
  std::size_t m_;
  bool multiplicative_;
  std::vector<double> p_;
  std::vector<double> level_, slope_, season_;
};

// ---- Theta -------------------------------------------------------------------------------------

class Theta final : public Model {
 public:
  Theta(std::span<const double> x, double theta) : line_(least_squares(x)) {
    if (theta > 0) {
      fit(x, theta);
      return;
    }
    // Optimised Theta: the coefficient with the least one-step squared error (the first on a tie).
    double best = kHuge;
    Fit kept;
    for (double th : {1.0, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0}) {
      if (const double sse = fit(x, th); sse < best) best = sse, kept = fit_;
    }
    if (best < kHuge)
      fit_ = std::move(kept);
    else
      fit(x, 2.0);  // every fit diverged
    optimised_ = true;
  }
  void path(std::size_t origin, std::size_t h, double* out) const override {
    for (std::size_t k = 0; k < h; ++k)
      out[k] = fit_.level[origin] / fit_.theta + (1 - 1 / fit_.theta) * (line_.a + line_.b * static_cast<double>(origin + k));
  }
  std::string name() const override {
    return fmt::format("{}(theta={:.2f}, alpha={:.3f})", optimised_ ? "otm" : "theta", fit_.theta, fit_.alpha);
  }

 private:
  struct Fit {
    double theta = 2, alpha = 0;
    std::vector<double> level;
  };
  // Fits SES to the theta line of coefficient `theta`; returns the one-step squared error on x.
  double fit(std::span<const double> x, double theta) {
    const auto n = x.size();
    fit_.theta = theta;
    std::vector<double> z(n);
    for (std::size_t t = 0; t < n; ++t) z[t] = theta * x[t] + (1 - theta) * (line_.a + line_.b * static_cast<double>(t));
    SmoothingFilter f{z, Trend::none};
    const double scale = scale_of(z);
    auto p = minimise(&smoothing_objective, &f, {0.3, 0, 1, z[0], 0}, {1e-4, 0, 1, -kHuge, 0}, {0.9999, 0, 1, kHuge, 0},
                      {0.1, 0, 0, 0.1 * scale, 0}, 400);
    fit_.alpha = p[0];
    fit_.level.resize(n + 1);
    run_smoothing(f, p.data(), fit_.level.data(), nullptr);
    double sse = 0, fc = 0;
    for (std::size_t t = 0; t < n; ++t) {
      path(t, 1, &fc);
      sse += (x[t] - fc) * (x[t] - fc);
    }
    return sse;
  }

  Line line_;
  Fit fit_;
  bool optimised_ = false;
};

// ---- combination -------------------------------------------------------------------------------

class Combination final : public Model {
 public:
  explicit Combination(std::vector<std::unique_ptr<Model>> members) : members_(std::move(members)) {}
  void path(std::size_t origin, std::size_t h, double* out) const override {
    std::fill(out, out + h, 0.0);
    std::vector<double> one(h);
    for (const auto& m : members_) {
      m->path(origin, h, one.data());
      for (std::size_t k = 0; k < h; ++k) out[k] += one[k] / static_cast<double>(members_.size());
    }
  }
  std::string name() const override {
    std::string s = "mean of ";
    for (std::size_t i = 0; i < members_.size(); ++i) s += (i ? ", " : "") + members_[i]->name();
    return s;
  }

 private:
  std::vector<std::unique_ptr<Model>> members_;
};

}  // namespace

std::unique_ptr<Model> fit_naive(std::span<const double> x) { return std::make_unique<Naive>(x); }
std::unique_ptr<Model> fit_seasonal_naive(std::span<const double> x, std::size_t m) { return std::make_unique<SeasonalNaive>(x, m); }
std::unique_ptr<Model> fit_linear(std::span<const double> x) { return std::make_unique<Linear>(x); }
std::unique_ptr<Model> fit_smoothing(std::span<const double> x, Trend trend) { return std::make_unique<Smoothing>(x, trend); }
std::unique_ptr<Model> fit_holt_winters(std::span<const double> x, std::size_t m, bool multiplicative) {
  return std::make_unique<HoltWinters>(x, m, multiplicative);
}
std::unique_ptr<Model> fit_theta(std::span<const double> x, double theta) { return std::make_unique<Theta>(x, theta); }
std::unique_ptr<Model> combine(std::vector<std::unique_ptr<Model>> members) { return std::make_unique<Combination>(std::move(members)); }

std::unique_ptr<Model> fit_ets(std::span<const double> x) {
  std::unique_ptr<Smoothing> best;
  double best_aicc = 0;
  for (Trend trend : {Trend::none, Trend::additive, Trend::damped}) {
    auto candidate = std::make_unique<Smoothing>(x, trend);
    const double score = candidate->aicc();
    if (!best || score < best_aicc) best = std::move(candidate), best_aicc = score;
  }
  return best;
}

std::vector<double> minimise(Objective f, const void* ctx, std::vector<double> x0, const std::vector<double>& lo,
                             const std::vector<double>& hi, const std::vector<double>& step, int max_evaluations) {
  // Nelder-Mead over the free coordinates (step != 0), each point clamped into the box.
  std::vector<std::size_t> free;
  for (std::size_t i = 0; i < x0.size(); ++i)
    if (step[i] != 0) free.push_back(i);
  const std::size_t d = free.size();
  if (d == 0) return x0;
  auto clamp = [&](std::vector<double>& p) {
    for (std::size_t i : free) p[i] = std::clamp(p[i], lo[i], hi[i]);
  };
  std::vector<std::vector<double>> simplex(d + 1, x0);
  std::vector<double> value(d + 1);
  for (std::size_t j = 0; j < d; ++j) {
    auto& p = simplex[j + 1];
    const std::size_t i = free[j];
    p[i] += step[i];
    if (p[i] > hi[i]) p[i] = x0[i] - step[i];
    clamp(p);
  }
  int evaluations = 0;
  auto eval = [&](const std::vector<double>& p) {
    ++evaluations;
    const double v = f(p.data(), ctx);
    return std::isfinite(v) ? v : kHuge;
  };
  for (std::size_t j = 0; j <= d; ++j) value[j] = eval(simplex[j]);
  std::vector<std::size_t> order(d + 1);
  std::vector<double> centroid(x0.size()), trial(x0.size()), trial2(x0.size());
  while (evaluations < max_evaluations) {
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return value[a] < value[b]; });
    const std::size_t best = order.front(), worst = order.back(), second = order[d - 1];
    if (std::abs(value[worst] - value[best]) <= 1e-10 * (std::abs(value[best]) + 1e-12)) break;
    centroid = simplex[best];
    for (std::size_t i : free) {
      double s = 0;
      for (std::size_t j = 0; j <= d; ++j)
        if (j != worst) s += simplex[j][i];
      centroid[i] = s / static_cast<double>(d);
    }
    auto towards = [&](std::vector<double>& out, double coef) {
      out = centroid;
      for (std::size_t i : free) out[i] = centroid[i] + coef * (simplex[worst][i] - centroid[i]);
      clamp(out);
    };
    towards(trial, -1.0);  // reflection
    const double fr = eval(trial);
    if (fr < value[best]) {
      towards(trial2, -2.0);  // expansion
      const double fe = eval(trial2);
      if (fe < fr)
        simplex[worst] = trial2, value[worst] = fe;
      else
        simplex[worst] = trial, value[worst] = fr;
    } else if (fr < value[second]) {
      simplex[worst] = trial, value[worst] = fr;
    } else {
      towards(trial2, fr < value[worst] ? -0.5 : 0.5);  // outside or inside contraction
      const double fc = eval(trial2);
      if (fc < std::min(fr, value[worst])) {
        simplex[worst] = trial2, value[worst] = fc;
      } else {
        for (std::size_t j = 0; j <= d; ++j) {  // shrink towards the best
          if (j == best) continue;
          for (std::size_t i : free) simplex[j][i] = simplex[best][i] + 0.5 * (simplex[j][i] - simplex[best][i]);
          value[j] = eval(simplex[j]);
        }
      }
    }
  }
  std::size_t best = 0;
  for (std::size_t j = 1; j <= d; ++j)
    if (value[j] < value[best]) best = j;
  return simplex[best];
}

}  // namespace automation::forecast::internal
