// Large weight buffers on transparent huge pages. Decoding streams every weight once per token;
// with 4 KB pages that is a TLB miss per 4 KB and the hardware prefetchers stop at each page
// boundary. Linux's THP is often in "madvise" mode, so a buffer gets 2 MB pages only when asked
// before it is first touched: allocate 2 MB-aligned, madvise(MADV_HUGEPAGE), then fill.
#pragma once
#include <cstddef>
#include <new>

namespace anetrain {

void* huge_alloc(size_t bytes);  // zeroed; 64-byte aligned (2 MB aligned from 2 MB up)
void huge_free(void* p) noexcept;

template <class T>
struct HugePageAllocator {
  using value_type = T;
  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) {}
  T* allocate(size_t n) { return static_cast<T*>(huge_alloc(n * sizeof(T))); }
  void deallocate(T* p, size_t) noexcept { huge_free(p); }
  template <class U>
  bool operator==(const HugePageAllocator<U>&) const { return true; }
  template <class U>
  bool operator!=(const HugePageAllocator<U>&) const { return false; }
};

}  // namespace anetrain
