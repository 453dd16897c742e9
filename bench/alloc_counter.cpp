#include "alloc_counter.hpp"

#include <cstdlib>
#include <new>

namespace automation::bench {
std::atomic<std::uint64_t> g_allocations{0};
}

void* operator new(std::size_t n) {
  automation::bench::g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
