#pragma once
/// Errors as values: `errc` (stable snake_case names shared by the library, the CLI's JSON errors and
/// the HTTP API), `Error` (a code plus a message saying what and where), and `Result<T>`.
/// Thread-safety: all functions are pure and safe to call from any thread.
#include <boost/assert/source_location.hpp>
#include <boost/system/result.hpp>

#include <iosfwd>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>

namespace automation {

/// Error conditions. The numeric values are internal; the names (see to_string) are the stable API.
enum class errc {
  invalid_argument = 1,  ///< bad input: a parser or a caller gave something malformed
  not_found,             ///< the thing named does not exist
  already_exists,        ///< create-if-absent found it present
  conflict,              ///< a compare-and-set lost against a concurrent writer
  busy,                  ///< the resource is locked by someone else right now; retry later
  io,                    ///< reading or writing a file, socket or database failed
  corrupt,               ///< stored data is damaged or is not what it claims to be
  schema_too_new,        ///< the database was written by a newer version; it is left untouched
  timeout,               ///< a deadline passed
  unavailable,           ///< a dependency cannot be reached (or a circuit is open)
  permission_denied,     ///< the caller may not do this
  cancelled,             ///< the work was cancelled before it finished
  config,                ///< configuration is missing, unknown or of the wrong type
  internal,              ///< a bug: an invariant did not hold
  unauthenticated,       ///< the caller did not prove who it is (no credentials, or wrong ones)
};

}  // namespace automation

template <>
struct std::is_error_code_enum<automation::errc> : std::true_type {};

namespace automation {}  // namespace automation

namespace automation {

/// The error category of `errc`; its name is "automation".
const std::error_category& error_category() noexcept;
std::error_code make_error_code(errc e) noexcept;

/// Stable snake_case name ("not_found", "schema_too_new", ...).
std::string_view to_string(errc e) noexcept;
/// Inverse of to_string; nullopt for an unknown name.
std::optional<errc> errc_from_string(std::string_view name) noexcept;

/// An error: a code and a human-readable message naming what went wrong and where.
struct Error {
  std::error_code code;
  std::string message;

  Error() = default;
  Error(errc e, std::string msg) : code(make_error_code(e)), message(std::move(msg)) {}
  Error(std::error_code c, std::string msg) : code(c), message(std::move(msg)) {}

  /// The errc this error is; codes of other categories map to errc::io (system) or errc::internal.
  errc kind() const noexcept;
  /// The stable name of kind().
  std::string_view name() const noexcept { return to_string(kind()); }
  bool is(errc e) const noexcept { return kind() == e; }
  /// "message" or, when the message is empty, the code's description.
  std::string what() const;
};

/// Prints "name: message" (used by test frameworks and boost::system::result's printer).
template <class Ch, class Tr>
std::basic_ostream<Ch, Tr>& operator<<(std::basic_ostream<Ch, Tr>& os, const Error& e) {
  return os << e.name() << ": " << e.what();
}

/// Thrown only by Result<T>::value() on an error and by constructors that cannot succeed.
class Exception : public std::runtime_error {
 public:
  explicit Exception(Error e) : std::runtime_error(e.what()), error_(std::move(e)) {}
  const Error& error() const noexcept { return error_; }

 private:
  Error error_;
};

/// ADL hook used by boost::system::result<T, Error>::value().
[[noreturn]] void throw_exception_from_error(const Error& e, const boost::source_location& loc);

template <class T>
using Result = boost::system::result<T, Error>;

/// Shorthand for building an error value: `return fail(errc::not_found, "no breaker 'x'");`
inline Error fail(errc e, std::string message) { return Error(e, std::move(message)); }

/// Prefix an error's message with context ("config.json: ...") keeping its code.
inline Error with_context(Error e, std::string_view context) {
  e.message = std::string(context) + ": " + e.message;
  return e;
}

}  // namespace automation
