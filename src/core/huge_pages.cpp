#include "core/huge_pages.h"

#include <sys/mman.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace anetrain {

void* huge_alloc(size_t bytes) {
  constexpr size_t kHuge = size_t(2) << 20;
  const size_t align = bytes >= kHuge ? kHuge : 64;
  if (bytes > SIZE_MAX - align) throw std::bad_alloc();
  const size_t rounded = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, rounded == 0 ? align : rounded);
  if (!p) throw std::bad_alloc();
  // Advice only: where THP is off or unsupported the buffer simply keeps 4 KB pages.
  if (align == kHuge) ::madvise(p, rounded, MADV_HUGEPAGE);
  std::memset(p, 0, rounded == 0 ? align : rounded);
  return p;
}

void huge_free(void* p) noexcept { std::free(p); }

}  // namespace anetrain
