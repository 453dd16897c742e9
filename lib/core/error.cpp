#include <automation/core/error.hpp>

#include <array>
#include <utility>

namespace automation {
namespace {

constexpr std::array<std::pair<errc, std::string_view>, 15> kNames{{
    {errc::invalid_argument, "invalid_argument"},
    {errc::not_found, "not_found"},
    {errc::already_exists, "already_exists"},
    {errc::conflict, "conflict"},
    {errc::busy, "busy"},
    {errc::io, "io"},
    {errc::corrupt, "corrupt"},
    {errc::schema_too_new, "schema_too_new"},
    {errc::timeout, "timeout"},
    {errc::unavailable, "unavailable"},
    {errc::permission_denied, "permission_denied"},
    {errc::cancelled, "cancelled"},
    {errc::config, "config"},
    {errc::internal, "internal"},
    {errc::unauthenticated, "unauthenticated"},
}};

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "automation"; }
  std::string message(int ev) const override {
    switch (static_cast<errc>(ev)) {
      case errc::invalid_argument:
        return "invalid argument";
      case errc::not_found:
        return "not found";
      case errc::already_exists:
        return "already exists";
      case errc::conflict:
        return "conflict with a concurrent change";
      case errc::busy:
        return "resource busy";
      case errc::io:
        return "input/output error";
      case errc::corrupt:
        return "data is corrupt";
      case errc::schema_too_new:
        return "schema written by a newer version";
      case errc::timeout:
        return "timed out";
      case errc::unavailable:
        return "unavailable";
      case errc::permission_denied:
        return "permission denied";
      case errc::cancelled:
        return "cancelled";
      case errc::config:
        return "configuration error";
      case errc::internal:
        return "internal error";
      case errc::unauthenticated:
        return "not authenticated";
    }
    return "unknown automation error";
  }
};

}  // namespace

const std::error_category& error_category() noexcept {
  static const Category category;
  return category;
}

std::error_code make_error_code(errc e) noexcept { return {static_cast<int>(e), error_category()}; }

std::string_view to_string(errc e) noexcept {
  for (const auto& [code, name] : kNames)
    if (code == e) return name;
  return "internal";
}

std::optional<errc> errc_from_string(std::string_view name) noexcept {
  for (const auto& [code, n] : kNames)
    if (n == name) return code;
  return std::nullopt;
}

errc Error::kind() const noexcept {
  if (code.category() == error_category()) {
    const int v = code.value();
    if (v >= static_cast<int>(errc::invalid_argument) && v <= static_cast<int>(errc::unauthenticated)) return static_cast<errc>(v);
    return errc::internal;
  }
  if (code == std::errc::timed_out) return errc::timeout;
  if (code == std::errc::no_such_file_or_directory) return errc::not_found;
  if (code == std::errc::permission_denied) return errc::permission_denied;
  if (code == std::errc::operation_canceled) return errc::cancelled;
  if (code == std::errc::invalid_argument) return errc::invalid_argument;
  if (code.category() == std::system_category() || code.category() == std::generic_category()) return errc::io;
  return errc::internal;
}

std::string Error::what() const {
  if (!message.empty()) return message;
  return code ? code.message() : std::string("unknown error");
}

void throw_exception_from_error(const Error& e, const boost::source_location&) { throw Exception(e); }

}  // namespace automation
