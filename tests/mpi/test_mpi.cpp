// tcq::mpi against its single-process twins (run under mpiexec, np = 1, 2, 3).
// Only CHECK (never REQUIRE): a rank leaving a case early would skip collectives.
#include <doctest/doctest.h>

#include <cstring>
#include <random>
#include <string>

#include "tcq/mpi/guard.hpp"
#include "tcq/mpi/ownership.hpp"
#include "tcq/mpi/reduce.hpp"
#include "tcq/mpi/topk.hpp"
#include "tcq/select/topk.hpp"
#include "../test_util.hpp"

using namespace tcq;

namespace {
mpi::communicator& world() {
    static mpi::communicator c;
    return c;
}

template <class T>
bool same_bits(matrix_view<const T> a, matrix_view<const T> b) {
    return a.rows() == b.rows() && a.cols() == b.cols() &&
           std::memcmp(a.data(), b.data(), static_cast<std::size_t>(a.size()) * sizeof(T)) == 0;
}

// Scores with many ties: a handful of distinct values (and zeros).
std::vector<float> tied_scores(std::size_t n, unsigned seed) {
    std::mt19937 g(seed);
    std::uniform_int_distribution<int> d(0, 6);
    std::vector<float> v(n);
    for (auto& x : v) x = 0.25f * static_cast<float>(d(g));
    return v;
}
}  // namespace

TEST_CASE("Hessian reduction is bit-identical to one process for any rank count") {
    auto& comm = world();
    const index_t cols = 29, tokens = 3, S = 17, chunk = 2;
    const auto x = test_util::randn(static_cast<std::size_t>(S * tokens * cols), 5);
    auto X = [&](index_t s) { return matrix_view<const float>(x.data() + s * tokens * cols, tokens, cols); };
    auto make = [&] { return hessian_accumulator<double>(cols); };
    const chunk_plan plan{S, chunk};
    using sum_t = chunked_sum<hessian_accumulator<double>, decltype(make), merge_combine>;
    // This rank's share.
    const auto range = mpi::rank_chunks(plan, comm.rank(), comm.size());
    sum_t mine(plan, range, make, {});
    const auto [s0, s1] = mpi::rank_samples(plan, comm.rank(), comm.size());
    for (index_t s = s0; s < s1; ++s) mine.at(s).add(X(s));
    const auto nodes = mine.finish();
    const int root = comm.size() - 1;
    const auto got = mpi::reduce_hessian<double>(comm, root, plan.chunks(), nodes);
    CHECK(got.has_value() == (comm.rank() == root));
    if (got) {
        sum_t all(plan, {0, plan.chunks()}, make, {});
        for (index_t s = 0; s < S; ++s) all.at(s).add(X(s));
        const auto ref = reduce_nodes(plan.chunks(), all.finish(), merge_combine{});
        CHECK(got->samples() == S);
        CHECK(same_bits(got->view(), ref.view()));
    }
}

TEST_CASE("sharded gradient reduce-scatter: each owner holds exactly the single-process sums") {
    auto& comm = world();
    const std::vector<matrix_shape> shapes{{"a", 7, 11}, {"b", 13, 5}, {"c", 3, 3}, {"d", 1, 17}, {"e", 9, 9}};
    const index_t S = 11, chunk = 3;
    const chunk_plan plan{S, chunk};
    const auto stats = grad_stats::abs_sum | grad_stats::sq_sum;
    std::vector<std::vector<float>> g(shapes.size());
    for (std::size_t L = 0; L < shapes.size(); ++L)
        g[L] = test_util::randn(static_cast<std::size_t>(S * shapes[L].size()), 100 + static_cast<unsigned>(L));
    auto G = [&](std::size_t L, index_t s) {
        return matrix_view<const float>(g[L].data() + s * shapes[L].size(), shapes[L].rows, shapes[L].cols);
    };
    const auto owner = mpi::assign_owners(shapes, comm.size());
    auto run = [&](std::size_t L, std::pair<index_t, index_t> rg) {
        auto make = [&] { return grad_accumulator(shapes[L].rows, shapes[L].cols, stats, shapes[L].name); };
        chunked_sum<grad_accumulator, decltype(make), merge_combine> cs(plan, rg, make, {});
        for (index_t s = plan.first_sample(rg.first); s < plan.first_sample(rg.second); ++s) cs.at(s).add(G(L, s));
        return cs.finish();
    };
    std::vector<std::vector<tree_node<grad_accumulator>>> local;
    for (std::size_t L = 0; L < shapes.size(); ++L) local.push_back(run(L, mpi::rank_chunks(plan, comm.rank(), comm.size())));
    const auto out = mpi::reduce_scatter_tree<grad_accumulator>(comm, owner, plan.chunks(), local, mpi::grad_codec{},
                                                               "gradient reduce-scatter");
    for (std::size_t L = 0; L < shapes.size(); ++L) {
        CHECK(local[L].empty());
        CHECK(out[L].has_value() == (owner[L] == comm.rank()));
        if (!out[L]) continue;
        const auto ref = reduce_nodes(plan.chunks(), run(L, {0, plan.chunks()}), merge_combine{});
        CHECK(out[L]->samples() == S);
        CHECK(same_bits(out[L]->abs_sum(), ref.abs_sum()));
        CHECK(same_bits(out[L]->sq_sum(), ref.sq_sum()));
    }
}

TEST_CASE("owner assignment: greedy bin-packing, largest first, ties to the lowest rank") {
    const std::vector<matrix_shape> shapes{{"q", 8, 8}, {"up", 32, 8}, {"down", 8, 32}, {"k", 8, 8}, {"o", 8, 8}};
    CHECK(mpi::assign_owners(shapes, 1) == std::vector<int>{0, 0, 0, 0, 0});
    // down (8·32² + 32³) first → 0; up (32·64 + 512) → 1; q, k, o (1024 each) → the least loaded.
    CHECK(mpi::assign_owners(shapes, 2) == std::vector<int>{1, 1, 0, 1, 1});
    CHECK(mpi::assign_owners(shapes, 3) == std::vector<int>{2, 1, 0, 2, 2});
    CHECK(mpi::assign_owners(shapes, 4) == std::vector<int>{2, 1, 0, 3, 2});
    CHECK(mpi::owned_by(mpi::assign_owners(shapes, 3), 2) == std::vector<std::size_t>{0, 3, 4});
    CHECK(mpi::solve_cost(8, 32) == 8.0 * 32 * 32 + 32.0 * 32 * 32);
    CHECK_THROWS_AS((void)mpi::assign_owners(shapes, 0), tcq::error);
}

TEST_CASE("distributed top-k equals select_topk: masks, thresholds, counts, bits (many ties)") {
    auto& comm = world();
    const std::vector<matrix_shape> shapes{{"a", 17, 33}, {"b", 5, 70}, {"c", 31, 9}, {"d", 1, 1}, {"e", 40, 23}};
    std::vector<std::vector<float>> sc;
    std::vector<scored_matrix> mats;
    for (std::size_t m = 0; m < shapes.size(); ++m) sc.push_back(tied_scores(static_cast<std::size_t>(shapes[m].size()), 9 + static_cast<unsigned>(m)));
    for (std::size_t m = 0; m < shapes.size(); ++m) mats.push_back({shapes[m].name, {sc[m].data(), shapes[m].rows, shapes[m].cols}});
    const auto owner = mpi::assign_owners(shapes, comm.size());
    grid_spec g;
    g.bits = 3;
    g.group_size = 16;
    g.fp16_scale = true;
    std::uint64_t base = 0, N = 0;
    for (const auto& s : shapes) {
        base += base_storage_bits(s, g, false);
        N += static_cast<std::uint64_t>(s.size());
    }
    // A little above the base cost: a few dozen kept weights fit.
    const double target = static_cast<double>(base) / static_cast<double>(N) + 1.5;
    const std::vector<budget> budgets{budget::of_ratio(0.013), budget::of_count(1), budget::of_count(40),
                                      budget::of_bits_per_weight(target, g), budget::of_count(0)};
    for (const auto scope : {select_scope::global, select_scope::per_matrix, select_scope::per_row})
        for (std::size_t bi = 0; bi < budgets.size(); ++bi) {
            const auto& b = budgets[bi];
            if (scope != select_scope::global && ((b.type() == budget::kind::count && b.count() > 1) ||
                                                  b.type() == budget::kind::bits_per_weight))
                continue;  // infeasible for the 1x1 and 9-column matrices
            const auto ref = select_topk(mats, b, scope);
            auto d = mpi::select_distributed(comm, shapes, owner,
                                             [&](index_t m) { return mats[static_cast<std::size_t>(m)].scores; }, b, scope);
            CAPTURE(bi);
            CAPTURE(static_cast<int>(scope));
            CHECK(d.sel.selected == ref.selected);
            if (scope == select_scope::global && (b.type() != budget::kind::count || b.count() > 0))
                CHECK(ref.selected > 0);
            CHECK(d.sel.scored == ref.scored);
            CHECK(d.sel.bits.has_value() == ref.bits.has_value());
            if (d.sel.bits && ref.bits) CHECK(*d.sel.bits == *ref.bits);
            if (scope == select_scope::global) CHECK(d.sel.thresholds == ref.thresholds);
            for (std::size_t m = 0; m < shapes.size(); ++m)
                if (d.owned[m]) {
                    CHECK(d.sel.masks[m].words() == ref.masks[m].words());
                    if (scope == select_scope::per_matrix) CHECK(d.sel.thresholds[m] == ref.thresholds[m]);
                }
            mpi::share_masks(comm, owner, shapes, d.sel.masks);
            for (std::size_t m = 0; m < shapes.size(); ++m) CHECK(d.sel.masks[m].words() == ref.masks[m].words());
        }
}

TEST_CASE("an invalid score on one rank fails the selection on every rank") {
    auto& comm = world();
    const std::vector<matrix_shape> shapes{{"a", 4, 5}, {"b", 6, 3}, {"c", 2, 9}};
    const auto owner = mpi::assign_owners(shapes, comm.size());
    std::vector<std::vector<float>> sc;
    for (const auto& s : shapes) sc.push_back(tied_scores(static_cast<std::size_t>(s.size()), 3));
    sc[1][4] = NAN;  // matrix b, owned by one rank only
    std::string msg;
    try {
        mpi::run_phase(comm, "select", [&] {
            (void)mpi::select_distributed(
                comm, shapes, owner,
                [&](index_t m) {
                    const auto& s = shapes[static_cast<std::size_t>(m)];
                    return matrix_view<const float>(sc[static_cast<std::size_t>(m)].data(), s.rows, s.cols);
                },
                budget::of_count(5));
        });
    } catch (const mpi::collective_error& e) {
        msg = e.what();
        CHECK(e.failed_rank() == owner[1]);
    }
    CHECK(msg.find("rank " + std::to_string(owner[1]) + " failed") != std::string::npos);
    CHECK(msg.find("NaN") != std::string::npos);
    CHECK(msg.find("'b'") != std::string::npos);
}

TEST_CASE("agreement: a shape or kind mismatch is an error on every rank, not a hang") {
    auto& comm = world();
    std::vector<float> v(static_cast<std::size_t>(3 + comm.rank()), 1.f);
    if (comm.size() > 1) {
        std::string msg;
        try {
            comm.bcast(std::span<float>(v), 0, "test bcast");
        } catch (const mpi::collective_error& e) {
            msg = e.what();
        }
        CHECK(msg.find("element count") != std::string::npos);
        CHECK(msg.find("test bcast") != std::string::npos);
        msg.clear();
        try {
            if (comm.rank() == 0)
                comm.barrier("test barrier");
            else {
                std::int64_t x = 1;
                comm.allreduce_sum(std::span<std::int64_t>(&x, 1), "test sum");
            }
        } catch (const mpi::collective_error& e) {
            msg = e.what();
        }
        CHECK(msg.find("collective kind") != std::string::npos);
        msg.clear();
        try {
            std::vector<double> w(4);
            if (comm.rank() == 0) comm.bcast(std::span<double>(w), 0, "typed");
            else {
                std::vector<float> f(4);
                comm.bcast(std::span<float>(f), 0, "typed");
            }
        } catch (const mpi::collective_error& e) {
            msg = e.what();
        }
        CHECK(msg.find("element type") != std::string::npos);
    }
    // The communicator stays usable: everyone left the failed collective together.
    std::int64_t one = 1;
    comm.allreduce_sum(std::span<std::int64_t>(&one, 1), "after mismatch");
    CHECK(one == comm.size());
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(comm.rank() + 1), static_cast<std::uint8_t>(comm.rank()));
    const auto all = comm.allgather_bytes(bytes, "ragged allgather");
    for (int r = 0; r < comm.size(); ++r)
        CHECK(all[static_cast<std::size_t>(r)] == std::vector<std::uint8_t>(static_cast<std::size_t>(r + 1), static_cast<std::uint8_t>(r)));
    const auto at0 = comm.gather_bytes(bytes, 0, "ragged gather");
    CHECK(at0.size() == (comm.rank() == 0 ? static_cast<std::size_t>(comm.size()) : 0u));
    if (comm.rank() == 0)
        for (int r = 0; r < comm.size(); ++r) CHECK(at0[static_cast<std::size_t>(r)].size() == static_cast<std::size_t>(r + 1));
    // Nothing moves between ranks on one rank.
    CHECK((comm.bytes_moved() == 0) == (comm.size() == 1));
}

TEST_CASE("run_phase: a throw on the last rank reaches every rank with its cause") {
    auto& comm = world();
    const int bad = comm.size() - 1;
    std::string msg;
    int who = -2;
    try {
        mpi::run_phase(comm, "calibrate", [&] {
            if (comm.rank() == bad) throw tcq::error("cannot read 'shard.bin'");
            std::int64_t x = 1;  // the others are already in the next collective
            comm.allreduce_sum(std::span<std::int64_t>(&x, 1), "work");
        });
    } catch (const mpi::collective_error& e) {
        msg = e.what();
        who = e.failed_rank();
    }
    CHECK(who == bad);
    CHECK(msg == "rank " + std::to_string(bad) + " failed: phase 'calibrate': cannot read 'shard.bin'");
    // A clean phase passes.
    bool ran = false;
    mpi::run_phase(comm, "clean", [&] { ran = true; });
    CHECK(ran);
}
