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
#include <chrono>
#include <condition_variable>
#include <cstdint>
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

/// Who runs the chunks of a parallel policy.
enum class backend {
    /// tcq's persistent pool of std::threads (the default). Idle workers block
    /// instead of spinning, so tcq coexists with an engine's own threads:
    /// GOMP's default spin-wait was measured burning ~30% of 2 cores beside
    /// the llama2c engine's std::threads.
    pool,
    /// An OpenMP parallel-for (when compiled with OpenMP; else the pool).
    openmp,
};

/// How a kernel runs its chunks.
struct exec_policy {
    /// Worker count; 0 means std::thread::hardware_concurrency().
    int threads = 1;
    /// Optional user executor: must call `task(i)` exactly once for every
    /// i in [0, n_tasks), in any order and on any threads, and return after all.
    std::function<void(index_t n_tasks, const std::function<void(index_t)>& task)> executor;
    /// Threading runtime when no executor is given.
    tcq::backend backend = tcq::backend::pool;
    /// Pool only: microseconds an idle worker (and the caller, waiting for
    /// the last worker) polls before blocking. Waking a blocked thread takes
    /// ~20 µs here, which back-to-back kernels such as one GEMV per layer
    /// would otherwise pay at every call (measured: mean 2-thread GEMV 4096²
    /// ~25% above its fastest call). Bounded, so an idle pool gives the cores
    /// back to the engine's own threads soon after; 0 always blocks.
    int spin_us = 50;

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

namespace detail {

/// A pause hint for spin loops.
inline void spin_pause() {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    asm volatile("yield");
#endif
}

/// Polls `done()` for up to `us` microseconds; true once it holds.
template <class P>
bool spin_until(int us, P&& done) {
    if (us <= 0) return done();
    const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
    for (;;) {
        for (int i = 0; i < 64; ++i) {
            if (done()) return true;
            spin_pause();
        }
        if (std::chrono::steady_clock::now() >= until) return done();
    }
}

/// True on a thread that is running tcq tasks: nested parallel calls then
/// run inline, so a task may call any tcq kernel without deadlock.
inline thread_local bool in_parallel_region = false;

/// Process-wide pool of workers that poll briefly, then block; started on
/// first use and grown on demand. One job at a time; the calling thread
/// takes part in its job.
class thread_pool {
public:
    static thread_pool& instance() {
        static thread_pool p;
        return p;
    }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;
    ~thread_pool() {
        {
            std::lock_guard lk(m_);
            stop_ = true;
        }
        wake_.notify_all();
        for (auto& t : workers_) t.join();
    }

    /// Runs task(i) for i in [0, n) on the caller plus up to `helpers` workers,
    /// which then poll for the next job for `spin_us` before blocking.
    void run(index_t n, int helpers, const std::function<void(index_t)>& task, int spin_us = 0) {
        std::lock_guard job_lock(job_m_);  // one job at a time
        {
            std::unique_lock lk(m_);
            while (static_cast<int>(workers_.size()) < helpers) workers_.emplace_back([this] { work(); });
            task_ = &task;
            n_ = n;
            next_.store(0);
            seats_ = helpers;
            busy_.store(0);
            error_ = nullptr;
            spin_us_ = spin_us;
            generation_.fetch_add(1, std::memory_order_release);
        }
        wake_.notify_all();
        consume();
        {
            std::lock_guard lk(m_);
            seats_ = 0;  // late workers skip this job
        }
        spin_until(spin_us, [&] { return busy_.load(std::memory_order_acquire) == 0; });
        std::unique_lock lk(m_);
        done_.wait(lk, [&] { return busy_.load() == 0; });
        task_ = nullptr;
        if (error_) std::rethrow_exception(error_);
    }

private:
    thread_pool() = default;

    void consume() {
        const bool outer = in_parallel_region;
        in_parallel_region = true;
        for (index_t i; (i = next_.fetch_add(1)) < n_;) {
            try {
                (*task_)(i);
            } catch (...) {
                std::lock_guard lk(m_);
                if (!error_) error_ = std::current_exception();
            }
        }
        in_parallel_region = outer;
    }

    void work() {
        std::uint64_t seen = 0;
        int spin = 0;
        for (;;) {
            // Poll first: the next job of back-to-back kernels usually comes
            // within microseconds, faster than a blocked thread wakes.
            spin_until(spin, [&] {
                return stop_.load(std::memory_order_acquire) || generation_.load(std::memory_order_acquire) != seen;
            });
            std::unique_lock lk(m_);
            wake_.wait(lk, [&] { return stop_ || (generation_.load() != seen && seats_ > 0); });
            if (stop_) return;
            seen = generation_.load();
            spin = spin_us_;
            --seats_;
            busy_.fetch_add(1);
            lk.unlock();
            consume();
            lk.lock();
            if (busy_.fetch_sub(1) == 1) done_.notify_all();
        }
    }

    std::mutex job_m_;
    std::mutex m_;
    std::condition_variable wake_, done_;
    std::vector<std::thread> workers_;
    const std::function<void(index_t)>* task_ = nullptr;
    index_t n_ = 0;
    std::atomic<index_t> next_{0};
    int seats_ = 0;
    int spin_us_ = 0;
    // Written under m_, polled without it by spinning threads:
    std::atomic<int> busy_{0};
    std::atomic<std::uint64_t> generation_{0};
    std::atomic<bool> stop_{false};
    std::exception_ptr error_;
};

}  // namespace detail

/// Runs `task(i)` for i in [0, n). Exceptions from tasks are rethrown (first one wins).
template <class F>
void run_tasks(const exec_policy& pol, index_t n, F&& task) {
    if (n <= 0) return;
    if (pol.executor) {
        pol.executor(n, std::function<void(index_t)>(task));
        return;
    }
    const int t = static_cast<int>(std::min<index_t>(pol.resolved_threads(), n));
    if (t <= 1 || detail::in_parallel_region) {
        for (index_t i = 0; i < n; ++i) task(i);
        return;
    }
#if defined(_OPENMP)
    if (pol.backend == backend::openmp) {
        std::exception_ptr first;
        std::mutex m;
#pragma omp parallel for schedule(dynamic, 1) num_threads(t)
        for (index_t i = 0; i < n; ++i) {
            try {
                task(i);
            } catch (...) {
                std::lock_guard lk(m);
                if (!first) first = std::current_exception();
            }
        }
        if (first) std::rethrow_exception(first);
        return;
    }
#endif
    const std::function<void(index_t)> fn(std::ref(task));
    detail::thread_pool::instance().run(n, t - 1, fn, pol.spin_us);
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
