#pragma once
/// @file aligned.hpp
/// @brief A std::vector whose buffer starts on a 64-byte boundary.
///
/// SIMD kernels load 64-byte chunks of their inputs; from a plain vector
/// (16-byte aligned) every such load may span two cache lines and cost two
/// loads, which made the packed GEMV ~25% slower on Zen 5.

#include <cstddef>
#include <new>
#include <vector>

namespace tcq {

/// Allocator of `Align`-byte aligned storage (a power of two ≥ alignof(T)).
template <class T, std::size_t Align = 64>
struct aligned_allocator {
    static_assert(Align >= alignof(T) && (Align & (Align - 1)) == 0, "alignment must be a power of two ≥ alignof(T)");
    using value_type = T;  ///< element type
    /// The same allocator for another element type.
    template <class U>
    struct rebind {
        using other = aligned_allocator<U, Align>;  ///< the rebound allocator
    };
    aligned_allocator() noexcept = default;
    /// Converting copy (stateless).
    template <class U>
    aligned_allocator(const aligned_allocator<U, Align>&) noexcept {}
    /// Storage for n elements on an `Align`-byte boundary (throws std::bad_alloc).
    [[nodiscard]] T* allocate(std::size_t n) {
        return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{Align}));
    }
    /// Frees storage from allocate(n). Unsized: clang does not declare sized
    /// deallocation unless -fsized-deallocation is given.
    void deallocate(T* p, std::size_t) noexcept { ::operator delete(p, std::align_val_t{Align}); }
    /// Stateless: all instances are interchangeable.
    template <class U>
    bool operator==(const aligned_allocator<U, Align>&) const noexcept {
        return true;
    }
};

/// std::vector with a 64-byte aligned buffer.
template <class T>
using aligned_vector = std::vector<T, aligned_allocator<T>>;

}  // namespace tcq
