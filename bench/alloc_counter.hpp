#pragma once
// Counts heap allocations made by this process (global operator new is replaced in alloc_counter.cpp).
#include <atomic>
#include <cstdint>

namespace automation::bench {
extern std::atomic<std::uint64_t> g_allocations;
}
