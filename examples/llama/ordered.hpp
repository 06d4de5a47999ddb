#pragma once
/// @file ordered.hpp
/// @brief Parallel compute, in-order delivery on the calling thread.
///
/// Items [0, n) are computed on the policy's threads into a small ring of
/// slots; `deliver(i, slot)` runs on the calling thread in increasing i while
/// later items are still being computed. Downstream accumulation therefore
/// sees the same order for any thread count, and needs no locking.

#include <condition_variable>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "tcq/core/parallel.hpp"

namespace llama {

/// Slots `ordered_for` uses for `n` items under `pol`: allocate this many
/// per-slot buffers.
[[nodiscard]] inline tcq::index_t ordered_slots(const tcq::exec_policy& pol, tcq::index_t n) {
    const tcq::index_t t = std::max<tcq::index_t>(1, std::min<tcq::index_t>(pol.resolved_threads(), n));
    return t == 1 ? 1 : t + 1;
}

/// Runs `compute(i, slot)` for every i in [0, n) and `deliver(i, slot)` in
/// increasing i on the calling thread. Slot `i % ordered_slots(pol, n)` is
/// owned by item i from its compute until its delivery returns. The first
/// exception from either callback stops the run and is rethrown.
template <class Compute, class Deliver>
void ordered_for(const tcq::exec_policy& pol, tcq::index_t n, Compute&& compute, Deliver&& deliver) {
    using tcq::index_t;
    if (n <= 0) return;
    const index_t slots = ordered_slots(pol, n);
    if (slots == 1) {
        for (index_t i = 0; i < n; ++i) {
            compute(i, index_t{0});
            deliver(i, index_t{0});
        }
        return;
    }
    if (pol.executor) {  // a user executor cannot be pipelined: batches of `slots`
        for (index_t b = 0; b < n; b += slots) {
            const index_t m = std::min(slots, n - b);
            tcq::run_tasks(pol, m, [&](index_t k) { compute(b + k, (b + k) % slots); });
            for (index_t k = 0; k < m; ++k) deliver(b + k, (b + k) % slots);
        }
        return;
    }
    std::mutex mu;
    std::condition_variable cv;
    std::vector<index_t> done(static_cast<std::size_t>(slots), -1);  // item finished in each slot
    index_t next = 0, delivered = 0;
    bool stop = false;
    std::exception_ptr err;
    auto claimable = [&] { return next < n && next < delivered + slots; };
    auto fail_with = [&](std::exception_ptr e) {
        std::lock_guard lk(mu);
        if (!err) err = e;
        stop = true;
        cv.notify_all();
    };
    auto run_one = [&](std::unique_lock<std::mutex>& lk) {  // claims and computes one item
        const index_t i = next++;
        lk.unlock();
        try {
            compute(i, i % slots);
        } catch (...) {
            fail_with(std::current_exception());
            lk.lock();
            return;
        }
        lk.lock();
        done[static_cast<std::size_t>(i % slots)] = i;
        cv.notify_all();
    };
    auto helper = [&] {
        std::unique_lock lk(mu);
        for (;;) {
            cv.wait(lk, [&] { return stop || next >= n || claimable(); });
            if (stop || next >= n) return;
            run_one(lk);
        }
    };
    std::vector<std::thread> pool;
    for (index_t k = 0; k + 2 < slots; ++k) pool.emplace_back(helper);  // threads − 1 helpers
    {
        std::unique_lock lk(mu);
        while (delivered < n && !stop) {
            if (done[static_cast<std::size_t>(delivered % slots)] == delivered) {
                const index_t i = delivered;
                lk.unlock();
                try {
                    deliver(i, i % slots);
                } catch (...) {
                    fail_with(std::current_exception());
                }
                lk.lock();
                ++delivered;
                cv.notify_all();
            } else if (claimable()) {
                run_one(lk);
            } else {
                cv.wait(lk);
            }
        }
        stop = true;
        cv.notify_all();
    }
    for (auto& t : pool) t.join();
    if (err) std::rethrow_exception(err);
}

}  // namespace llama
