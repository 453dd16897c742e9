#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/metrics/report.hpp>

#include "detail/clean_text.hpp"

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <optional>
#include <utility>

namespace automation::metrics {

namespace bj = boost::json;
using namespace std::chrono;
using detail::clean_text;

namespace {

// ---- formatting --------------------------------------------------------------------------------

std::string grouped(std::string digits) {
  const bool neg = !digits.empty() && digits[0] == '-';
  std::string out;
  const std::size_t start = neg ? 1 : 0;
  const std::size_t n = digits.size() - start;
  for (std::size_t i = 0; i < n; ++i) {
    if (i && (n - i) % 3 == 0) out += ',';
    out += digits[start + i];
  }
  return neg ? "-" + out : out;
}

std::string count_text(double v) { return grouped(fmt::format("{:.0f}", v)); }

std::string money_text(double v) {
  auto s = fmt::format("{:.2f}", v);
  const auto dot = s.find('.');
  return grouped(s.substr(0, dot)) + s.substr(dot);
}

std::string rate_text(double v) { return fmt::format("{:.2f} %", 100 * v); }

std::string ms_text(double v) { return fmt::format("{:.1f} ms", v); }

enum class Unit { count, money, rate, ms };

std::string value_text(double v, Unit u) {
  switch (u) {
    case Unit::count:
      return count_text(v);
    case Unit::money:
      return money_text(v);
    case Unit::rate:
      return rate_text(v);
    case Unit::ms:
      return ms_text(v);
  }
  return fmt::format("{}", v);
}

// "+12.5 %" (relative), "+1.20 pp" for rates, "new" from zero, "no change", "" when unknown.
std::string change_text(const Change* c, Unit u) {
  if (!c) return "";
  if (c->absolute == 0) return "no change";
  if (u == Unit::rate) return fmt::format("{:+.2f} pp", 100 * c->absolute);
  if (c->relative) return fmt::format("{:+.1f} %", 100 * *c->relative);
  return "new";
}

struct Headline {
  std::string label, figure;
  double value;
  Unit unit;
};

std::vector<Headline> headlines(const Rollup& r) {
  const auto& u = r.usage;
  const auto& v = r.revenue;
  std::vector<Headline> h{
      {"Events", "usage.events", static_cast<double>(u.events), Unit::count},
      {"Unique users", "usage.unique_users", static_cast<double>(u.unique_users), Unit::count},
      {"Errors", "usage.errors", static_cast<double>(u.errors), Unit::count},
      {"Error rate", "usage.error_rate", u.error_rate, Unit::rate},
      {"Duration p95", "usage.duration.p95_ms", u.duration.p95_ms, Unit::ms},
      {"Revenue", "revenue.total", v.total_revenue, Unit::money},
      {"New subscribers", "revenue.new_subscribers", static_cast<double>(v.new_subscribers), Unit::count},
      {"Active users", "revenue.active_users", static_cast<double>(v.active_users), Unit::count},
      {"Churned", "revenue.churn_count", static_cast<double>(v.churn_count), Unit::count},
  };
  if (v.churn_rate) h.push_back({"Churn rate", "revenue.churn_rate", *v.churn_rate, Unit::rate});
  if (v.revenue_per_active_user)
    h.push_back({"Revenue per active user", "revenue.per_active_user", *v.revenue_per_active_user, Unit::money});
  return h;
}

std::string previous_text(const Change* c, Unit u) { return c ? value_text(c->previous, u) : ""; }

std::string short_date(year_month_day d) { return fmt::format("{:02}-{:02}", unsigned(d.month()), unsigned(d.day())); }

// ---- HTML and SVG ------------------------------------------------------------------------------

std::string esc(std::string_view raw) {
  const auto s = clean_text(raw);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// A step of 1, 2 or 5 times a power of ten giving about `ticks` intervals up to `max`.
double nice_step(double max, int ticks) {
  if (!(max > 0)) return 1;
  const double raw = max / ticks;
  const double p = std::pow(10.0, std::floor(std::log10(raw)));
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (raw <= m * p) return m * p;
  return 10 * p;
}

std::string axis_text(double v, Unit u) {
  if (u == Unit::rate) return fmt::format("{:g} %", 100 * v);
  if (std::abs(v) >= 1e6) return fmt::format("{:g}M", v / 1e6);
  if (std::abs(v) >= 1e4) return fmt::format("{:g}k", v / 1e3);
  return fmt::format("{:g}", v);
}

// A line chart of one daily series; missing values break the line.
std::string line_chart(std::string_view title, const std::vector<DayFigures>& days, const std::vector<std::optional<double>>& values,
                       Unit unit, std::string_view css_class) {
  constexpr double W = 720, H = 240, L = 64, R = 16, T = 32, B = 40;
  const double pw = W - L - R, ph = H - T - B;
  double hi = 0, lo = 0;
  for (const auto& v : values)
    if (v) {
      hi = std::max(hi, *v);
      lo = std::min(lo, *v);
    }
  const double step = nice_step(std::max(hi - lo, hi > 0 ? hi : 1.0), 4);
  const double top = std::max(step, std::ceil(hi / step) * step);
  const double bottom = std::floor(lo / step) * step;
  const auto n = values.size();
  auto x = [&](std::size_t i) { return n <= 1 ? L + pw / 2 : L + pw * static_cast<double>(i) / static_cast<double>(n - 1); };
  auto y = [&](double v) { return T + ph * (top - v) / (top - bottom); };
  std::string s = fmt::format(
      "<svg class=\"chart {}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">\n"
      "<title>{}</title>\n<text class=\"title\" x=\"{}\" y=\"18\">{}</text>\n",
      css_class, W, H, esc(title), esc(title), L, esc(title));
  for (double t = bottom; t <= top + step / 2; t += step) {
    s += fmt::format("<line class=\"grid\" x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\"/>\n", L, W - R, y(t), y(t));
    s +=
        fmt::format("<text class=\"axis\" x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", L - 6, y(t) + 4, esc(axis_text(t, unit)));
  }
  const std::size_t every = std::max<std::size_t>(1, (n + 7) / 8);
  for (std::size_t i = 0; i < n; i += every)
    s += fmt::format("<text class=\"axis\" x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", x(i), H - B + 18,
                     short_date(days[i].date));
  // One polyline per run of present values.
  std::string points;
  auto flush = [&] {
    if (!points.empty()) s += fmt::format("<polyline class=\"line\" points=\"{}\"/>\n", points);
    points.clear();
  };
  for (std::size_t i = 0; i < n; ++i) {
    if (!values[i]) {
      flush();
      continue;
    }
    if (!points.empty()) points += ' ';
    points += fmt::format("{:.1f},{:.1f}", x(i), y(*values[i]));
  }
  flush();
  for (std::size_t i = 0; i < n; ++i)
    if (values[i])
      s += fmt::format("<circle class=\"dot\" cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"3\"><title>{}: {}</title></circle>\n", x(i), y(*values[i]),
                       format_date(days[i].date), esc(value_text(*values[i], unit)));
  s += "</svg>\n";
  return s;
}

std::string truncated(std::string_view s, std::size_t max) {
  if (s.size() <= max) return std::string(s);
  std::size_t cut = max - 1;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;  // not inside a UTF-8 sequence
  return std::string(s.substr(0, cut)) + "\xE2\x80\xA6";                         // …
}

// Horizontal bars, largest first as given.
std::string bar_chart(std::string_view title, const std::vector<std::pair<std::string, double>>& items, Unit unit,
                      std::string_view css_class) {
  constexpr double W = 720, L = 180, R = 110, T = 32, row = 24;
  const double H = T + row * static_cast<double>(items.size()) + 8;
  double hi = 0;
  for (const auto& [_, v] : items) hi = std::max(hi, v);
  std::string s = fmt::format(
      "<svg class=\"chart {}\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" role=\"img\" aria-label=\"{}\">\n"
      "<title>{}</title>\n<text class=\"title\" x=\"8\" y=\"18\">{}</text>\n",
      css_class, W, H, esc(title), esc(title), esc(title));
  for (std::size_t i = 0; i < items.size(); ++i) {
    const auto& [name, v] = items[i];
    const double y = T + row * static_cast<double>(i);
    const double w = hi > 0 ? (W - L - R) * std::max(0.0, v) / hi : 0;
    s +=
        fmt::format("<text class=\"label\" x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", L - 8, y + 15, esc(truncated(name, 26)));
    s += fmt::format("<rect class=\"bar\" x=\"{}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{}\"><title>{}: {}</title></rect>\n", L, y + 3, w,
                     row - 6, esc(name), esc(value_text(v, unit)));
    s += fmt::format("<text class=\"value\" x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", L + w + 6, y + 15, esc(value_text(v, unit)));
  }
  s += "</svg>\n";
  return s;
}

constexpr std::size_t kMaxBars = 12;

std::vector<std::pair<std::string, double>> top_items(std::vector<std::pair<std::string, double>> all) {
  if (all.size() <= kMaxBars) return all;
  double rest = 0;
  for (std::size_t i = kMaxBars - 1; i < all.size(); ++i) rest += all[i].second;
  const auto others = all.size() - (kMaxBars - 1);
  all.resize(kMaxBars - 1);
  all.emplace_back(fmt::format("{} others", others), rest);
  return all;
}

constexpr std::string_view kCss = R"css(
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;padding:16px;color:#1d2430;background:#f6f7f9;line-height:1.4}
main{max-width:760px;margin:0 auto}
h1{font-size:1.5em;margin:.2em 0}h2{font-size:1.15em;margin:1.4em 0 .4em}
.meta{color:#5a6473;font-size:.9em}
table{border-collapse:collapse;width:100%;background:#fff;font-size:.92em}
th,td{padding:4px 8px;border-bottom:1px solid #e3e6ea;text-align:right}
th:first-child,td:first-child{text-align:left}
.up{color:#17803d}.down{color:#b42318}
ul.insights{padding-left:1.2em}li.warning{color:#b42318}li.notice{color:#8a5a00}
svg.chart{width:100%;height:auto;background:#fff;margin:6px 0}
svg .grid{stroke:#e3e6ea;stroke-width:1}
svg .axis,svg .label,svg .value{font-size:11px;fill:#5a6473}
svg .title{font-size:13px;font-weight:600;fill:#1d2430}
svg .line{fill:none;stroke:#2563eb;stroke-width:2}
svg.revenue .line{stroke:#17803d}svg.errors .line{stroke:#b42318}
svg .dot{fill:#2563eb}svg.revenue .dot{fill:#17803d}svg.errors .dot{fill:#b42318}
svg .bar{fill:#2563eb}svg.plans .bar{fill:#17803d}
@media (max-width:600px){body{padding:8px}th,td{padding:3px 4px}}
)css";

std::string change_class(const Change* c, bool higher_is_better) {
  if (!c || c->absolute == 0) return "";
  return (c->absolute > 0) == higher_is_better ? " class=\"up\"" : " class=\"down\"";
}

bool higher_is_better(std::string_view figure) {
  return !(figure.find("error") != std::string_view::npos || figure.find("churn") != std::string_view::npos ||
           figure.find("duration") != std::string_view::npos);
}

std::string render_html(const Report& r) {
  const auto& u = r.rollup.usage;
  const auto& v = r.rollup.revenue;
  std::string s = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n";
  s += "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n";
  s += fmt::format("<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n<main>\n", esc(r.title()), kCss);
  s += fmt::format("<h1>{}</h1>\n<p class=\"meta\">{} to {} ({}), generated {}</p>\n", esc(r.title()), format_date(r.period.first),
                   format_date(r.period.last), esc(r.time_zone), format_timestamp(r.generated));

  s += "<h2>Summary</h2>\n<table "
       "class=\"summary\">\n<thead><tr><th>Figure</th><th>Value</th><th>Previous</th><th>Change</th></tr></thead>\n<tbody>\n";
  for (const auto& h : headlines(r.rollup)) {
    const auto* c = find_change(r.rollup, h.figure);
    s += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td{}>{}</td></tr>\n", esc(h.label), esc(value_text(h.value, h.unit)),
                     esc(previous_text(c, h.unit)), change_class(c, higher_is_better(h.figure)), esc(change_text(c, h.unit)));
  }
  s += "</tbody>\n</table>\n";

  s += "<h2>Insights</h2>\n";
  if (r.insights.empty()) {
    s += "<p>No insights for this period.</p>\n";
  } else {
    s += "<ul class=\"insights\">\n";
    for (const auto& i : r.insights) s += fmt::format("<li class=\"{}\">{}</li>\n", to_string(i.severity), esc(i.sentence));
    s += "</ul>\n";
  }

  s += "<h2>Trends</h2>\n";
  std::vector<std::optional<double>> events, errors, revenue;
  bool any_revenue = false;
  for (const auto& d : r.days) {
    events.emplace_back(static_cast<double>(d.events));
    errors.emplace_back(d.events ? std::optional<double>(d.error_rate) : std::nullopt);
    revenue.push_back(d.has_revenue ? std::optional<double>(d.revenue) : std::nullopt);
    any_revenue |= d.has_revenue;
  }
  s += line_chart("Events per day", r.days, events, Unit::count, "events");
  s += line_chart("Error rate per day", r.days, errors, Unit::rate, "errors");
  if (any_revenue) s += line_chart("Revenue per day", r.days, revenue, Unit::money, "revenue");

  if (!u.features.empty()) {
    std::vector<std::pair<std::string, double>> items;
    for (const auto& f : u.features) items.emplace_back(f.feature, static_cast<double>(f.events));
    s += "<h2>Features</h2>\n";
    s += bar_chart("Events by feature", top_items(std::move(items)), Unit::count, "features");
    s += "<table class=\"features\">\n<thead><tr><th>Feature</th><th>Events</th><th>Change</th><th>Errors</th><th>Error "
         "rate</th><th>p95</th></tr></thead>\n<tbody>\n";
    for (const auto& f : u.features) {
      const auto* c = find_change(r.rollup, "usage.feature." + f.feature + ".events");
      s += fmt::format("<tr><td>{}</td><td>{}</td><td{}>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", esc(f.feature),
                       count_text(static_cast<double>(f.events)), change_class(c, true), esc(change_text(c, Unit::count)),
                       count_text(static_cast<double>(f.errors)), rate_text(f.error_rate),
                       f.duration.count ? ms_text(f.duration.p95_ms) : "");
    }
    s += "</tbody>\n</table>\n";
  }
  if (!v.plans.empty()) {
    std::vector<std::pair<std::string, double>> items;
    for (const auto& p : v.plans) items.emplace_back(p.plan, p.revenue);
    s += "<h2>Plans</h2>\n";
    s += bar_chart("Revenue by plan", top_items(std::move(items)), Unit::money, "plans");
    s += "<table "
         "class=\"plans\">\n<thead><tr><th>Plan</th><th>Revenue</th><th>Change</th><th>New</th><th>Active</th><th>Churned</th></tr></"
         "thead>\n<tbody>\n";
    for (const auto& p : v.plans) {
      const auto* c = find_change(r.rollup, "revenue.plan." + p.plan + ".revenue");
      s +=
          fmt::format("<tr><td>{}</td><td>{}</td><td{}>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n", esc(p.plan), money_text(p.revenue),
                      change_class(c, true), esc(change_text(c, Unit::money)), count_text(static_cast<double>(p.new_subscribers)),
                      count_text(static_cast<double>(p.active_users)), count_text(static_cast<double>(p.churn_count)));
    }
    s += "</tbody>\n</table>\n";
  }
  s += "</main>\n</body>\n</html>\n";
  return s;
}

// ---- Markdown ----------------------------------------------------------------------------------

// A table cell: pipes escaped, line breaks flattened.
std::string cell(std::string_view text) {
  std::string out;
  for (char c : text) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n' || c == '\r') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

std::string render_markdown(const Report& r) {
  const auto& u = r.rollup.usage;
  const auto& v = r.rollup.revenue;
  std::string s = fmt::format("# {}\n\n{} to {} ({}), generated {}\n\n", cell(r.title()), format_date(r.period.first),
                              format_date(r.period.last), cell(r.time_zone), format_timestamp(r.generated));
  s += "## Summary\n\n| Figure | Value | Previous | Change |\n|---|---:|---:|---:|\n";
  for (const auto& h : headlines(r.rollup)) {
    const auto* c = find_change(r.rollup, h.figure);
    s += fmt::format("| {} | {} | {} | {} |\n", h.label, value_text(h.value, h.unit), previous_text(c, h.unit), change_text(c, h.unit));
  }
  s += "\n## Insights\n\n";
  if (r.insights.empty()) s += "No insights for this period.\n";
  for (const auto& i : r.insights) s += fmt::format("- **{}**: {}\n", to_string(i.severity), i.sentence);
  if (!u.features.empty()) {
    s += "\n## Features\n\n| Feature | Events | Change | Errors | Error rate | p95 |\n|---|---:|---:|---:|---:|---:|\n";
    for (const auto& f : u.features) {
      const auto* c = find_change(r.rollup, "usage.feature." + f.feature + ".events");
      s += fmt::format("| {} | {} | {} | {} | {} | {} |\n", cell(f.feature), count_text(static_cast<double>(f.events)),
                       change_text(c, Unit::count), count_text(static_cast<double>(f.errors)), rate_text(f.error_rate),
                       f.duration.count ? ms_text(f.duration.p95_ms) : "");
    }
  }
  if (!v.plans.empty()) {
    s += "\n## Plans\n\n| Plan | Revenue | Change | New | Active | Churned |\n|---|---:|---:|---:|---:|---:|\n";
    for (const auto& p : v.plans) {
      const auto* c = find_change(r.rollup, "revenue.plan." + p.plan + ".revenue");
      s += fmt::format("| {} | {} | {} | {} | {} | {} |\n", cell(p.plan), money_text(p.revenue), change_text(c, Unit::money),
                       count_text(static_cast<double>(p.new_subscribers)), count_text(static_cast<double>(p.active_users)),
                       count_text(static_cast<double>(p.churn_count)));
    }
  }
  s += "\n## Days\n\n| Date | Events | Users | Errors | Error rate | Revenue |\n|---|---:|---:|---:|---:|---:|\n";
  for (const auto& d : r.days)
    s += fmt::format("| {} | {} | {} | {} | {} | {} |\n", format_date(d.date), count_text(static_cast<double>(d.events)),
                     count_text(static_cast<double>(d.unique_users)), count_text(static_cast<double>(d.errors)), rate_text(d.error_rate),
                     d.has_revenue ? money_text(d.revenue) : "");
  return s;
}

}  // namespace

// ---- Report ------------------------------------------------------------------------------------

int report_days(const Period& period) { return std::max(period.days(), 14); }

namespace {

// How a report of each granularity is named: its key prefix and its title.
std::pair<std::string_view, std::string_view> naming(Granularity g) {
  switch (g) {
    case Granularity::day:
      return {"daily-", "Daily report "};
    case Granularity::week:
      return {"weekly-", "Weekly report "};
    case Granularity::month:
      return {"monthly-", "Monthly report "};
    case Granularity::range:
      break;
  }
  return {"range-", "Report "};
}

}  // namespace

std::string Report::title() const { return std::string(naming(period.granularity).second) + period.key(); }

std::string Report::key() const { return std::string(naming(period.granularity).first) + period.key(); }

std::string_view to_string(ReportFormat f) noexcept {
  switch (f) {
    case ReportFormat::json:
      return "json";
    case ReportFormat::markdown:
      return "markdown";
    case ReportFormat::html:
      return "html";
  }
  return "json";
}

Result<ReportFormat> parse_report_format(std::string_view text) {
  if (text == "json") return ReportFormat::json;
  if (text == "md" || text == "markdown") return ReportFormat::markdown;
  if (text == "html") return ReportFormat::html;
  return fail(errc::invalid_argument, fmt::format("unknown report format \"{}\" (expected json, md or html)", text));
}

std::string_view file_extension(ReportFormat f) noexcept {
  switch (f) {
    case ReportFormat::json:
      return "json";
    case ReportFormat::markdown:
      return "md";
    case ReportFormat::html:
      return "html";
  }
  return "txt";
}

std::string_view media_type(ReportFormat f) noexcept {
  switch (f) {
    case ReportFormat::json:
      return "application/json";
    case ReportFormat::markdown:
      return "text/markdown; charset=utf-8";
    case ReportFormat::html:
      return "text/html; charset=utf-8";
  }
  return "application/octet-stream";
}

bj::object to_json(const Report& r) {
  bj::array days;
  for (const auto& d : r.days) {
    bj::object o{{"date", format_date(d.date)},
                 {"events", d.events},
                 {"unique_users", d.unique_users},
                 {"errors", d.errors},
                 {"error_rate", d.error_rate}};
    if (d.has_revenue) {
      o["revenue"] = d.revenue;
      o["new_subscribers"] = d.new_subscribers;
      o["active_users"] = d.active_users;
      o["churn_count"] = d.churn_count;
    } else {
      o["revenue"] = nullptr;
    }
    days.push_back(std::move(o));
  }
  bj::array insights;
  for (const auto& i : r.insights) insights.push_back(to_json(i));
  return bj::object{{"report", r.key()},
                    {"title", r.title()},
                    {"granularity", to_string(r.period.granularity)},
                    {"period", r.period.key()},
                    {"first", format_date(r.period.first)},
                    {"last", format_date(r.period.last)},
                    {"time_zone", r.time_zone},
                    {"generated", format_timestamp(r.generated)},
                    {"rollup", to_json(r.rollup)},
                    {"days", std::move(days)},
                    {"insights", std::move(insights)}};
}

std::string render(const Report& report, ReportFormat format) {
  switch (format) {
    case ReportFormat::json:
      return json::pretty(to_json(report)) + "\n";
    case ReportFormat::markdown:
      return render_markdown(report);
    case ReportFormat::html:
      return render_html(report);
  }
  return {};
}

// Slack's mrkdwn treats <...> as links and mentions (<!channel>); names must not make any.
static std::string slack_text(std::string_view s) {
  std::string out;
  for (char c : clean_text(s)) {
    if (c == '&') {
      out += "&amp;";
    } else if (c == '<') {
      out += "&lt;";
    } else if (c == '>') {
      out += "&gt;";
    } else {
      out += c;
    }
  }
  return out;
}

std::string render_summary(const Report& r) {
  std::string s = fmt::format("*{}* ({} to {}, {})\n", r.title(), format_date(r.period.first), format_date(r.period.last), r.time_zone);
  for (const auto& h : headlines(r.rollup)) {
    const auto* c = find_change(r.rollup, h.figure);
    const auto change = change_text(c, h.unit);
    s += fmt::format("• {}: {}{}\n", h.label, value_text(h.value, h.unit), change.empty() ? "" : " (" + change + ")");
  }
  for (const auto& i : r.insights) s += fmt::format("> {}\n", slack_text(i.sentence));
  return s;
}

}  // namespace automation::metrics
