#include "core/block_cache.hpp"

#include <array>

namespace brine::core::block_cache {

namespace {

#if defined(__SANITIZE_ADDRESS__)
constexpr bool kKeepAny = false;  // AddressSanitizer must see every block freed, to catch a use after it
#else
constexpr bool kKeepAny = true;
#endif

struct Block {
  void* p;
  std::size_t bytes;
  std::size_t align;
};

class Kept {
 public:
  Kept() = default;
  Kept(const Kept&) = delete;
  Kept& operator=(const Kept&) = delete;
  ~Kept() {
    for (std::size_t i = 0; i < count_; ++i) release(blocks_[i]);
    count_ = 0;
    gone = true;  // blocks given back later on this thread (thread_local destruction order) are freed
  }

  /// A kept block of this size and alignment, removed from the list; nullptr if none.
  void* take(std::size_t bytes, std::size_t align) {
    for (std::size_t i = count_; i-- > 0;) {
      if (blocks_[i].bytes == bytes && blocks_[i].align == align) {
        void* p = blocks_[i].p;
        bytes_ -= bytes;
        blocks_[i] = blocks_[--count_];
        return p;
      }
    }
    return nullptr;
  }
  bool keep(void* p, std::size_t bytes, std::size_t align) {
    if (!kKeepAny || count_ == kKeepBlocks || bytes > kKeepBytes - bytes_) return false;
    blocks_[count_++] = Block{p, bytes, align};
    bytes_ += bytes;
    return true;
  }

  [[nodiscard]] KeptCount count() const { return {count_, bytes_}; }

  static thread_local bool gone;  ///< trivially destructible: still valid after the list is destroyed

 private:
  static void release(const Block& b) { ::operator delete(b.p, std::align_val_t{b.align}); }

  std::array<Block, kKeepBlocks> blocks_{};
  std::size_t count_ = 0;
  std::size_t bytes_ = 0;
};

thread_local bool Kept::gone = false;
thread_local Kept t_kept;

}  // namespace

void* take(std::size_t bytes, std::align_val_t align) {
  if (!Kept::gone) {
    if (void* p = t_kept.take(bytes, static_cast<std::size_t>(align))) return p;
  }
  return ::operator new(bytes, align);
}

void give(void* p, std::size_t bytes, std::align_val_t align) noexcept {
  if (p == nullptr) return;
  if (!Kept::gone && t_kept.keep(p, bytes, static_cast<std::size_t>(align))) return;
  ::operator delete(p, align);
}

KeptCount kept() noexcept { return Kept::gone ? KeptCount{0, 0} : t_kept.count(); }

}  // namespace brine::core::block_cache
