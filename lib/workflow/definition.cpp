#include <automation/core/files.hpp>
#include <automation/core/json.hpp>
#include <automation/core/time.hpp>
#include <automation/storage/store.hpp>
#include <automation/workflow/definition.hpp>
#include <detail/json_checker.hpp>
#include <detail/names.hpp>

#include <fmt/format.h>
#include <boost/json.hpp>

#include <algorithm>
#include <functional>
#include <set>

namespace automation::workflow {

std::string_view to_string(StepKind k) noexcept {
  switch (k) {
    case StepKind::command:
      return "command";
    case StepKind::shell:
      return "shell";
    case StepKind::callback:
      return "callback";
    case StepKind::http:
      return "http";
    case StepKind::workflow:
      return "workflow";
    case StepKind::action:
      return "action";
  }
  return "?";
}

std::string_view to_string(ConflictPolicy p) noexcept {
  switch (p) {
    case ConflictPolicy::queue:
      return "queue";
    case ConflictPolicy::cancel_running:
      return "cancel_running";
    case ConflictPolicy::skip:
      return "skip";
  }
  return "?";
}

std::string_view to_string(InterruptPolicy p) noexcept {
  switch (p) {
    case InterruptPolicy::resume:
      return "resume";
    case InterruptPolicy::restart:
      return "restart";
    case InterruptPolicy::fail:
      return "fail";
  }
  return "?";
}

const StepDefinition* WorkflowDefinition::step(std::string_view id) const {
  for (const auto& s : steps)
    if (s.id == id) return &s;
  return nullptr;
}

std::vector<std::size_t> WorkflowDefinition::topological_order() const {
  // Kahn's algorithm taking the ready step that comes first in the file each time.
  std::vector<std::size_t> order;
  std::vector<bool> done(steps.size(), false);
  auto ready = [&](std::size_t i) {
    return std::all_of(steps[i].needs.begin(), steps[i].needs.end(), [&](const std::string& n) {
      for (std::size_t j = 0; j < steps.size(); ++j)
        if (steps[j].id == n) return j == i || static_cast<bool>(done[j]);
      return true;  // unknown ids are validation errors, not ordering constraints
    });
  };
  while (order.size() < steps.size()) {
    std::size_t next = steps.size();
    for (std::size_t i = 0; i < steps.size() && next == steps.size(); ++i)
      if (!done[i] && ready(i)) next = i;
    if (next == steps.size()) break;  // a cycle (validation refuses these)
    done[next] = true;
    order.push_back(next);
  }
  return order;
}

namespace {

namespace bj = boost::json;

struct Checker : detail::JsonChecker {
  std::optional<Template> tmpl(const bj::value& v, const std::string& path) {
    auto s = string(v, path);
    if (!s) return std::nullopt;
    auto t = Template::parse(*s);
    if (!t) {
      add(path, t.error().message);
      return std::nullopt;
    }
    return std::move(*t);
  }
  std::map<std::string, Template> tmpl_map(const bj::value& v, const std::string& path) {
    std::map<std::string, Template> out;
    const auto* o = object(v, path);
    if (!o) return out;
    for (const auto& kv : *o) {
      if (kv.value().is_number()) {  // numbers and booleans are accepted as their text
        out.emplace(std::string(kv.key()), Template::parse(json::dump(kv.value())).value());
        continue;
      }
      if (kv.value().is_bool()) {
        out.emplace(std::string(kv.key()), Template::parse(kv.value().as_bool() ? "true" : "false").value());
        continue;
      }
      if (auto t = tmpl(kv.value(), path + "." + std::string(kv.key()))) out.emplace(std::string(kv.key()), std::move(*t));
    }
    return out;
  }
  // The action keys of a step (or of a compensation).
  std::optional<StepAction> action(const bj::object& o, const std::string& path) {
    static constexpr std::string_view kKinds[] = {"run", "shell", "callback", "http", "workflow", "action"};
    std::vector<std::string_view> present;
    for (auto k : kKinds)
      if (o.contains(k)) present.push_back(k);
    if (present.size() != 1) {
      add(path, present.empty() ? "needs one of run, shell, callback, http, workflow or action"
                                : fmt::format("has {} and {}: a step does exactly one thing", present[0], present[1]));
      return std::nullopt;
    }
    StepAction a;
    const std::string_view k = present[0];
    const std::string p = path + "." + std::string(k);
    const bj::value& v = o.at(k);
    if (k == "run") {
      a.kind = StepKind::command;
      if (!v.is_array() || v.as_array().empty()) {
        add(p, "must be a non-empty array: the program and its arguments (use \"shell\" for a shell command line)");
        return std::nullopt;
      }
      for (std::size_t i = 0; i < v.as_array().size(); ++i)
        if (auto t = tmpl(v.as_array()[i], fmt::format("{}[{}]", p, i))) a.argv.push_back(std::move(*t));
    } else if (k == "shell") {
      a.kind = StepKind::shell;
      a.shell = tmpl(v, p);
    } else if (k == "callback") {
      a.kind = StepKind::callback;
      if (auto s = string(v, p, true)) a.name = *s;
      // A callback's arguments sit beside it (a workflow or action step takes them in its object).
      if (const auto* with = o.if_contains("with")) a.with = tmpl_map(*with, path + ".with");
    } else if (k == "http") {
      a.kind = StepKind::http;
      const auto* h = object(v, p);
      if (!h) return std::nullopt;
      unknown_keys(*h, p, {"method", "url", "headers", "body", "expect_status"});
      HttpRequest r;
      if (const auto* m = h->if_contains("method")) {
        if (auto s = string(*m, p + ".method")) {
          static constexpr std::string_view kMethods[] = {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"};
          if (std::find(std::begin(kMethods), std::end(kMethods), *s) == std::end(kMethods))
            add(p + ".method", fmt::format("\"{}\" is not GET, POST, PUT, PATCH, DELETE or HEAD", *s));
          r.method = *s;
        }
      }
      if (const auto* u = h->if_contains("url")) {
        if (auto t = tmpl(*u, p + ".url")) r.url = std::move(*t);
      } else {
        add(p, "needs \"url\"");
      }
      if (const auto* hd = h->if_contains("headers")) r.headers = tmpl_map(*hd, p + ".headers");
      if (const auto* b = h->if_contains("body")) r.body = tmpl(b->is_string() ? *b : bj::value(json::dump(*b)), p + ".body");
      if (const auto* es = h->if_contains("expect_status")) {
        if (!es->is_array())
          add(p + ".expect_status", "must be an array of status codes");
        else
          for (const auto& x : es->as_array()) {
            if (!x.is_int64() || x.as_int64() < 100 || x.as_int64() > 599)
              add(p + ".expect_status", "status codes are 100-599");
            else
              r.expect_status.push_back(static_cast<int>(x.as_int64()));
          }
      }
      a.http = std::move(r);
    } else {
      a.kind = k == "workflow" ? StepKind::workflow : StepKind::action;
      const auto* w = object(v, p);
      if (!w) return std::nullopt;
      unknown_keys(*w, p, {"name", "with"});
      if (const auto* n = w->if_contains("name")) {
        if (auto s = string(*n, p + ".name", true)) a.name = *s;
      } else {
        add(p, "needs \"name\"");
      }
      if (const auto* with = w->if_contains("with")) a.with = tmpl_map(*with, p + ".with");
    }
    if (k != "callback" && o.contains("with"))
      add(path + ".with", "only a callback step takes \"with\" here; a workflow or action step takes it inside its object");
    return a;
  }
};

bool valid_id(std::string_view id) {
  return !id.empty() &&
         std::all_of(id.begin(), id.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-'; });
}

// Reference checks and cycles, shared by JSON and C++ definitions.
// `parsed`: the JSON reader already reported missing or empty names and ids.
void check_structure(const WorkflowDefinition& w, Checker& c, bool parsed) {
  if (!valid_id(w.name) && !(parsed && w.name.empty())) c.add("$.name", fmt::format("\"{}\" must be letters, digits, '-' or '_'", w.name));
  std::map<std::string, std::size_t> index;
  for (std::size_t i = 0; i < w.steps.size(); ++i) {
    const auto& s = w.steps[i];
    const std::string p = fmt::format("$.steps[{}]", i);
    if (parsed && s.id.empty()) continue;
    // A breaker's name is spelled as an event's (letters, digits and . _ - :).
    if (!s.breaker.empty() && (s.breaker.size() > 100 || !storage::is_event_name(s.breaker)))
      c.add(p + ".breaker", fmt::format("\"{}\" is not a breaker name (letters, digits and _ - . :, at most 100)", s.breaker));
    if (!valid_id(s.id))
      c.add(p + ".id", fmt::format("\"{}\" must be letters, digits, '-' or '_'", s.id));
    else if (!index.emplace(s.id, i).second)
      c.add(p + ".id", fmt::format("\"{}\" is already the id of steps[{}]", s.id, index[s.id]));
  }
  std::vector<std::string_view> ids;
  for (const auto& s : w.steps) ids.push_back(s.id);
  for (std::size_t i = 0; i < w.steps.size(); ++i) {
    const auto& s = w.steps[i];
    for (std::size_t j = 0; j < s.needs.size(); ++j) {
      const std::string p = fmt::format("$.steps[{}].needs[{}]", i, j);
      if (s.needs[j] == s.id)
        c.add(p, "a step cannot need itself");
      else if (!index.contains(s.needs[j]))
        c.add(p, fmt::format("unknown step \"{}\"{}", s.needs[j], detail::did_you_mean(s.needs[j], ids)));
    }
  }
  // Cycles: depth-first search, naming the first cycle found.
  std::vector<int> state(w.steps.size(), 0);  // 0 new, 1 on the stack, 2 done
  std::vector<std::size_t> stack;
  std::function<bool(std::size_t)> dfs = [&](std::size_t i) -> bool {
    state[i] = 1;
    stack.push_back(i);
    for (const auto& n : w.steps[i].needs) {
      auto it = index.find(n);
      if (it == index.end() || it->second == i) continue;
      const std::size_t j = it->second;
      if (state[j] == 1) {
        std::string cycle;
        auto from = std::find(stack.begin(), stack.end(), j);
        for (auto k = from; k != stack.end(); ++k) cycle += w.steps[*k].id + " -> ";
        cycle += w.steps[j].id;
        c.add(fmt::format("$.steps[{}].needs", i), fmt::format("dependency cycle: {} (each needs the next)", cycle));
        return true;
      }
      if (state[j] == 0 && dfs(j)) return true;
    }
    stack.pop_back();
    state[i] = 2;
    return false;
  };
  for (std::size_t i = 0; i < w.steps.size(); ++i)
    if (state[i] == 0 && dfs(i)) break;

  // Upstream sets, for reference checks: a step may read the outputs of steps it (transitively) needs.
  std::vector<std::set<std::string>> upstream(w.steps.size());
  std::vector<bool> ordered(w.steps.size(), false);  // false: in or after a cycle (already reported)
  for (auto i : w.topological_order()) {
    ordered[i] = true;
    for (const auto& n : w.steps[i].needs)
      if (auto it = index.find(n); it != index.end()) {
        upstream[i].insert(n);
        upstream[i].insert(upstream[it->second].begin(), upstream[it->second].end());
      }
  }
  std::set<std::string> params;
  for (const auto& p : w.params) params.insert(p.name);
  constexpr std::size_t kWorkflowLevel = static_cast<std::size_t>(-1);  // decided before any step runs
  auto check_refs = [&](const Expression& e, const std::string& path, std::size_t step) {
    for (const auto& r : e.references()) {
      if (r[0] == "steps" && step == kWorkflowLevel) {
        c.add(path, fmt::format("\"{}\" reads steps.{}, but this is decided before any step runs (use params or env)", e.text(), r[1]));
      } else if (r[0] == "params" && !params.contains(r[1])) {
        std::vector<std::string_view> names(params.begin(), params.end());
        c.add(path, fmt::format("\"{}\" reads params.{}, which the workflow does not declare{}", e.text(), r[1],
                                detail::did_you_mean(r[1], names)));
      } else if (r[0] == "steps") {
        auto it = index.find(r[1]);
        if (it == index.end()) {
          c.add(path, fmt::format("\"{}\" reads steps.{}, which does not exist{}", e.text(), r[1], detail::did_you_mean(r[1], ids)));
        } else if (ordered[step] && !upstream[step].contains(r[1]) && !w.steps[step].finally) {
          c.add(path,
                fmt::format("\"{}\" reads steps.{}, which step \"{}\" does not need (add it to needs)", e.text(), r[1], w.steps[step].id));
        } else if (r.size() == 4 && r[2] == "outputs") {
          const auto& outs = w.steps[it->second].outputs;
          if (std::find(outs.begin(), outs.end(), r[3]) == outs.end())
            c.add(path, fmt::format("\"{}\" reads output \"{}\" of step \"{}\", which declares {}", e.text(), r[3], r[1],
                                    outs.empty() ? std::string("no outputs") : fmt::format("outputs {}", fmt::join(outs, ", "))));
        }
      }
    }
  };
  auto check_action = [&](const StepAction& a, const std::string& path, std::size_t step) {
    for (std::size_t k = 0; k < a.argv.size(); ++k)
      for (auto* e : a.argv[k].expressions()) check_refs(*e, fmt::format("{}.run[{}]", path, k), step);
    if (a.shell)
      for (auto* e : a.shell->expressions()) check_refs(*e, path + ".shell", step);
    for (const auto& [key, t] : a.with)
      for (auto* e : t.expressions()) check_refs(*e, path + ".with." + key, step);
    if (a.http) {
      for (auto* e : a.http->url.expressions()) check_refs(*e, path + ".http.url", step);
      for (const auto& [key, t] : a.http->headers)
        for (auto* e : t.expressions()) check_refs(*e, path + ".http.headers." + key, step);
      if (a.http->body)
        for (auto* e : a.http->body->expressions()) check_refs(*e, path + ".http.body", step);
    }
  };
  for (std::size_t i = 0; i < w.steps.size(); ++i) {
    const auto& s = w.steps[i];
    const std::string p = fmt::format("$.steps[{}]", i);
    if (s.condition) check_refs(*s.condition, p + ".if", i);
    check_action(s.action, p, i);
    if (s.compensate) check_action(*s.compensate, p + ".compensate", i);
    for (const auto& [key, t] : s.env)
      for (auto* e : t.expressions()) check_refs(*e, p + ".env." + key, i);
    if (s.working_directory)
      for (auto* e : s.working_directory->expressions()) check_refs(*e, p + ".working_directory", i);
    if (s.retry)
      if (auto v = s.retry->validate(); !v) c.add(p + ".retry", v.error().message);
    auto duplicates = [&](const std::vector<std::string>& names, const std::string& where, std::string_view what) {
      std::set<std::string_view> seen;
      for (const auto& n : names)
        if (!seen.insert(n).second) c.add(where, fmt::format("{} \"{}\" is listed twice", what, n));
    };
    duplicates(s.needs, p + ".needs", "step");
    duplicates(s.outputs, p + ".outputs", "output");
    for (const auto& n : s.outputs)
      if (!valid_id(n)) c.add(p + ".outputs", fmt::format("output name \"{}\" must be letters, digits, '-' or '_'", n));
    if (parsed) continue;
    // What the JSON reader already checks, for definitions built in C++.
    auto action_shape = [&](const StepAction& a, const std::string& where) {
      if (a.kind == StepKind::command && a.argv.empty()) c.add(where + ".run", "needs at least the program");
      if (a.kind == StepKind::shell && (!a.shell || a.shell->text().empty())) c.add(where + ".shell", "needs a command line");
      if ((a.kind == StepKind::callback || a.kind == StepKind::workflow || a.kind == StepKind::action) && a.name.empty())
        c.add(where, fmt::format("a {} step needs a name", to_string(a.kind)));
      if (a.kind == StepKind::http && (!a.http || a.http->url.text().empty())) c.add(where + ".http", "needs \"url\"");
    };
    action_shape(s.action, p);
    if (s.compensate) action_shape(*s.compensate, p + ".compensate");
    if (s.timeout && *s.timeout <= Duration::zero()) c.add(p + ".timeout", "must be more than zero");
  }
  if (w.concurrency_key)
    for (auto* e : w.concurrency_key->expressions()) check_refs(*e, "$.concurrency.key", kWorkflowLevel);
  if (w.max_concurrent_runs < 0) c.add("$.max_concurrent_runs", "must be 0 (no limit) or more");
  if (!parsed) {
    if (w.deadline && *w.deadline <= Duration::zero()) c.add("$.deadline", "must be more than zero");
    for (const auto& pd : w.params)
      if (!valid_id(pd.name)) c.add("$.params." + pd.name, "a parameter name is letters, digits, '-' or '_'");
  }
}

}  // namespace

Result<void> validate(const WorkflowDefinition& w) {
  Checker c;
  check_structure(w, c, false);
  return detail::verdict(c, fmt::format("workflow \"{}\"", w.name));
}

Result<WorkflowDefinition> parse_workflow(std::string_view text, std::string_view source) {
  auto doc = json::parse(text, source);
  if (!doc) return doc.error();
  Checker c;
  WorkflowDefinition w;
  const auto* root = c.object(*doc, "$");
  if (!root) return detail::verdict(c, source).error();
  c.unknown_keys(
      *root, "$",
      {"name", "description", "params", "env", "priority", "max_concurrent_runs", "concurrency", "deadline", "on_interrupt", "steps"});
  if (const auto* v = root->if_contains("name")) {
    if (auto s = c.string(*v, "$.name", true)) w.name = *s;
  } else {
    c.add("$", "needs \"name\"");
  }
  if (const auto* v = root->if_contains("description"))
    if (auto s = c.string(*v, "$.description")) w.description = *s;
  if (const auto* v = root->if_contains("params")) {
    if (const auto* o = c.object(*v, "$.params")) {
      for (const auto& kv : *o) {
        const std::string p = "$.params." + std::string(kv.key());
        ParamDefinition pd;
        pd.name = std::string(kv.key());
        if (!valid_id(pd.name)) c.add(p, "a parameter name is letters, digits, '-' or '_'");
        if (const auto* po = c.object(kv.value(), p)) {
          c.unknown_keys(*po, p, {"default", "description"});
          if (const auto* d = po->if_contains("default")) pd.default_value = d->is_string() ? std::string(d->as_string()) : json::dump(*d);
          if (const auto* d = po->if_contains("description"))
            if (auto s = c.string(*d, p + ".description")) pd.description = *s;
        }
        w.params.push_back(std::move(pd));
      }
    }
  }
  if (const auto* v = root->if_contains("env")) {
    if (const auto* o = c.object(*v, "$.env"))
      for (const auto& kv : *o)
        if (auto s = c.string(kv.value(), "$.env." + std::string(kv.key()))) w.env[std::string(kv.key())] = *s;
  }
  auto integer = [&](const char* key, int& out) {
    if (const auto* v = root->if_contains(key)) {
      if (!v->is_int64())
        c.add(std::string("$.") + key, "must be an integer");
      else
        out = static_cast<int>(v->as_int64());
    }
  };
  integer("priority", w.priority);
  integer("max_concurrent_runs", w.max_concurrent_runs);
  if (const auto* v = root->if_contains("concurrency")) {
    if (const auto* o = c.object(*v, "$.concurrency")) {
      c.unknown_keys(*o, "$.concurrency", {"key", "on_conflict"});
      if (const auto* k = o->if_contains("key"))
        w.concurrency_key = c.tmpl(*k, "$.concurrency.key");
      else
        c.add("$.concurrency", "needs \"key\"");
      if (const auto* p = o->if_contains("on_conflict")) {
        if (auto s = c.string(*p, "$.concurrency.on_conflict")) {
          auto pol =
              detail::parse_name(*s, {ConflictPolicy::queue, ConflictPolicy::cancel_running, ConflictPolicy::skip}, "conflict policy");
          if (!pol)
            c.add("$.concurrency.on_conflict", pol.error().message);
          else
            w.on_conflict = *pol;
        }
      }
    }
  }
  if (const auto* v = root->if_contains("deadline")) w.deadline = c.duration(*v, "$.deadline");
  if (const auto* v = root->if_contains("on_interrupt")) {
    if (auto s = c.string(*v, "$.on_interrupt")) {
      auto pol = detail::parse_name(*s, {InterruptPolicy::resume, InterruptPolicy::restart, InterruptPolicy::fail}, "interrupt policy");
      if (!pol)
        c.add("$.on_interrupt", pol.error().message);
      else
        w.on_interrupt = *pol;
    }
  }
  const auto* steps = root->if_contains("steps");
  if (!steps || !steps->is_array() || steps->as_array().empty()) {
    c.add("$.steps", "must be a non-empty array of steps");
  } else {
    for (std::size_t i = 0; i < steps->as_array().size(); ++i) {
      const std::string p = fmt::format("$.steps[{}]", i);
      const auto* o = c.object(steps->as_array()[i], p);
      StepDefinition s;
      if (!o) {
        w.steps.push_back(std::move(s));
        continue;
      }
      c.unknown_keys(*o, p, {"id",       "name",    "run",        "shell",
                             "callback", "http",    "workflow",   "action",
                             "with",     "needs",   "if",         "continue_on_error",
                             "retry",    "breaker", "timeout",    "working_directory",
                             "env",      "outputs", "compensate", "finally"});
      if (const auto* v = o->if_contains("id")) {
        if (auto id = c.string(*v, p + ".id", true)) s.id = *id;
      } else {
        c.add(p, "needs \"id\"");
      }
      s.name = s.id;
      if (const auto* v = o->if_contains("name"))
        if (auto n = c.string(*v, p + ".name")) s.name = *n;
      if (auto a = c.action(*o, p)) s.action = std::move(*a);
      if (const auto* v = o->if_contains("needs"))
        s.needs = v->is_string() ? std::vector<std::string>{std::string(v->as_string())} : c.strings(*v, p + ".needs");
      if (const auto* v = o->if_contains("if")) {
        if (auto t = c.string(*v, p + ".if", true)) {
          // "${{ expr }}" is accepted as well as "expr" (only when it is one expression).
          std::string_view e = detail::trim(*t);
          if (e.starts_with("${{") && e.ends_with("}}") && e.substr(3, e.size() - 5).find("}}") == std::string_view::npos)
            e = e.substr(3, e.size() - 5);
          auto ex = Expression::parse(e);
          if (!ex)
            c.add(p + ".if", ex.error().message);
          else
            s.condition = std::move(*ex);
        }
      }
      auto boolean = [&](const char* key, bool& out) {
        if (const auto* v = o->if_contains(key)) {
          if (!v->is_bool())
            c.add(p + "." + key, "must be true or false");
          else
            out = v->as_bool();
        }
      };
      boolean("continue_on_error", s.continue_on_error);
      boolean("finally", s.finally);
      if (const auto* v = o->if_contains("retry")) {
        auto r = resilience::RetryPolicy::from_json(*v, p + ".retry");
        if (!r)
          c.problems.push_back(r.error().message);  // names the path itself
        else
          s.retry = std::move(*r);
      }
      if (const auto* v = o->if_contains("breaker"))
        if (auto b = c.string(*v, p + ".breaker", true)) s.breaker = *b;  // its spelling is checked with the structure

      if (const auto* v = o->if_contains("timeout")) s.timeout = c.duration(*v, p + ".timeout");
      if (const auto* v = o->if_contains("working_directory")) s.working_directory = c.tmpl(*v, p + ".working_directory");
      if (const auto* v = o->if_contains("env")) s.env = c.tmpl_map(*v, p + ".env");
      if (const auto* v = o->if_contains("outputs")) {
        s.outputs = c.strings(*v, p + ".outputs");  // names are checked with the structure
      }
      if (const auto* v = o->if_contains("compensate")) {
        if (const auto* co = c.object(*v, p + ".compensate")) {
          c.unknown_keys(*co, p + ".compensate", {"run", "shell", "callback", "http", "workflow", "action", "with"});
          s.compensate = c.action(*co, p + ".compensate");
        }
      }
      w.steps.push_back(std::move(s));
    }
  }
  check_structure(w, c, true);
  if (auto v = detail::verdict(c, source); !v) return v.error();
  return w;
}

namespace {
std::string duration_text(Duration d) { return format_duration(std::chrono::duration_cast<Millis>(d)); }

bj::object template_map(const std::map<std::string, Template>& m) {
  bj::object o;
  for (const auto& [k, t] : m) o[k] = t.text();
  return o;
}

void put_action(bj::object& o, const StepAction& a) {
  switch (a.kind) {
    case StepKind::command: {
      bj::array argv;
      for (const auto& t : a.argv) argv.emplace_back(t.text());
      o["run"] = std::move(argv);
      break;
    }
    case StepKind::shell:
      o["shell"] = a.shell ? a.shell->text() : std::string();
      break;
    case StepKind::callback:
      o["callback"] = a.name;
      if (!a.with.empty()) o["with"] = template_map(a.with);
      break;
    case StepKind::http: {
      bj::object h;
      if (a.http) {
        h["method"] = a.http->method;
        h["url"] = a.http->url.text();
        if (!a.http->headers.empty()) h["headers"] = template_map(a.http->headers);
        if (a.http->body) h["body"] = a.http->body->text();
        if (!a.http->expect_status.empty()) {
          bj::array st;
          for (int c : a.http->expect_status) st.emplace_back(c);
          h["expect_status"] = std::move(st);
        }
      }
      o["http"] = std::move(h);
      break;
    }
    case StepKind::workflow:
    case StepKind::action: {
      bj::object w{{"name", a.name}};
      if (!a.with.empty()) w["with"] = template_map(a.with);
      o[a.kind == StepKind::workflow ? "workflow" : "action"] = std::move(w);
      break;
    }
  }
}
}  // namespace

std::string to_json(const WorkflowDefinition& w) {
  bj::object o;
  o["name"] = w.name;
  if (!w.description.empty()) o["description"] = w.description;
  if (!w.params.empty()) {
    bj::object ps;
    for (const auto& p : w.params) {
      bj::object po;
      if (p.default_value) po["default"] = *p.default_value;
      if (!p.description.empty()) po["description"] = p.description;
      ps[p.name] = std::move(po);
    }
    o["params"] = std::move(ps);
  }
  if (!w.env.empty()) {
    bj::object env;
    for (const auto& [k, v] : w.env) env[k] = v;
    o["env"] = std::move(env);
  }
  if (w.priority) o["priority"] = w.priority;
  if (w.max_concurrent_runs) o["max_concurrent_runs"] = w.max_concurrent_runs;
  if (w.concurrency_key) o["concurrency"] = bj::object{{"key", w.concurrency_key->text()}, {"on_conflict", to_string(w.on_conflict)}};
  if (w.deadline) o["deadline"] = duration_text(*w.deadline);
  if (w.on_interrupt != InterruptPolicy::resume) o["on_interrupt"] = to_string(w.on_interrupt);
  bj::array steps;
  for (const auto& s : w.steps) {
    bj::object so;
    so["id"] = s.id;
    if (!s.name.empty() && s.name != s.id) so["name"] = s.name;
    put_action(so, s.action);
    if (!s.needs.empty()) {
      bj::array n;
      for (const auto& x : s.needs) n.emplace_back(x);
      so["needs"] = std::move(n);
    }
    if (s.condition) so["if"] = s.condition->text();
    if (s.continue_on_error) so["continue_on_error"] = true;
    if (s.retry) so["retry"] = s.retry->to_json();
    if (!s.breaker.empty()) so["breaker"] = s.breaker;
    if (s.timeout) so["timeout"] = duration_text(*s.timeout);
    if (s.working_directory) so["working_directory"] = s.working_directory->text();
    if (!s.env.empty()) so["env"] = template_map(s.env);
    if (!s.outputs.empty()) {
      bj::array n;
      for (const auto& x : s.outputs) n.emplace_back(x);
      so["outputs"] = std::move(n);
    }
    if (s.compensate) {
      bj::object co;
      put_action(co, *s.compensate);
      so["compensate"] = std::move(co);
    }
    if (s.finally) so["finally"] = true;
    steps.emplace_back(std::move(so));
  }
  o["steps"] = std::move(steps);
  return json::dump(o);
}

Result<WorkflowDefinition> load_workflow_file(const std::string& path) {
  auto text = read_file(path);
  if (!text) return fail(errc::not_found, fmt::format("workflow file {} cannot be read", path));
  return parse_workflow(*text, path);
}

}  // namespace automation::workflow
