#include "sweep/results.h"

#include <fmt/format.h>
#include <sqlite3.h>

#include <boost/math/distributions/students_t.hpp>
#include <cmath>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "config/override.h"
#include "files.h"
#include "run_files.h"
#include "prefopt/error.h"
#include "sweep/manifest.h"
#include "text.h"

namespace prefopt::sweep {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// The index's layout, as SQLite's user_version: an index of another version is rebuilt, so a
// sweep indexed by an older prefopt shows the finals added since (2: gold_drop, best_sqrt_kl;
// 3: the states pruned and diverged).
constexpr int kIndexVersion = 3;

// An SQLite call failed: a full disk or an unwritable folder is a StorageError (exit 74), naming
// the database file; anything else a runtime error.
[[noreturn]] void sqlite_failure(sqlite3* db, int code, const std::string& message) {
  const char* file = db != nullptr ? sqlite3_db_filename(db, "main") : nullptr;
  const std::string where = file != nullptr && *file != '\0' ? file : "the results index";
  switch (code & 0xff) {  // the primary result code
    case SQLITE_FULL:
    case SQLITE_IOERR:
    case SQLITE_READONLY:
    case SQLITE_CANTOPEN:
      throw StorageError(fmt::format("cannot write {}: SQLite: {}", where, message));
    default:
      throw std::runtime_error(fmt::format("{}: SQLite: {}", where, message));
  }
}

// A connection and its statements, closed on every path.
class Database {
 public:
  explicit Database(const fs::path& file) {
    if (const int code = sqlite3_open(file.c_str(), &db_); code != SQLITE_OK) {
      const std::string message = db_ != nullptr ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      db_ = nullptr;
      if ((code & 0xff) == SQLITE_CANTOPEN || (code & 0xff) == SQLITE_FULL)
        throw StorageError(fmt::format("cannot open {}: SQLite: {}", file.string(), message));
      throw std::runtime_error(fmt::format("cannot open {}: SQLite: {}", file.string(), message));
    }
  }
  ~Database() { sqlite3_close(db_); }
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  void exec(const std::string& sql) {
    char* error = nullptr;
    if (const int code = sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &error); code != SQLITE_OK) {
      const std::string message = error != nullptr ? error : sqlite3_errstr(code);
      sqlite3_free(error);
      sqlite_failure(db_, code, message);
    }
  }

  class Statement {
   public:
    Statement(sqlite3* db, const std::string& sql) : db_(db) {
      if (const int code = sqlite3_prepare_v2(db, sql.c_str(), -1, &statement_, nullptr); code != SQLITE_OK)
        sqlite_failure(db, code, sqlite3_errmsg(db));
    }
    ~Statement() { sqlite3_finalize(statement_); }
    Statement(const Statement&) = delete;
    Statement& operator=(const Statement&) = delete;

    // Binds the values to ?1, ?2, ..., runs to completion and resets for the next use.
    template <class... Values>
    void run(const Values&... values) {
      int index = 0;
      (bind(++index, values), ...);
      if (const int code = sqlite3_step(statement_); code != SQLITE_DONE) sqlite_failure(db_, code, sqlite3_errmsg(db_));
      sqlite3_reset(statement_);
    }
    bool step() {
      const int code = sqlite3_step(statement_);
      if (code != SQLITE_ROW && code != SQLITE_DONE) sqlite_failure(db_, code, sqlite3_errmsg(db_));
      return code == SQLITE_ROW;
    }
    std::string text(int column) const {
      const auto* value = sqlite3_column_text(statement_, column);
      return value != nullptr ? reinterpret_cast<const char*>(value) : "";
    }
    std::int64_t integer(int column) const { return sqlite3_column_int64(statement_, column); }
    double real(int column) const {
      return sqlite3_column_type(statement_, column) == SQLITE_NULL ? kNaN : sqlite3_column_double(statement_, column);
    }

   private:
    void bind(int index, const std::string& value) {
      sqlite3_bind_text(statement_, index, value.c_str(), static_cast<int>(value.size()), SQLITE_TRANSIENT);
    }
    void bind(int index, std::int64_t value) { sqlite3_bind_int64(statement_, index, value); }
    void bind(int index, int value) { sqlite3_bind_int64(statement_, index, value); }
    void bind(int index, double value) {
      if (std::isnan(value))
        sqlite3_bind_null(statement_, index);
      else
        sqlite3_bind_double(statement_, index, value);
    }

    sqlite3* db_;
    sqlite3_stmt* statement_ = nullptr;
  };
  Statement prepare(const std::string& sql) { return Statement(db_, sql); }

 private:
  sqlite3* db_ = nullptr;
};

double number(const json& value) { return value.is_number() ? value.get<double>() : kNaN; }

fs::file_time_type newest_trial_file(const fs::path& sweep_dir, const json& sweep) {
  fs::file_time_type newest = fs::last_write_time(sweep_dir / kManifest);
  std::error_code error;
  for (const json& trial : sweep["trials"])
    for (const char* file : {run_files::kStatus, run_files::kSummary}) {
      const auto time = fs::last_write_time(sweep_dir / trial["name"].get<std::string>() / file, error);
      if (!error) newest = std::max(newest, time);
    }
  return newest;
}

}  // namespace

const std::vector<std::string>& final_metrics() {
  // gold_drop (best − final gold) and best_sqrt_kl (where gold peaked) state the overoptimization
  // of every result as numbers.
  static const std::vector<std::string> names = {"final_gold", "best_gold",    "gold_drop",     "best_sqrt_kl",
                                                 "final_proxy", "final_kl",    "final_win_rate"};
  return names;
}

std::vector<std::pair<double, double>> gold_gains(const TrialResult& result) {
  std::vector<std::pair<double, double>> points;
  const auto reference = result.finals.find("reference_gold");
  if (result.state != "finished" || reference == result.finals.end()) return points;
  for (const auto& [step, row] : result.curve)
    if (row.contains("sqrt_kl") && row.contains("gold")) points.emplace_back(row.at("sqrt_kl"), row.at("gold") - reference->second);
  return points;
}

void build_index(const fs::path& sweep_dir) {
  const json sweep = read_manifest(sweep_dir);
  const fs::path temporary = sweep_dir / "results.sqlite.tmp";
  fs::remove(temporary);
  try {  // built aside and renamed: readers see the old index or the whole new one
    Database db(temporary);
    db.exec(
        "CREATE TABLE trials(name TEXT PRIMARY KEY, position INTEGER, state TEXT, exit_status INTEGER, algorithm TEXT,"
        " overrides TEXT, swept TEXT);"
        "CREATE TABLE params(trial TEXT, key TEXT, value TEXT);"
        "CREATE TABLE finals(trial TEXT, key TEXT, value REAL);"
        "CREATE TABLE metrics(trial TEXT, step INTEGER, key TEXT, value REAL);" +
        fmt::format("PRAGMA user_version = {};", kIndexVersion) + "BEGIN;");
    auto insert_trial = db.prepare("INSERT INTO trials VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)");
    auto insert_param = db.prepare("INSERT INTO params VALUES(?1, ?2, ?3)");
    auto insert_final = db.prepare("INSERT INTO finals VALUES(?1, ?2, ?3)");
    auto insert_metric = db.prepare("INSERT INTO metrics VALUES(?1, ?2, ?3, ?4)");
    std::int64_t position = 0;
    for (const json& trial : sweep["trials"]) {
      const std::string name = trial["name"];
      const fs::path dir = sweep_dir / name;
      const json status = run_files::read_status(dir);
      const json summary = run_files::read_summary(dir);
      const std::string ending = run_files::ending(summary);
      const std::string state = !ending.empty()   ? ending
                                : status.is_null() ? "not run"
                                                   : status.value("state", "failed");
      const int exit_status = !summary.is_null() ? 0 : status.is_null() ? -1 : status.value("exit_status", -1);
      insert_trial.run(name, position++, state, exit_status,
                       summary.is_null() ? std::string() : summary.value("algorithm", std::string()),
                       trial["overrides"].dump(), trial["swept"].dump());
      for (const json& text : trial["swept"]) {
        const config::Override o = config::parse_override(text.get<std::string>());
        insert_param.run(name, o.key, text.get<std::string>().substr(text.get<std::string>().find('=') + 1));
      }
      if (summary.is_null()) continue;
      const json& last = summary["final"];
      const json& best = summary["best_gold"];
      const std::vector<std::pair<std::string, double>> finals = {
          {"final_gold", number(last["gold"])},
          {"best_gold", number(best["gold"])},
          {"gold_drop", number(best["gold"]) - number(last["gold"])},
          {"best_sqrt_kl", number(best["sqrt_kl"])},
          {"final_proxy", number(last["proxy"])},
          {"final_kl", number(last["kl"])},
          {"final_win_rate", number(last["win_rate"])},
          {"reference_gold", number(summary["reference_gold"])}};
      for (const auto& [key, value] : finals) insert_final.run(name, key, value);
      for (const json& row : run_files::read_metrics(dir)) {
        const std::int64_t step = row.value("step", std::int64_t{0});
        for (const auto& [key, value] : row.items())
          if (value.is_number() && key != "step") insert_metric.run(name, step, key, value.get<double>());
        if (row.contains("algorithm"))
          for (const auto& [key, value] : row["algorithm"].items())
            if (value.is_number()) insert_metric.run(name, step, "algorithm." + key, value.get<double>());
      }
    }
    db.exec("COMMIT;");
  } catch (...) {
    std::error_code ignored;
    fs::remove(temporary, ignored);
    throw;
  }
  fs::rename(temporary, sweep_dir / "results.sqlite");
}

std::vector<TrialResult> load_results(const fs::path& sweep_dir) {
  const json sweep = read_manifest(sweep_dir);
  const fs::path index = sweep_dir / "results.sqlite";
  std::error_code error;
  const auto current = [&] {
    if (!fs::exists(index, error) || fs::last_write_time(index) < newest_trial_file(sweep_dir, sweep)) return false;
    Database db(index);
    auto version = db.prepare("PRAGMA user_version");
    return version.step() && version.integer(0) == kIndexVersion;
  };
  if (!current()) build_index(sweep_dir);

  Database db(index);
  std::vector<TrialResult> results;
  std::map<std::string, std::size_t> by_name;
  for (auto trials = db.prepare("SELECT name, state, exit_status, algorithm FROM trials ORDER BY position"); trials.step();) {
    by_name[trials.text(0)] = results.size();
    results.push_back({trials.text(0), trials.text(1), static_cast<int>(trials.integer(2)), trials.text(3), {}, {}, {}});
  }
  for (auto params = db.prepare("SELECT trial, key, value FROM params ORDER BY rowid"); params.step();)
    results[by_name.at(params.text(0))].params.emplace_back(params.text(1), params.text(2));
  for (auto finals = db.prepare("SELECT trial, key, value FROM finals"); finals.step();)
    results[by_name.at(finals.text(0))].finals[finals.text(1)] = finals.real(2);
  for (auto metrics = db.prepare("SELECT trial, step, key, value FROM metrics"); metrics.step();)
    results[by_name.at(metrics.text(0))].curve[metrics.integer(1)][metrics.text(2)] = metrics.real(3);
  return results;
}

Statistic summarize(const std::vector<double>& values) {
  Statistic s;
  s.n = static_cast<std::int64_t>(values.size());
  if (s.n == 0) return {0, kNaN, kNaN, kNaN};
  for (double v : values) s.mean += v;
  s.mean /= static_cast<double>(s.n);
  if (s.n == 1) return {1, s.mean, kNaN, kNaN};
  double squares = 0;
  for (double v : values) squares += (v - s.mean) * (v - s.mean);
  s.sd = std::sqrt(squares / static_cast<double>(s.n - 1));
  const boost::math::students_t t(static_cast<double>(s.n - 1));
  s.ci95 = boost::math::quantile(t, 0.975) * s.sd / std::sqrt(static_cast<double>(s.n));
  return s;
}

std::vector<Group> aggregate(const std::vector<TrialResult>& results, std::vector<std::string> group_by) {
  if (group_by.empty()) {
    std::set<std::string> seen;
    for (const TrialResult& r : results)
      for (const auto& [key, value] : r.params)
        if (key != "seed" && seen.insert(key).second) group_by.push_back(key);
  }
  std::vector<Group> groups;
  std::vector<std::map<std::string, std::vector<double>>> values;
  std::vector<std::pair<std::vector<double>, std::vector<double>>> frontier;  // per group: √KL, gold gained
  for (const TrialResult& r : results) {
    std::vector<std::pair<std::string, std::string>> key;
    for (const std::string& name : group_by) {
      const auto it = std::find_if(r.params.begin(), r.params.end(), [&](const auto& p) { return p.first == name; });
      key.emplace_back(name, it != r.params.end() ? it->second : "-");
    }
    auto group = std::find_if(groups.begin(), groups.end(), [&](const Group& g) { return g.key == key; });
    if (group == groups.end()) {
      groups.push_back({key, r.algorithm, {}, 0, 0, 0, std::nullopt});
      values.emplace_back();
      frontier.emplace_back();
      group = groups.end() - 1;
    }
    if (group->algorithm != r.algorithm && !r.algorithm.empty()) group->algorithm = group->algorithm.empty() ? r.algorithm : "mixed";
    auto& group_values = values[static_cast<std::size_t>(group - groups.begin())];
    if (r.state != "finished") {
      ++(r.state == "pruned" ? group->pruned : r.state == "diverged" ? group->diverged : group->failed);
      continue;
    }
    for (const std::string& metric : final_metrics())
      if (const auto it = r.finals.find(metric); it != r.finals.end() && !std::isnan(it->second))
        group_values[metric].push_back(it->second);
    auto& [d, gain] = frontier[static_cast<std::size_t>(group - groups.begin())];
    for (const auto& [x, y] : gold_gains(r)) d.push_back(x), gain.push_back(y);
  }
  for (std::size_t g = 0; g < groups.size(); ++g) {
    for (const std::string& metric : final_metrics()) groups[g].stats[metric] = summarize(values[g][metric]);
    if (groups[g].algorithm.empty() || groups[g].algorithm == "mixed") continue;
    groups[g].fit = fit_gao(gao_form_of(groups[g].algorithm), frontier[g].first, frontier[g].second);
  }
  return groups;
}

namespace {

json fit_json(const GaoFit& fit) {
  return {{"form", to_string(fit.form)},          {"points", fit.points},
          {"alpha", fit.alpha},                   {"alpha_ci95", finite_or_null(fit.alpha_ci95)},
          {"beta", fit.beta},                     {"beta_ci95", finite_or_null(fit.beta_ci95)},
          {"r_squared", finite_or_null(fit.r_squared)}, {"max_sqrt_kl", fit.max_d},
          {"peak_sqrt_kl", finite_or_null(fit.peak_d)}, {"peak_kl", finite_or_null(fit.peak_d * fit.peak_d)},
          {"peak_gain", finite_or_null(fit.peak_gain)}};
}

std::string fits_table(const std::vector<Group>& groups, const std::vector<std::size_t>& widths) {
  if (std::none_of(groups.begin(), groups.end(), [](const Group& g) { return g.fit.has_value(); })) return "";
  std::string out = "\nGold gained over the reference policy against d = √KL, Gao et al.'s forms fitted (best-of-n:\n"
                    "d(α − βd); RL: d(α − β log d); ± 95% intervals; the gold reward peaks at d* when β > 0):\n";
  std::string header;
  for (std::size_t k = 0; k < widths.size(); ++k) header += fmt::format("{:<{}}  ", groups.front().key[k].first, widths[k]);
  out += header + fmt::format("{:<12}  {:<9}  {:>6}  {:>15}  {:>15}  {:>5}  {}\n", "algorithm", "form", "points", "α", "β",
                              "R²", "peak");
  for (const Group& g : groups) {
    if (!g.fit) continue;
    const GaoFit& f = *g.fit;
    std::string line;
    for (std::size_t k = 0; k < widths.size(); ++k) line += fmt::format("{:<{}}  ", g.key[k].second, widths[k]);
    line += fmt::format("{:<12}  {:<9}  {:>6}  {:>15}  {:>15}  {:>5.2f}  {}", g.algorithm, to_string(f.form), f.points,
                        fmt::format("{:.3f} ± {:.3f}", f.alpha, f.alpha_ci95), fmt::format("{:.3f} ± {:.3f}", f.beta, f.beta_ci95),
                        f.r_squared, describe_peak(f));
    out += line + "\n";
  }
  return out;
}

}  // namespace

std::string format_results(const std::vector<Group>& groups, const std::string& format) {
  std::string out;
  const auto& metrics = final_metrics();
  if (format == "json") {
    json json_out = json::array();
    for (const Group& g : groups) {
      json row = {{"algorithm", g.algorithm}, {"not_finished", g.failed}, {"pruned", g.pruned}, {"diverged", g.diverged}};
      for (const auto& [key, value] : g.key) row["group"][key] = value;
      for (const std::string& metric : metrics) {
        const Statistic& s = g.stats.at(metric);
        row[metric] = {{"n", s.n}, {"mean", finite_or_null(s.mean)}, {"sd", finite_or_null(s.sd)}, {"ci95", finite_or_null(s.ci95)}};
      }
      row["gao_fit"] = g.fit ? fit_json(*g.fit) : json(nullptr);
      json_out.push_back(row);
    }
    return json_out.dump(2) + "\n";
  }
  if (format == "csv") {
    std::vector<std::string> header;
    if (!groups.empty())
      for (const auto& [key, value] : groups.front().key) header.push_back(key);
    header.emplace_back("n");
    for (const std::string& metric : metrics)
      for (const char* part : {"mean", "sd", "ci95"}) header.push_back(metric + "_" + part);
    header.emplace_back("not_finished");
    out += join(header, ",") + "\n";
    for (const Group& g : groups) {
      std::vector<std::string> cells;
      for (const auto& [key, value] : g.key) cells.push_back(value.find_first_of(",\"") == std::string::npos ? value : "\"" + value + "\"");
      cells.push_back(std::to_string(g.stats.at("final_gold").n));
      for (const std::string& metric : metrics) {
        const Statistic& s = g.stats.at(metric);
        for (const double v : {s.mean, s.sd, s.ci95}) cells.push_back(std::isfinite(v) ? fmt::format("{:.6g}", v) : "");
      }
      cells.push_back(std::to_string(g.failed));
      out += join(cells, ",") + "\n";
    }
    return out;
  }
  // table
  std::vector<std::size_t> widths;
  if (!groups.empty())
    for (std::size_t k = 0; k < groups.front().key.size(); ++k) {
      std::size_t w = groups.front().key[k].first.size();
      for (const Group& g : groups) w = std::max(w, g.key[k].second.size());
      widths.push_back(w);
    }
  std::string header;
  if (!groups.empty())
    for (std::size_t k = 0; k < widths.size(); ++k) header += fmt::format("{:<{}}  ", groups.front().key[k].first, widths[k]);
  header += fmt::format("{:>3}", "n");
  for (const std::string& metric : metrics) header += fmt::format("  {:>17}", metric);
  out += header + "\n";
  for (const Group& g : groups) {
    std::string line;
    for (std::size_t k = 0; k < widths.size(); ++k) line += fmt::format("{:<{}}  ", g.key[k].second, widths[k]);
    line += fmt::format("{:>3}", g.stats.at("final_gold").n);
    for (const std::string& metric : metrics) {
      const Statistic& s = g.stats.at(metric);
      line += fmt::format("  {:>17}", std::isnan(s.mean)   ? std::string("-")
                                      : std::isnan(s.ci95) ? fmt::format("{:.3f}", s.mean)
                                                           : fmt::format("{:.3f} ± {:.3f}", s.mean, s.ci95));
    }
    if (g.failed > 0) line += fmt::format("  ({} not finished)", g.failed);
    if (g.pruned > 0) line += fmt::format("  ({} pruned)", g.pruned);
    if (g.diverged > 0) line += fmt::format("  ({} diverged)", g.diverged);
    out += line + "\n";
  }
  return out + fits_table(groups, widths);
}

}  // namespace prefopt::sweep
