#pragma once
/// Workflow definitions: what a workflow is, from JSON files or built in C++, validated before
/// anything runs. Validation reports every problem at once, each with its JSON path
/// ("$.steps[2].needs[0]: unknown step \"tset\" (did you mean \"test\"?)"); a dependency cycle is
/// named ("build -> test -> build").
/// JSON shape (docs/workflows.md has the full reference):
///   {"name": "deploy", "description": "...", "params": {"version": {"default": "latest"}},
///    "env": {"K": "v"}, "priority": 0, "max_concurrent_runs": 1,
///    "concurrency": {"key": "deploy-${{ params.env }}", "on_conflict": "queue"}, "deadline": "30m",
///    "on_interrupt": "resume",
///    "steps": [{"id": "build", "run": ["make", "all"], "outputs": ["version"], "timeout": "10m",
///               "retry": {"max_attempts": 3}, "breaker": "payments", "needs": [], "if": "success()", "continue_on_error": false,
///               "working_directory": "/src", "env": {}, "compensate": {"run": ["make", "clean"]},
///               "finally": false}]}
/// A step does exactly one of: "run" (argv), "shell" (a string run by /bin/sh -c, only when asked
/// for explicitly), "callback" (a C++ function the embedder registers by name), "http" (a request),
/// "workflow" (a sub-workflow) or "action" (a built-in action).
/// Thread-safety: a definition is a value; share it const.
#include <automation/core/clock.hpp>
#include <automation/core/error.hpp>
#include <automation/resilience/retry.hpp>
#include <automation/workflow/expression.hpp>

#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace automation::workflow {

enum class StepKind : std::uint8_t { command, shell, callback, http, workflow, action };
std::string_view to_string(StepKind k) noexcept;

enum class ConflictPolicy : std::uint8_t { queue, cancel_running, skip };
std::string_view to_string(ConflictPolicy p) noexcept;

/// What the next engine does with a run whose engine died: resume it (finished steps keep their
/// outcome and outputs, interrupted steps run again), restart it from the first step as a new
/// run, or leave it interrupted.
enum class InterruptPolicy : std::uint8_t { resume, restart, fail };
std::string_view to_string(InterruptPolicy p) noexcept;

struct HttpRequest {
  std::string method = "GET";
  Template url;
  std::map<std::string, Template> headers;
  std::optional<Template> body;
  std::vector<int> expect_status;  ///< empty: any 2xx
};

/// What a step does (one of the kinds).
struct StepAction {
  StepKind kind = StepKind::command;
  std::vector<Template> argv;            ///< command
  std::optional<Template> shell;         ///< shell
  std::string name;                      ///< callback, workflow or action name
  std::map<std::string, Template> with;  ///< workflow params or action arguments
  std::optional<HttpRequest> http;
};

struct StepDefinition {
  std::string id;
  std::string name;  ///< for people (default: the id)
  StepAction action;
  std::vector<std::string> needs;
  std::optional<Expression> condition;  ///< `if`; default success()
  bool continue_on_error = false;
  std::optional<resilience::RetryPolicy> retry;
  /// A circuit breaker (its name) around each attempt: while it is open an attempt fails at once
  /// with errc::unavailable and is not made; each attempt's outcome is reported to it. Empty: none.
  std::string breaker;
  std::optional<Duration> timeout;
  std::optional<Template> working_directory;
  std::map<std::string, Template> env;
  std::vector<std::string> outputs;      ///< names read from stdout lines "NAME=value"
  std::optional<StepAction> compensate;  ///< rollback, run in reverse order when the run fails
  bool finally = false;                  ///< runs after the others whatever happened
};

struct ParamDefinition {
  std::string name;
  std::optional<std::string> default_value;  ///< no default: the parameter is required
  std::string description;
};

struct WorkflowDefinition {
  std::string name;
  std::string description;
  std::vector<ParamDefinition> params;
  std::map<std::string, std::string> env;
  int priority = 0;             ///< higher runs first when runs wait for a slot
  int max_concurrent_runs = 0;  ///< 0: no limit
  std::optional<Template> concurrency_key;
  ConflictPolicy on_conflict = ConflictPolicy::queue;
  std::optional<Duration> deadline;
  InterruptPolicy on_interrupt = InterruptPolicy::resume;
  std::vector<StepDefinition> steps;

  const StepDefinition* step(std::string_view id) const;
  /// Step indices in an order where every step comes after its needs (stable: file order first).
  std::vector<std::size_t> topological_order() const;
};

/// Parses and validates JSON text; `source` names it in errors (a file path). Every problem is
/// listed in one errc::invalid_argument error, one per line.
Result<WorkflowDefinition> parse_workflow(std::string_view json_text, std::string_view source = "workflow");
Result<WorkflowDefinition> load_workflow_file(const std::string& path);
/// The JSON form parse_workflow reads back to an equal definition (a run stores it, so a resume
/// runs exactly what was started).
std::string to_json(const WorkflowDefinition& w);
/// Checks a definition built in C++ the same way (names, ids, needs, cycles, references).
Result<void> validate(const WorkflowDefinition& w);

}  // namespace automation::workflow
