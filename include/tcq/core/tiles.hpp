#pragma once
/// @file tiles.hpp
/// @brief Fixed 2-D tiling of a matrix-shaped job over the execution policy.
///
/// The GEMM-shaped steps of GPTQ (Hessian XᵀX, Cholesky and triangular
/// inverse updates, the lazy block update) run as one Eigen product per tile.
/// Tile boundaries depend only on the problem size, never on the thread count,
/// and each tile writes a disjoint part of the output, so results are
/// bit-identical for any number of threads. Each tile's Eigen product must be
/// single-threaded: Eigen's own OpenMP GEMM splits rows by its thread count and
/// handles split remainders with other micro-kernels (other summation order),
/// so tile bodies run under eigen_serial. Caveat: a user's explicit
/// Eigen::setNbThreads(n > 1) overrides it when tiles run outside a parallel
/// region (seq() or a non-OpenMP executor).

#include <algorithm>

#include "tcq/core/parallel.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace tcq {

/// RAII: Eigen products in scope run on the calling thread only. Outside an
/// OpenMP team it sets this thread's nthreads ICV to 1 (Eigen reads it via
/// omp_get_max_threads) and restores it; inside a team Eigen is serial anyway.
class eigen_serial {
public:
    eigen_serial() {
#if defined(_OPENMP)
        if (omp_get_num_threads() == 1) {
            old_ = omp_get_max_threads();
            omp_set_num_threads(1);
        }
#endif
    }
    ~eigen_serial() {
#if defined(_OPENMP)
        if (old_ > 0) omp_set_num_threads(old_);
#endif
    }
    eigen_serial(const eigen_serial&) = delete;
    eigen_serial& operator=(const eigen_serial&) = delete;

private:
    [[maybe_unused]] int old_ = 0;
};

/// Calls `f(r0, r1, c0, c1)` for every tile of an `m × n` index space cut into
/// `tm × tn` tiles (the last row/column of tiles may be smaller), in parallel.
template <class F>
void parallel_tiles(const exec_policy& pol, index_t m, index_t n, index_t tm, index_t tn, F&& f) {
    require(tm > 0 && tn > 0, "parallel_tiles: tile extents must be positive, got ", tm, "x", tn);
    if (m <= 0 || n <= 0) return;
    const index_t bm = (m + tm - 1) / tm, bn = (n + tn - 1) / tn;
    run_tasks(pol, bm * bn, [&](index_t t) {
        const index_t i = t / bn, j = t % bn;
        const eigen_serial serial;
        f(i * tm, std::min(m, (i + 1) * tm), j * tn, std::min(n, (j + 1) * tn));
    });
}

/// Calls `f(i0, i1, j0, j1)` for every tile (i, j) with i ≥ j of the lower
/// triangle of an `n × n` index space cut into `t × t` tiles, in parallel.
template <class F>
void parallel_lower_tiles(const exec_policy& pol, index_t n, index_t t, F&& f) {
    require(t > 0, "parallel_lower_tiles: tile extent must be positive, got ", t);
    if (n <= 0) return;
    const index_t b = (n + t - 1) / t;
    run_tasks(pol, b * (b + 1) / 2, [&](index_t k) {
        // k enumerates (i, j), j ≤ i, row by row: k = i(i+1)/2 + j.
        index_t i = 0;
        while ((i + 1) * (i + 2) / 2 <= k) ++i;
        const index_t j = k - i * (i + 1) / 2;
        const eigen_serial serial;
        f(i * t, std::min(n, (i + 1) * t), j * t, std::min(n, (j + 1) * t));
    });
}

}  // namespace tcq
