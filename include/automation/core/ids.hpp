#pragma once
/// Identifiers: random 128-bit ids as 32 lowercase hex digits (the W3C trace-id form, so a
/// correlation id can travel in a `traceparent` header). Thread-safety: safe from any thread.
#include <string>
#include <string_view>

namespace automation {

/// 32 random lowercase hex digits, never all zeros.
std::string generate_id();
/// True for 32 lowercase hex digits that are not all zeros.
bool is_trace_id(std::string_view s) noexcept;

/// This machine's host name, as owners and origins name it ("unknown" when it cannot be read).
std::string host_name();
/// This process as owners and origins name it: "pid 4242 on web1".
std::string this_process();

}  // namespace automation
