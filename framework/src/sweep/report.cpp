#include "sweep/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <map>
#include <set>

#include "files.h"
#include "sweep/manifest.h"
#include "text.h"

namespace prefopt::sweep {
namespace {

constexpr const char* kPalette[] = {"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#8B6508", "#000000"};
constexpr double kWidth = 640, kHeight = 360, kLeft = 64, kRight = 150, kTop = 36, kBottom = 48;

std::string escape(const std::string& text) {
  std::string out;
  for (const char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      default: out += c;
    }
  }
  return out;
}

std::string number(double value, int precision = 3) {
  return std::isnan(value) ? "–" : fmt::format("{:.{}f}", value, precision);
}

// About five round tick values covering [low, high].
std::vector<double> ticks(double low, double high) {
  const double span = high - low;
  const double raw = span / 5;
  const double magnitude = std::pow(10.0, std::floor(std::log10(raw)));
  double step = magnitude;
  for (const double m : {1.0, 2.0, 5.0, 10.0})
    if (m * magnitude >= raw) {
      step = m * magnitude;
      break;
    }
  std::vector<double> out;
  for (double t = std::ceil(low / step) * step; t <= high + step * 1e-9; t += step) out.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  return out;
}

struct Range {
  double low = INFINITY, high = -INFINITY;
  void add(double v) {
    if (std::isfinite(v)) low = std::min(low, v), high = std::max(high, v);
  }
  void pad() {
    if (!std::isfinite(low)) low = 0, high = 1;
    if (high - low < 1e-9) low -= 0.5, high += 0.5;
    const double margin = (high - low) * 0.05;
    low -= margin, high += margin;
  }
};

struct Series {
  std::string label;
  std::string color;
  std::vector<std::pair<double, double>> points;
  bool dashed = false;
  double opacity = 1.0;
  bool mark_last = false;
};

// An SVG plot frame: axes, ticks, labels; `x` and `y` map data to pixels.
class Plot {
 public:
  // `numeric_x`: false for a categorical x axis, labelled by the caller.
  Plot(const std::string& title, const std::string& x_label, const std::string& y_label, Range xr, Range yr,
       bool numeric_x = true)
      : xr_(xr), yr_(yr) {
    xr_.pad();
    yr_.pad();
    svg_ = fmt::format(R"svg(<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{}" viewBox="0 0 {} {}" font-family="sans-serif" font-size="11">)svg",
                       kWidth, kHeight, kWidth, kHeight);
    svg_ += fmt::format(R"svg(<text x="{}" y="20" font-size="14" font-weight="bold">{}</text>)svg", kLeft, escape(title));
    const double right = kWidth - kRight, bottom = kHeight - kBottom;
    svg_ += fmt::format(R"svg(<rect x="{}" y="{}" width="{}" height="{}" fill="none" stroke="#888"/>)svg", kLeft, kTop,
                        right - kLeft, bottom - kTop);
    for (const double t : numeric_x ? ticks(xr_.low, xr_.high) : std::vector<double>{})
      svg_ += fmt::format(R"svg(<line x1="{0}" x2="{0}" y1="{1}" y2="{2}" stroke="#ddd"/><text x="{0}" y="{3}" text-anchor="middle">{4}</text>)svg",
                          x(t), kTop, bottom, bottom + 14, fmt::format("{:g}", t));
    for (const double t : ticks(yr_.low, yr_.high))
      svg_ += fmt::format(R"svg(<line x1="{1}" x2="{2}" y1="{0}" y2="{0}" stroke="#ddd"/><text x="{3}" y="{4}" text-anchor="end">{5}</text>)svg",
                          y(t), kLeft, right, kLeft - 4, y(t) + 4, fmt::format("{:g}", t));
    svg_ += fmt::format(R"svg(<text x="{}" y="{}" text-anchor="middle">{}</text>)svg", (kLeft + right) / 2, kHeight - 12,
                        escape(x_label));
    svg_ += fmt::format(R"svg(<text transform="translate(16,{}) rotate(-90)" text-anchor="middle">{}</text>)svg",
                        (kTop + bottom) / 2, escape(y_label));
  }

  double x(double v) const { return kLeft + (v - xr_.low) / (xr_.high - xr_.low) * (kWidth - kRight - kLeft); }
  double y(double v) const { return kHeight - kBottom - (v - yr_.low) / (yr_.high - yr_.low) * (kHeight - kBottom - kTop); }

  void add(const Series& s) {
    std::string points;
    for (const auto& [px, py] : s.points)
      if (std::isfinite(px) && std::isfinite(py)) points += fmt::format("{:.1f},{:.1f} ", x(px), y(py));
    if (points.empty()) return;
    svg_ += fmt::format(R"svg(<polyline points="{}" fill="none" stroke="{}" stroke-width="1.5" stroke-opacity="{}"{}/>)svg",
                        points, s.color, s.opacity, s.dashed ? R"svg( stroke-dasharray="5,3")svg" : "");
    if (s.mark_last) {
      const auto& [px, py] = s.points.back();
      svg_ += fmt::format(R"svg(<circle cx="{:.1f}" cy="{:.1f}" r="3" fill="{}"/>)svg", x(px), y(py), s.color);
    }
  }
  void raw(const std::string& element) { svg_ += element; }
  void legend(const std::vector<std::pair<std::string, std::string>>& entries, bool with_dashes = false) {
    double line = kTop + 8;
    for (const auto& [label, color] : entries) {
      svg_ += fmt::format(R"svg(<line x1="{0}" x2="{1}" y1="{2}" y2="{2}" stroke="{3}" stroke-width="2"/><text x="{4}" y="{5}">{6}</text>)svg",
                          kWidth - kRight + 10, kWidth - kRight + 28, line, color, kWidth - kRight + 32, line + 4, escape(label));
      line += 16;
    }
    if (with_dashes) {
      svg_ += fmt::format(R"svg(<line x1="{0}" x2="{1}" y1="{2}" y2="{2}" stroke="#444" stroke-width="1.5"/><text x="{3}" y="{4}">gold</text>)svg",
                          kWidth - kRight + 10, kWidth - kRight + 28, line + 8, kWidth - kRight + 32, line + 12);
      svg_ += fmt::format(R"svg(<line x1="{0}" x2="{1}" y1="{2}" y2="{2}" stroke="#444" stroke-width="1.5" stroke-dasharray="5,3"/><text x="{3}" y="{4}">proxy</text>)svg",
                          kWidth - kRight + 10, kWidth - kRight + 28, line + 24, kWidth - kRight + 32, line + 28);
    }
  }
  std::string svg() const { return svg_ + "</svg>"; }

 private:
  Range xr_, yr_;
  std::string svg_;
};

std::string algorithm_of(const TrialResult& r) { return r.algorithm.empty() ? "(not finished)" : r.algorithm; }

std::string frontier(const std::vector<TrialResult>& results, const std::map<std::string, std::string>& colors) {
  Range xr, yr;
  for (const TrialResult& r : results)
    for (const auto& [step, row] : r.curve) {
      if (row.contains("sqrt_kl")) xr.add(row.at("sqrt_kl"));
      if (row.contains("gold")) yr.add(row.at("gold"));
    }
  Plot plot("Gold reward against √KL (each trial's evaluations; dot: its last)", "√KL(π ‖ π_ref)", "gold reward", xr, yr);
  for (const TrialResult& r : results) {
    Series s{r.name, colors.at(algorithm_of(r)), {}, false, 0.45, true};
    for (const auto& [step, row] : r.curve)
      if (row.contains("sqrt_kl") && row.contains("gold")) s.points.emplace_back(row.at("sqrt_kl"), row.at("gold"));
    plot.add(s);
  }
  std::vector<std::pair<std::string, std::string>> legend(colors.begin(), colors.end());
  plot.legend(legend);
  return plot.svg();
}

// Gold gained over the reference policy against √KL, with Gao et al.'s form fitted to each group
// (dashed; a ring marks a peak inside the data).
std::string fitted_frontier(const std::vector<TrialResult>& results, const std::vector<Group>& groups,
                            const std::map<std::string, std::string>& colors) {
  Range xr, yr;
  std::vector<Series> trials;
  for (const TrialResult& r : results) {
    Series s{r.name, colors.at(algorithm_of(r)), gold_gains(r), false, 0.35, false};
    if (s.points.empty()) continue;
    for (const auto& [x, y] : s.points) xr.add(x), yr.add(y);
    trials.push_back(std::move(s));
  }
  Plot plot("Gold gained over the reference against √KL, Gao et al.'s form fitted per group (dashed)",
            "d = √KL(π ‖ π_ref)", "gold gained over the reference", xr, yr);
  for (const Series& s : trials) plot.add(s);
  for (const Group& g : groups) {
    if (!g.fit) continue;
    const GaoFit& fit = *g.fit;
    Series curve{g.algorithm, colors.at(g.algorithm), {}, true, 1.0, false};
    for (int i = 0; i <= 40; ++i) curve.points.emplace_back(fit.max_d * i / 40, fit(fit.max_d * i / 40));
    plot.add(curve);
    if (fit.peak_d <= fit.max_d)
      plot.raw(fmt::format(R"svg(<circle cx="{:.1f}" cy="{:.1f}" r="5" fill="none" stroke="{}" stroke-width="1.5"/>)svg",
                           plot.x(fit.peak_d), plot.y(fit.peak_gain), curve.color));
  }
  std::vector<std::pair<std::string, std::string>> legend(colors.begin(), colors.end());
  plot.legend(legend);
  return plot.svg();
}

std::string over_training(const std::vector<TrialResult>& results, const std::map<std::string, std::string>& colors) {
  // step -> (sum, count) of gold and proxy per algorithm
  std::map<std::string, std::map<std::int64_t, std::array<double, 4>>> sums;
  Range xr, yr;
  for (const TrialResult& r : results)
    for (const auto& [step, row] : r.curve) {
      if (!row.contains("gold") || !row.contains("proxy")) continue;
      auto& cell = sums[algorithm_of(r)][step];
      cell[0] += row.at("gold"), cell[1] += 1, cell[2] += row.at("proxy"), cell[3] += 1;
      xr.add(static_cast<double>(step));
    }
  for (const auto& [algorithm, steps] : sums)
    for (const auto& [step, cell] : steps) yr.add(cell[0] / cell[1]), yr.add(cell[2] / cell[3]);
  Plot plot("Gold (solid) and proxy (dashed) reward over training, by algorithm", "step", "reward", xr, yr);
  for (const auto& [algorithm, steps] : sums) {
    Series gold{algorithm, colors.at(algorithm), {}, false, 1.0, false}, proxy{algorithm, colors.at(algorithm), {}, true, 1.0, false};
    for (const auto& [step, cell] : steps) {
      gold.points.emplace_back(static_cast<double>(step), cell[0] / cell[1]);
      proxy.points.emplace_back(static_cast<double>(step), cell[2] / cell[3]);
    }
    plot.add(gold);
    plot.add(proxy);
  }
  std::vector<std::pair<std::string, std::string>> legend;
  for (const auto& [algorithm, steps] : sums) legend.emplace_back(algorithm, colors.at(algorithm));
  plot.legend(legend, /*with_dashes=*/true);
  return plot.svg();
}

// Final gold by the swept keys (all but seed and the algorithm: each combination of their values
// is one level) and algorithm, mean ± 95% CI over seeds.
std::string by_level(const std::vector<TrialResult>& results, const std::map<std::string, std::string>& colors) {
  std::vector<std::string> keys;
  for (const TrialResult& r : results)
    for (const auto& [key, value] : r.params)
      if (key != "seed" && key != "algorithm" && std::find(keys.begin(), keys.end(), key) == keys.end()) keys.push_back(key);
  std::vector<std::string> levels;
  std::map<std::pair<std::string, std::string>, std::vector<double>> values;  // (level, algorithm) -> final gold
  for (const TrialResult& r : results) {
    std::vector<std::string> parts;
    for (const std::string& key : keys) {
      const auto param = std::find_if(r.params.begin(), r.params.end(), [&](const auto& p) { return p.first == key; });
      const std::string value = param == r.params.end() ? "-" : param->second;
      parts.push_back(keys.size() == 1 ? value : key + "=" + value);
    }
    const std::string level = keys.empty() ? "all" : join(parts, ", ");
    if (std::find(levels.begin(), levels.end(), level) == levels.end()) levels.push_back(level);
    if (r.state == "finished" && r.finals.contains("final_gold")) values[{level, algorithm_of(r)}].push_back(r.finals.at("final_gold"));
  }
  const std::string level_key = join(keys, ", ");
  Range yr;
  std::map<std::pair<std::string, std::string>, Statistic> stats;
  for (const auto& [cell, v] : values) {
    const Statistic s = summarize(v);
    stats[cell] = s;
    yr.add(s.mean);
    if (std::isfinite(s.ci95)) yr.add(s.mean - s.ci95), yr.add(s.mean + s.ci95);
  }
  Range xr;
  xr.low = -0.5, xr.high = static_cast<double>(levels.size()) - 0.5;
  Plot plot("Final gold reward by " + (level_key.empty() ? std::string("trial group") : level_key) + " (mean, 95% CI over seeds)",
            level_key.empty() ? "" : level_key, "final gold reward", xr, yr, /*numeric_x=*/false);
  const double algorithms = static_cast<double>(colors.size());
  std::size_t a = 0;
  for (const auto& [algorithm, color] : colors) {
    const double offset = (static_cast<double>(a++) - (algorithms - 1) / 2) * 0.12;
    for (std::size_t l = 0; l < levels.size(); ++l) {
      const auto it = stats.find({levels[l], algorithm});
      if (it == stats.end() || std::isnan(it->second.mean)) continue;
      const Statistic& s = it->second;
      const double px = plot.x(static_cast<double>(l) + offset);
      if (std::isfinite(s.ci95))
        plot.raw(fmt::format(R"svg(<line x1="{0:.1f}" x2="{0:.1f}" y1="{1:.1f}" y2="{2:.1f}" stroke="{3}" stroke-width="1.5"/>)svg", px,
                             plot.y(s.mean - s.ci95), plot.y(s.mean + s.ci95), color));
      plot.raw(fmt::format(R"svg(<circle cx="{:.1f}" cy="{:.1f}" r="4" fill="{}"><title>{} at {}: {} ± {} (n = {})</title></circle>)svg", px,
                           plot.y(s.mean), color, escape(algorithm), escape(levels[l]), number(s.mean), number(s.ci95), s.n));
    }
  }
  for (std::size_t l = 0; l < levels.size(); ++l)
    plot.raw(fmt::format(R"svg(<text x="{:.1f}" y="{}" text-anchor="middle">{}</text>)svg",
                         plot.x(static_cast<double>(l)), kHeight - kBottom + 14, escape(levels[l])));
  std::vector<std::pair<std::string, std::string>> legend(colors.begin(), colors.end());
  plot.legend(legend);
  return plot.svg();
}

std::string fits_table(const std::vector<Group>& groups) {
  if (std::none_of(groups.begin(), groups.end(), [](const Group& g) { return g.fit.has_value(); })) return "";
  std::string html =
      "<h2>Overoptimization: Gao et al.'s forms</h2>\n<p>Gold gained over the reference policy, R, against d = √KL, "
      "fitted by least squares "
      "through the origin: best-of-n R(d) = d(α − βd), RL R(d) = d(α − β log d); ± 95% t-intervals, which treat "
      "the points as independent. With β &gt; 0 the gold reward peaks at d* and then falls.</p>\n<table><tr>";
  for (const auto& [key, value] : groups.front().key) html += "<th>" + escape(key) + "</th>";
  html += "<th>algorithm</th><th>form</th><th>points</th><th>α</th><th>β</th><th>R²</th><th>peak</th><th>peak gain</th></tr>";
  for (const Group& g : groups) {
    if (!g.fit) continue;
    const GaoFit& f = *g.fit;
    html += "<tr>";
    for (const auto& [key, value] : g.key) html += "<td>" + escape(value) + "</td>";
    html += fmt::format("<td>{}</td><td>{}</td><td>{}</td><td>{} ± {}</td><td>{} ± {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                        escape(g.algorithm), to_string(f.form), f.points, number(f.alpha), number(f.alpha_ci95),
                        number(f.beta), number(f.beta_ci95), number(f.r_squared, 2), escape(describe_peak(f)),
                        number(f.peak_gain));
  }
  return html + "</table>";
}

std::string table(const std::vector<Group>& groups) {
  std::string html = "<table><tr>";
  if (!groups.empty())
    for (const auto& [key, value] : groups.front().key) html += "<th>" + escape(key) + "</th>";
  html += "<th>n</th>";
  for (const std::string& metric : final_metrics()) html += "<th>" + escape(metric) + "</th>";
  html += "<th>not finished</th></tr>";
  for (const Group& g : groups) {
    html += "<tr>";
    for (const auto& [key, value] : g.key) html += "<td>" + escape(value) + "</td>";
    html += fmt::format("<td>{}</td>", g.stats.at("final_gold").n);
    for (const std::string& metric : final_metrics()) {
      const Statistic& s = g.stats.at(metric);
      html += "<td>" + number(s.mean) + (std::isfinite(s.ci95) ? " ± " + number(s.ci95) : "") + "</td>";
    }
    html += fmt::format("<td>{}</td></tr>", g.failed);
  }
  return html + "</table>";
}

// A search: the best configuration per study, the search's progress, each parameter's effect and
// the tuned frontiers.
std::string search_section(const SearchResults& search, const std::vector<TrialResult>& results) {
  std::map<std::string, std::string> colors;
  for (std::size_t i = 0; i < search.studies.size(); ++i) colors[search.studies[i].label] = kPalette[i % std::size(kPalette)];
  std::vector<std::pair<std::string, std::string>> legend;
  for (const StudyResults& study : search.studies) legend.emplace_back(study.label, colors.at(study.label));
  const std::string objective = search.objective == "best_gold" ? "best gold" : "final gold";

  std::string html = fmt::format(
      "<h2>Search</h2>\n<p>Each study searched its space with the {} sampler; a configuration's objective is its "
      "trials' mean {} over seeds (95% t-interval). Only configurations whose trials all finished are candidates "
      "for best; a pruned trial was stopped early by the search and counts with its last evaluation (a ring in the "
      "parameter plots).</p>\n"
      "<table><tr><th>study</th><th>configurations</th><th>pruned trials</th><th>best configuration</th><th>{}</th><th>n</th></tr>",
      escape(search.sampler), objective, objective);
  for (const StudyResults& study : search.studies) {
    html += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td>", escape(study.label), study.configurations.size(),
                        study.pruned_trials());
    if (!study.best) {
      html += "<td>none complete yet</td><td>–</td><td>0</td></tr>";
      continue;
    }
    const SearchedConfiguration& best = study.configurations[*study.best];
    std::vector<std::string> params;
    for (const auto& [key, value] : best.params) params.push_back(key + "=" + value);
    html += fmt::format("<td>#{} {}</td><td>{}{}</td><td>{}</td></tr>", best.index, escape(join(params, " ")),
                        number(best.objective.mean),
                        std::isfinite(best.objective.ci95) ? " ± " + number(best.objective.ci95) : "", best.objective.n);
  }
  html += "</table>\n";

  // Progress: the best complete configuration so far against configurations tried.
  Range xr, yr;
  std::vector<Series> progress;
  for (const StudyResults& study : search.studies) {
    Series s{study.label, colors.at(study.label), {}, false, 1.0, true};
    double best = -INFINITY;
    for (const SearchedConfiguration& c : study.configurations) {
      if (c.complete() && std::isfinite(c.objective.mean)) best = std::max(best, c.objective.mean);
      if (std::isfinite(best)) s.points.emplace_back(static_cast<double>(c.index + 1), best), yr.add(best);
      xr.add(static_cast<double>(c.index + 1));
    }
    progress.push_back(std::move(s));
  }
  Plot plot("Search progress: the best configuration so far", "configurations tried", "best mean " + objective, xr, yr);
  for (const Series& s : progress) plot.add(s);
  plot.legend(legend);
  html += plot.svg() + "\n";

  // Sensitivity: each configuration's objective against each searched parameter (ring: pruned).
  for (const std::string& key : search.keys) {
    const bool log = search.log_keys.contains(key);
    Range kx, ky;
    struct Dot {
      double x, y;
      std::string color, title;
      bool pruned;
    };
    std::vector<Dot> dots;
    for (const StudyResults& study : search.studies)
      for (const SearchedConfiguration& c : study.configurations) {
        const auto param = std::find_if(c.params.begin(), c.params.end(), [&](const auto& p) { return p.first == key; });
        if (param == c.params.end() || std::isnan(c.objective.mean)) continue;
        double x = NAN;
        try {
          x = std::stod(param->second);
        } catch (const std::exception&) {
          continue;  // a categorical value: no axis to put it on
        }
        if (log && x > 0) x = std::log10(x);
        kx.add(x), ky.add(c.objective.mean);
        dots.push_back({x, c.objective.mean, colors.at(study.label),
                        fmt::format("{} #{}: {}={}, {} {}", study.label, c.index, key, param->second, objective, number(c.objective.mean)),
                        c.pruned > 0});
      }
    if (dots.empty()) continue;
    Plot sensitivity(fmt::format("Mean {} against {}", objective, key),
                     log ? "log10 " + key : key, "mean " + objective, kx, ky);
    for (const Dot& d : dots)
      sensitivity.raw(fmt::format(R"svg(<circle cx="{:.1f}" cy="{:.1f}" r="4" fill="{}" stroke="{}" stroke-width="1.5"><title>{}</title></circle>)svg",
                                  sensitivity.x(d.x), sensitivity.y(d.y), d.pruned ? "none" : d.color, d.color, escape(d.title)));
    sensitivity.legend(legend);
    html += sensitivity.svg() + "\n";
  }

  // Gold against KL over the complete configurations, each study's Pareto front joined: what a
  // KL budget buys once tuned.
  Range px, py;
  std::vector<Series> fronts;
  for (const StudyResults& study : search.studies) {
    std::vector<std::pair<double, double>> points;  // (KL, gold)
    for (const SearchedConfiguration& c : study.configurations)
      if (c.complete() && std::isfinite(c.final_kl) && std::isfinite(c.final_gold)) {
        points.emplace_back(c.final_kl, c.final_gold);
        px.add(c.final_kl), py.add(c.final_gold);
      }
    std::sort(points.begin(), points.end());
    Series front{study.label, colors.at(study.label), {}, false, 1.0, false};
    for (const auto& point : points)
      if (front.points.empty() || point.second > front.points.back().second) front.points.push_back(point);
    fronts.push_back(std::move(front));
    for (const auto& [kl, gold] : points) fronts.push_back({study.label, colors.at(study.label), {{kl, gold}}, false, 1.0, true});
  }
  if (!fronts.empty()) {
    Plot pareto("Final gold against KL per configuration; lines: Pareto fronts", "KL(π ‖ π_ref)",
                "mean final gold", px, py);
    for (const Series& s : fronts) pareto.add(s);
    pareto.legend(legend);
    html += pareto.svg() + "\n";
  }

  // The tuned frontiers: gold against √KL along each study's best configuration's trials.
  std::map<std::string, const TrialResult*> by_name;
  for (const TrialResult& r : results) by_name[r.name] = &r;
  Range fx, fy;
  std::vector<Series> curves;
  for (const StudyResults& study : search.studies) {
    if (!study.best) continue;
    for (const std::string& name : study.configurations[*study.best].trials) {
      const auto found = by_name.find(name);
      if (found == by_name.end()) continue;
      Series s{study.label, colors.at(study.label), {}, false, 0.8, true};
      for (const auto& [step, row] : found->second->curve)
        if (row.contains("sqrt_kl") && row.contains("gold")) {
          s.points.emplace_back(row.at("sqrt_kl"), row.at("gold"));
          fx.add(row.at("sqrt_kl")), fy.add(row.at("gold"));
        }
      curves.push_back(std::move(s));
    }
  }
  if (!curves.empty()) {
    Plot tuned("Tuned frontiers: each study's best configuration, one line per seed",
               "√KL(π ‖ π_ref)", "gold reward", fx, fy);
    for (const Series& s : curves) tuned.add(s);
    tuned.legend(legend);
    html += tuned.svg() + "\n";
  }
  return html;
}

}  // namespace

std::string render_report(const std::string& title, const std::vector<TrialResult>& results, const SearchResults* search) {
  std::map<std::string, std::string> colors;
  for (const TrialResult& r : results) colors.emplace(algorithm_of(r), "");
  std::size_t i = 0;
  for (auto& [algorithm, color] : colors) color = kPalette[i++ % std::size(kPalette)];
  std::int64_t finished = 0;
  for (const TrialResult& r : results) finished += r.state == "finished";

  std::string html = R"html(<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>)html" + escape(title) + R"html(</title>
<style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}
table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}svg{display:block;margin:1.5em 0}</style></head><body>
)html";
  html += "<h1>" + escape(title) + "</h1>\n";
  html += fmt::format("<p>{} trials, {} finished. Gold reward is the task's true reward; proxy reward is what the "
                      "algorithms optimized; KL is to the SFT reference policy, estimated from samples (best-of-n's from "
                      "the reference's log-probs and the proxy's ranks, not its upper bound log n &minus; (n&minus;1)/n, "
                      "which metrics.jsonl keeps as algorithm.kl_bound). Intervals are 95% t-intervals over "
                      "seeds.</p>\n",
                      results.size(), finished);
  const std::vector<Group> groups = aggregate(results, {});
  html += frontier(results, colors) + "\n" + fitted_frontier(results, groups, colors) + "\n" +
          over_training(results, colors) + "\n" + by_level(results, colors) + "\n";
  if (search != nullptr) html += search_section(*search, results);
  html += "<h2>Results</h2>\n" + table(groups) + "\n" + fits_table(groups) + "\n</body></html>\n";
  return html;
}

void write_report(const std::filesystem::path& sweep_dir, const std::filesystem::path& file) {
  const std::vector<TrialResult> results = load_results(sweep_dir);
  const std::optional<SearchResults> search = search_results(read_manifest(sweep_dir), results);
  write_atomically(file, render_report("prefopt sweep " + sweep_dir.filename().string(), results, search ? &*search : nullptr));
}

}  // namespace prefopt::sweep
