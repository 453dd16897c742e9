#include <automation/core/ids.hpp>

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>

#include <unistd.h>

namespace automation {
namespace {

// A per-thread generator seeded from the OS and the thread; ids need uniqueness, not secrecy.
std::uint64_t next_random() {
  thread_local std::mt19937_64 gen = [] {
    static std::atomic<std::uint64_t> counter{0};
    std::random_device rd;
    std::seed_seq seq{rd(), rd(), static_cast<unsigned>(::getpid()),
                      static_cast<unsigned>(std::chrono::steady_clock::now().time_since_epoch().count()),
                      static_cast<unsigned>(counter.fetch_add(1))};
    return std::mt19937_64(seq);
  }();
  return gen();
}

}  // namespace

std::string generate_id() {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(32, '0');
  std::uint64_t hi = next_random(), lo = next_random();
  if (hi == 0 && lo == 0) lo = 1;
  for (int i = 0; i < 16; ++i) {
    out[15 - i] = kHex[(hi >> (4 * i)) & 0xf];
    out[31 - i] = kHex[(lo >> (4 * i)) & 0xf];
  }
  return out;
}

bool is_trace_id(std::string_view s) noexcept {
  if (s.size() != 32) return false;
  bool nonzero = false;
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
    if (c != '0') nonzero = true;
  }
  return nonzero;
}

std::string host_name() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) return "unknown";
  return host;
}

std::string this_process() { return fmt::format("pid {} on {}", static_cast<long>(::getpid()), host_name()); }

}  // namespace automation
