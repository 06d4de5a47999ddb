#pragma once
/// @file parallel.hpp
/// @brief Execution policy with fixed, deterministic partitioning.
///
/// Work is cut into chunks whose boundaries depend only on the problem size and
/// the grain, never on the thread count. Each chunk writes disjoint outputs and
/// reductions combine chunk partials in chunk order, so results are
/// bit-identical for 1, 2 or N threads, and for any user executor.

#include <algorithm>
#include <atomic>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "tcq/core/config.hpp"
#include "tcq/core/error.hpp"

#if defined(_OPENMP)
#include <omp.h>
#endif

namespace tcq {

/// How a kernel runs its chunks.
struct exec_policy {
    /// Worker count; 0 means std::thread::hardware_concurrency().
    int threads = 1;
    /// Optional user executor: must call `task(i)` exactly once for every
    /// i in [0, n_tasks), in any order and on any threads, and return after all.
    std::function<void(index_t n_tasks, const std::function<void(index_t)>& task)> executor;

    /// The worker count to use: `threads`, or the hardware concurrency if 0.
    [[nodiscard]] int resolved_threads() const {
        if (threads > 0) return threads;
        const unsigned hc = std::thread::hardware_concurrency();
        return hc ? static_cast<int>(hc) : 1;
    }
};

/// Sequential policy.
inline exec_policy seq() { return exec_policy{1, {}}; }
/// Parallel policy with `n` threads (0 = all cores).
inline exec_policy par(int n = 0) { return exec_policy{n, {}}; }

/// Runs `task(i)` for i in [0, n). Exceptions from tasks are rethrown (first one wins).
template <class F>
void run_tasks(const exec_policy& pol, index_t n, F&& task) {
    if (n <= 0) return;
    if (pol.executor) {
        pol.executor(n, std::function<void(index_t)>(task));
        return;
    }
    const int t = static_cast<int>(std::min<index_t>(pol.resolved_threads(), n));
    if (t <= 1) {
        for (index_t i = 0; i < n; ++i) task(i);
        return;
    }
    std::exception_ptr first;
    std::mutex m;
#if defined(_OPENMP)
#pragma omp parallel for schedule(dynamic, 1) num_threads(t)
    for (index_t i = 0; i < n; ++i) {
        try {
            task(i);
        } catch (...) {
            std::lock_guard lk(m);
            if (!first) first = std::current_exception();
        }
    }
#else
    std::atomic<index_t> next{0};
    auto worker = [&] {
        for (index_t i; (i = next.fetch_add(1)) < n;) {
            try {
                task(i);
            } catch (...) {
                std::lock_guard lk(m);
                if (!first) first = std::current_exception();
            }
        }
    };
    std::vector<std::thread> pool;
    for (int k = 1; k < t; ++k) pool.emplace_back(worker);
    worker();
    for (auto& th : pool) th.join();
#endif
    if (first) std::rethrow_exception(first);
}

/// Runs `body(begin, end)` over chunks [k·grain, min((k+1)·grain, n)).
template <class F>
void parallel_for(const exec_policy& pol, index_t n, index_t grain, F&& body) {
    require(grain > 0, "parallel_for: grain must be positive, got ", grain);
    const index_t chunks = (n + grain - 1) / grain;
    run_tasks(pol, chunks, [&](index_t k) { body(k * grain, std::min(n, (k + 1) * grain)); });
}

/// Deterministic reduction: `partial(begin, end)` per fixed chunk, then the
/// partials are folded left to right with `combine`.
template <class T, class F, class C>
T parallel_reduce(const exec_policy& pol, index_t n, index_t grain, T init, F&& partial, C&& combine) {
    require(grain > 0, "parallel_reduce: grain must be positive, got ", grain);
    const index_t chunks = n > 0 ? (n + grain - 1) / grain : 0;
    // One slot per chunk, not std::vector<T>: for T = bool its packed bits
    // would share words across threads (a data race) and `auto&` cannot bind.
    struct slot { T value; };
    std::vector<slot> parts(static_cast<std::size_t>(chunks), slot{init});
    run_tasks(pol, chunks, [&](index_t k) {
        parts[static_cast<std::size_t>(k)].value = partial(k * grain, std::min(n, (k + 1) * grain));
    });
    T acc = init;
    for (const auto& p : parts) acc = combine(acc, p.value);
    return acc;
}

}  // namespace tcq
