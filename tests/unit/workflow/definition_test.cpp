#include <automation/workflow/definition.hpp>
#include <automation/workflow/expression.hpp>

#include "support/catch_result.hpp"

#include <catch2/catch.hpp>

using namespace automation;
using namespace automation::workflow;

namespace {

ExprValue eval(std::string_view text, std::map<std::string, ExprValue> vars = {}, bool any_failed = false) {
  auto e = Expression::parse(text);
  REQUIRE(e);
  ExprContext ctx;
  ctx.any_failed = any_failed;
  ctx.lookup = [&](const std::vector<std::string>& path) -> std::optional<ExprValue> {
    std::string key;
    for (const auto& p : path) key += (key.empty() ? "" : ".") + p;
    auto it = vars.find(key);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
  return e->evaluate(ctx);
}

std::string problems(std::string_view json) {
  auto w = parse_workflow(json, "test.json");
  REQUIRE_FALSE(w);
  CHECK(w.error().is(errc::invalid_argument));
  return w.error().message;
}

}  // namespace

TEST_CASE("expressions: status functions, comparisons, logic and names") {
  CHECK(truthy(eval("success()")));
  CHECK_FALSE(truthy(eval("success()", {}, true)));
  CHECK(truthy(eval("failure()", {}, true)));
  CHECK(truthy(eval("always()", {}, true)));
  CHECK(truthy(eval("params.env == 'prod'", {{"params.env", std::string("prod")}})));
  CHECK_FALSE(truthy(eval("params.env != \"prod\"", {{"params.env", std::string("prod")}})));
  CHECK(truthy(eval("steps.build.outputs.count >= 10", {{"steps.build.outputs.count", std::string("12")}})));  // numeric, not text
  CHECK_FALSE(truthy(eval("steps.build.outputs.count < 9", {{"steps.build.outputs.count", std::string("12")}})));
  CHECK(truthy(eval("!(params.a || params.b) && true")));
  CHECK(truthy(eval("params.missing == null")));
  CHECK(to_text(eval("params.a || 'fallback'")) == "fallback");
  CHECK(to_text(eval("42")) == "42");
  CHECK_FALSE(truthy(eval("params.x == 0", {{"params.x", std::string("nan")}})));  // "nan" is text, not a number
  auto refs = Expression::parse("success() && steps.test.outcome == 'succeeded' && params.env == 'x'").value();
  CHECK(refs.uses_status());
  REQUIRE(refs.references().size() == 2);
  CHECK(refs.references()[0] == std::vector<std::string>{"steps", "test", "outcome"});
}

TEST_CASE("expressions: malformed input names the position and what was expected") {
  auto err = [](std::string_view t) {
    auto e = Expression::parse(t);
    REQUIRE_FALSE(e);
    return e.error().message;
  };
  CHECK_THAT(err("params.env =="), Catch::Contains("expected a value"));
  CHECK_THAT(err("(success()"), Catch::Contains("expected ')'"));
  CHECK_THAT(err("deploy()"), Catch::Contains("known function"));
  CHECK_THAT(err("foo.bar"), Catch::Contains("params.X, steps.X or env.X"));
  CHECK_THAT(err("steps.build.stdout"), Catch::Contains("steps.ID.outputs.NAME or steps.ID.outcome"));
  CHECK_THAT(err("'open"), Catch::Contains("closing '"));
  CHECK_THAT(err("success() success()"), Catch::Contains("position 11"));
}

TEST_CASE("templates substitute ${{ }} parts and leave the rest") {
  auto t = Template::parse("deploy ${{ params.version }} to ${{ params.env }}!").value();
  ExprContext ctx;
  ctx.lookup = [](const std::vector<std::string>& p) -> std::optional<ExprValue> {
    return p[1] == "version" ? ExprValue(std::string("1.2")) : ExprValue(std::string("prod"));
  };
  CHECK(t.render(ctx) == "deploy 1.2 to prod!");
  CHECK(t.expressions().size() == 2);
  CHECK(Template::parse("plain").value().expressions().empty());
  CHECK(Template::parse("plain").value().render({}) == "plain");
  CHECK_THAT(Template::parse("a ${{ params.x").error().message, Catch::Contains("never closed"));
}

TEST_CASE("workflow definitions: a valid file parses with its steps in dependency order") {
  auto w = parse_workflow(R"json({
    "name": "deploy-production",
    "description": "Build, test and roll out",
    "params": {"version": {"default": "latest"}, "env": {"description": "target"}},
    "env": {"CI": "1"},
    "priority": 5, "max_concurrent_runs": 1,
    "concurrency": {"key": "deploy-${{ params.env }}", "on_conflict": "cancel_running"},
    "deadline": "30m",
    "steps": [
      {"id": "notify", "callback": "notify", "needs": ["deploy"], "if": "always()", "finally": true},
      {"id": "deploy", "shell": "./deploy.sh ${{ steps.build.outputs.artifact }}", "needs": ["test", "build"],
       "compensate": {"run": ["./rollback.sh"]}, "timeout": "10m", "retry": {"max_attempts": 3, "initial_delay": "1s"}},
      {"id": "build", "run": ["make", "VERSION=${{ params.version }}"], "outputs": ["artifact"]},
      {"id": "test", "run": ["make", "test"], "needs": "build", "continue_on_error": true},
      {"id": "ping", "http": {"method": "POST", "url": "http://127.0.0.1:8080/hook", "body": {"v": 1}, "expect_status": [200, 204]}},
      {"id": "backup", "action": {"name": "auto_backup", "with": {"keep": 5}}}
    ]})json");
  REQUIRE(w);
  CHECK(w->name == "deploy-production");
  CHECK(w->params.size() == 2);
  CHECK(w->on_conflict == ConflictPolicy::cancel_running);
  CHECK(w->deadline == std::chrono::minutes(30));
  CHECK(w->step("deploy")->action.kind == StepKind::shell);
  CHECK(w->step("deploy")->compensate->kind == StepKind::command);
  CHECK(w->step("deploy")->retry->max_attempts == 3);
  CHECK(w->step("test")->needs == std::vector<std::string>{"build"});
  CHECK(w->step("ping")->action.http->expect_status == std::vector<int>{200, 204});
  CHECK(w->step("backup")->action.with.at("keep").text() == "5");
  std::vector<std::string> order;
  for (auto i : w->topological_order()) order.push_back(w->steps[i].id);
  CHECK(order == std::vector<std::string>{"build", "test", "deploy", "notify", "ping", "backup"});
}

TEST_CASE("workflow definitions: every problem is reported at once with its JSON path") {
  const auto msg = problems(R"json({
    "name": "bad", "prority": 1,
    "steps": [
      {"id": "build", "run": []},
      {"id": "test", "run": ["t"], "needs": ["biuld"], "timout": "5m"},
      {"id": "test", "callback": "x", "shell": "y"},
      {"id": "ship", "run": ["${{ steps.test.outputs.version }}"], "if": "params.env == 'prod'", "timeout": "soon"}
    ]})json");
  CHECK_THAT(msg, Catch::Contains("test.json: "));
  CHECK_THAT(msg, Catch::Contains("$: unknown key \"prority\" (did you mean \"priority\"?)"));
  CHECK_THAT(msg, Catch::Contains("$.steps[0].run: must be a non-empty array"));
  CHECK_THAT(msg, Catch::Contains("$.steps[1]: unknown key \"timout\" (did you mean \"timeout\"?)"));
  CHECK_THAT(msg, Catch::Contains("$.steps[1].needs[0]: unknown step \"biuld\" (did you mean \"build\"?)"));
  CHECK_THAT(msg, Catch::Contains("$.steps[2]: has shell and callback: a step does exactly one thing"));
  CHECK_THAT(msg, Catch::Contains("$.steps[2].id: \"test\" is already the id of steps[1]"));
  CHECK_THAT(msg, Catch::Contains("$.steps[3].timeout: "));
  CHECK_THAT(msg, Catch::Contains("$.steps[3].if: \"params.env == 'prod'\" reads params.env, which the workflow does not declare"));
  CHECK_THAT(msg, Catch::Contains("$.steps[3].run[0]: \"steps.test.outputs.version\" reads steps.test, which step \"ship\" does not need"));
}

TEST_CASE("workflow definitions: a dependency cycle is named") {
  const auto msg = problems(R"json({"name": "loop", "steps": [
      {"id": "a", "run": ["true"], "needs": ["c"]},
      {"id": "b", "run": ["true"], "needs": ["a"]},
      {"id": "c", "run": ["true"], "needs": ["b"]},
      {"id": "d", "run": ["true"], "needs": ["d"]}]})json");
  CHECK_THAT(msg, Catch::Contains("dependency cycle: a -> c -> b -> a"));
  CHECK_THAT(msg, Catch::Contains("$.steps[3].needs[0]: a step cannot need itself"));
}

TEST_CASE("workflow definitions: outputs must be declared, and C++ definitions are checked the same way") {
  CHECK_THAT(problems(R"json({"name": "o", "steps": [
      {"id": "a", "run": ["true"], "outputs": ["x"]},
      {"id": "b", "run": ["echo", "${{ steps.a.outputs.y }}"], "needs": ["a"]}]})json"),
             Catch::Contains("reads output \"y\" of step \"a\", which declares outputs x"));
  CHECK_THAT(problems("[1]"), Catch::Contains("$: must be an object"));
  CHECK_THAT(problems("{\"name\": \"x\"}"), Catch::Contains("$.steps: must be a non-empty array"));
  CHECK_THAT(problems("{not json"), Catch::Contains("test.json"));

  WorkflowDefinition w;
  w.name = "in code";
  StepDefinition s;
  s.id = "one";
  s.action.kind = StepKind::callback;
  s.action.name = "f";
  s.needs = {"two"};
  w.steps.push_back(s);
  auto v = validate(w);
  REQUIRE_FALSE(v);
  CHECK_THAT(v.error().message, Catch::Contains("$.name: \"in code\" must be letters"));
  CHECK_THAT(v.error().message, Catch::Contains("unknown step \"two\""));
}

TEST_CASE("workflow definitions: no second-hand errors after a cycle, and the concurrency key reads params only") {
  const auto msg = problems(R"json({"name": "c", "concurrency": {"key": "k-${{ steps.a.outcome }}"}, "steps": [
      {"id": "a", "run": ["true"], "needs": ["b"], "outputs": ["x", "x"]},
      {"id": "b", "run": ["echo", "${{ steps.a.outputs.x }}"], "needs": ["a", "a"]}]})json");
  CHECK_THAT(msg, Catch::Contains("dependency cycle"));
  CHECK_THAT(msg, !Catch::Contains("does not need"));  // b does need a; the cycle is the problem
  CHECK_THAT(msg, Catch::Contains("$.concurrency.key: \"steps.a.outcome\" reads steps.a, but this is decided before any step runs"));
  CHECK_THAT(msg, Catch::Contains("$.steps[0].outputs: output \"x\" is listed twice"));
  CHECK_THAT(msg, Catch::Contains("$.steps[1].needs: step \"a\" is listed twice"));
}

TEST_CASE("workflow definitions: validate() checks what the JSON reader would for definitions built in C++") {
  WorkflowDefinition w;
  w.name = "code";
  w.deadline = Duration::zero();
  StepDefinition a;
  a.id = "a";
  a.action.kind = StepKind::callback;  // no name
  a.timeout = -std::chrono::seconds(1);
  a.outputs = {"bad name"};
  StepDefinition b;
  b.id = "b";
  b.action.kind = StepKind::http;  // no url
  b.compensate = StepAction{};     // a command without argv
  w.steps = {a, b};
  auto v = validate(w);
  REQUIRE_FALSE(v);
  const auto& m = v.error().message;
  CHECK_THAT(m, Catch::Contains("$.steps[0]: a callback step needs a name"));
  CHECK_THAT(m, Catch::Contains("$.steps[0].timeout: must be more than zero"));
  CHECK_THAT(m, Catch::Contains("output name \"bad name\""));
  CHECK_THAT(m, Catch::Contains("$.steps[1].http: needs \"url\""));
  CHECK_THAT(m, Catch::Contains("$.steps[1].compensate.run: needs at least the program"));
  CHECK_THAT(m, Catch::Contains("$.deadline: must be more than zero"));
}

TEST_CASE("workflow definitions: a callback's with round-trips for steps and compensations, and only callbacks take it beside them") {
  auto w = parse_workflow(R"({"name":"pay","steps":[{"id":"charge","callback":"charge","with":{"amount":"5"},
    "compensate":{"callback":"refund","with":{"amount":"5","why":"rollback"}}}]})",
                          "pay.json");
  REQUIRE(w);
  CHECK(w->steps[0].action.with.at("amount").text() == "5");
  REQUIRE(w->steps[0].compensate);
  CHECK(w->steps[0].compensate->with.at("why").text() == "rollback");
  // What the engine stores for a run reads back the same (a resume runs what was started).
  auto again = parse_workflow(to_json(*w), "stored");
  REQUIRE(again);
  CHECK(to_json(*again) == to_json(*w));
  CHECK(again->steps[0].compensate->with.at("amount").text() == "5");

  auto bad = parse_workflow(R"({"name":"x","steps":[{"id":"a","shell":"true","with":{"k":"v"}},
    {"id":"b","shell":"true","compensate":{"shell":"false","with":{"k":"v"}}}]})",
                            "x.json");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("$.steps[0].with: only a callback step takes \"with\" here"));
  CHECK_THAT(bad.error().message, Catch::Contains("$.steps[1].compensate.with: only a callback step takes \"with\" here"));
}
