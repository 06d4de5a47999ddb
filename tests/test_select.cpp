#include <doctest/doctest.h>

#include <algorithm>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "error_message.hpp"
#include "tcq/core/mask.hpp"
#include "tcq/reference/select.hpp"
#include "tcq/select/budget.hpp"
#include "tcq/select/topk.hpp"

namespace {
using test_util::message_of;

/// Scores with many ties: `levels` distinct values (0 included), or log-normal when levels = 0.
std::vector<float> tied_scores(std::size_t n, unsigned seed, int levels) {
    std::mt19937 g(seed);
    std::vector<float> v(n);
    if (levels > 0) {
        std::uniform_int_distribution<int> d(0, levels - 1);
        for (auto& x : v) x = 0.125f * static_cast<float>(d(g));
    } else {
        std::lognormal_distribution<float> d(0.f, 2.f);
        for (auto& x : v) x = d(g);
    }
    return v;
}

/// A set of differently shaped (some strided, some empty) score matrices.
struct score_set {
    std::vector<std::vector<float>> data;
    std::vector<tcq::scored_matrix> mats;
    std::vector<tcq::matrix_view<const float>> views;
    std::vector<tcq::matrix_shape> shapes;
    score_set(const std::vector<std::pair<int, int>>& dims, unsigned seed, int levels) {
        for (std::size_t i = 0; i < dims.size(); ++i) {
            const auto [r, c] = dims[i];
            const int stride = (i % 2) ? c + 3 : c;  // every other matrix strided
            data.push_back(tied_scores(static_cast<std::size_t>(r) * stride, seed + static_cast<unsigned>(i), levels));
        }
        for (std::size_t i = 0; i < dims.size(); ++i) {
            const auto [r, c] = dims[i];
            const int stride = (i % 2) ? c + 3 : c;
            const auto v = tcq::make_view(static_cast<const float*>(data[i].data()), r, c, stride);
            std::string name = "layer";
            name += std::to_string(i);
            mats.push_back({name, v});
            views.push_back(v);
            shapes.push_back({name, r, c});
        }
    }
    [[nodiscard]] tcq::index_t total() const {
        tcq::index_t n = 0;
        for (const auto& s : shapes) n += s.size();
        return n;
    }
};

void check_same(const tcq::selection& a, const tcq::selection& b) {
    REQUIRE(a.masks.size() == b.masks.size());
    for (std::size_t m = 0; m < a.masks.size(); ++m) CHECK(a.masks[m] == b.masks[m]);
    CHECK(a.thresholds == b.thresholds);
    CHECK(a.selected == b.selected);
    CHECK(a.scored == b.scored);
}
}  // namespace

TEST_CASE("mask set algebra and index lists") {
    const std::vector<tcq::index_t> ia = {0, 5, 64, 130, 150}, ib = {5, 7, 130, 149};
    auto a = tcq::mask::from_indices(7, 23, ia), b = tcq::mask::from_indices(7, 23, ib);
    CHECK((a | b).indices() == std::vector<tcq::index_t>{0, 5, 7, 64, 130, 149, 150});
    CHECK((a & b).indices() == std::vector<tcq::index_t>{5, 130});
    CHECK((a - b).indices() == std::vector<tcq::index_t>{0, 64, 150});
    CHECK((b - a).count() == 2);
    CHECK(a.row_indices(2) == std::vector<tcq::index_t>{18});  // 64 = 2·23 + 18
    CHECK(a.row_indices(6) == std::vector<tcq::index_t>{12});  // 150 = 6·23 + 12
    const std::vector<tcq::index_t> unsorted = {150, 0, 5, 5, 64, 130};
    CHECK(tcq::mask::from_indices(7, 23, unsorted) == a);
    auto c = a;
    c |= b;
    c -= b;
    CHECK(c == a - b);
    CHECK(message_of([&] { (void)(a | tcq::mask(23, 7)); }).find("shape mismatch") != std::string::npos);
    const std::vector<tcq::index_t> bad = {161};
    CHECK_THROWS_AS((void)tcq::mask::from_indices(7, 23, bad), tcq::error);
    CHECK_THROWS_AS((void)a.row_indices(7), tcq::error);
}

TEST_CASE("budget: ratios, counts and bad budgets") {
    const std::vector<tcq::matrix_shape> s = {{"a", 10, 30}, {"b", 7, 1}, {"c", 0, 5}};
    using tcq::select_scope;
    CHECK(tcq::resolve_budget(tcq::budget::of_ratio(0.1), select_scope::global, s) == std::vector<tcq::index_t>{30});
    CHECK(tcq::resolve_budget(tcq::budget::of_ratio(0.3), select_scope::global, {{{"x", 1, 10}}}) ==
          std::vector<tcq::index_t>{3});  // fl(0.3·10) = 3, as int(0.3 * 10)
    CHECK(tcq::resolve_budget(tcq::budget::of_ratio(0.1), select_scope::per_matrix, s) ==
          std::vector<tcq::index_t>{30, 0, 0});
    CHECK(tcq::resolve_budget(tcq::budget::of_ratio(0.2), select_scope::per_row, s) ==
          std::vector<tcq::index_t>{6, 0, 1});
    CHECK(tcq::resolve_budget(tcq::budget::of_ratio(1.0), select_scope::global, s) == std::vector<tcq::index_t>{307});
    CHECK(tcq::resolve_budget(tcq::budget::of_count(307), select_scope::global, s) == std::vector<tcq::index_t>{307});
    CHECK(message_of([&] { (void)tcq::resolve_budget(tcq::budget::of_count(308), select_scope::global, s); })
              .find("exceeds") != std::string::npos);
    CHECK(message_of([&] { (void)tcq::resolve_budget(tcq::budget::of_count(8), select_scope::per_matrix, s); })
              .find("'b'") != std::string::npos);
    CHECK(message_of([] { (void)tcq::budget::of_ratio(-0.01); }).find("outside [0, 1]") != std::string::npos);
    CHECK_THROWS_AS((void)tcq::budget::of_ratio(1.5), tcq::error);
    CHECK_THROWS_AS((void)tcq::budget::of_ratio(std::numeric_limits<double>::quiet_NaN()), tcq::error);
    CHECK_THROWS_AS((void)tcq::budget::of_count(-1), tcq::error);
    CHECK_THROWS_AS((void)tcq::budget::of_bits_per_weight(0.0, tcq::grid_spec{}), tcq::error);
    CHECK(tcq::budget::tacq_default().ratio() == 0.0035);
}

TEST_CASE("exact floor of target·N") {
    using tcq::detail::floor_mul;
    CHECK(floor_mul(0.3, 10) == 2);  // the double 0.3 is just below 3/10
    CHECK(floor_mul(0.5, 7) == 3);
    CHECK(floor_mul(3.25, 16384) == 53248);
    CHECK(floor_mul(0.1, 10) == 1);  // the double 0.1 is just above 1/10
    CHECK(floor_mul(1e-300, 1000) == 0);
    CHECK(floor_mul(1.0, std::uint64_t{1} << 62) == std::uint64_t{1} << 62);
    CHECK(floor_mul(3.0, (std::uint64_t{1} << 62) / 3) == (std::uint64_t{1} << 62) / 3 * 3);
    CHECK_THROWS_AS((void)floor_mul(8.0, std::uint64_t{1} << 62), tcq::error);
}

TEST_CASE("budget: target bits per weight, solved exactly against core/storage_cost.hpp") {
    // One 64x256 matrix at 3 bits, per-row grid: codes 49152 + stats 64·24 = 1536
    // → base 50688 bits = 3.09375 bits/weight; kept fixed cost 64·1 + 1·64 = 128,
    // 25 bits per kept weight. Target 3.25 → 53248 bits → k = (53248 − 50688 − 128) / 25 = 97.
    tcq::grid_spec g;
    g.bits = 3;
    const std::vector<tcq::matrix_shape> one = {{"w", 64, 256}};
    using tcq::select_scope;
    CHECK(tcq::resolve_budget(tcq::budget::of_bits_per_weight(3.25, g), select_scope::global, one) ==
          std::vector<tcq::index_t>{97});
    CHECK(tcq::resolve_budget(tcq::budget::of_bits_per_weight(3.25, g), select_scope::per_matrix, one) ==
          std::vector<tcq::index_t>{97});
    CHECK(tcq::resolve_budget(tcq::budget::of_bits_per_weight(3.25, g), select_scope::per_row, one) ==
          std::vector<tcq::index_t>{1});  // 2 per row would need 64·2·25 = 3200 > 2432
    CHECK(tcq::resolve_budget(tcq::budget::of_bits_per_weight(3.09375, g), select_scope::global, one) ==
          std::vector<tcq::index_t>{0});
    CHECK(tcq::resolve_budget(tcq::budget::of_bits_per_weight(3.1, g), select_scope::global, one) ==
          std::vector<tcq::index_t>{0});  // fits the base, not the fixed kept cost
    const auto msg = message_of([&] {
        (void)tcq::resolve_budget(tcq::budget::of_bits_per_weight(3.09, g), select_scope::global, one);
    });
    CHECK(msg.find("below the base cost") != std::string::npos);

    // Several matrices, groups of 128 and act-order: k is maximal under the
    // conservative rule and the achieved storage never exceeds the target.
    g.group_size = 128;
    const std::vector<tcq::matrix_shape> many = {{"q", 96, 300}, {"k", 33, 129}, {"o", 17, 1000}, {"e", 0, 9}};
    for (bool act : {false, true})
        for (double extra : {0.0, 0.02, 0.3, 5.0}) {
            std::uint64_t base = 0, fixed = 0, N = 0;
            for (const auto& s : many) {
                base += tcq::base_storage_bits(s, g, act);
                if (s.size()) fixed += tcq::cost::kept_fixed_bits(s.rows, s.cols);
                N += static_cast<std::uint64_t>(s.size());
            }
            const double base_bpw = static_cast<double>(base) / static_cast<double>(N);  // rounded: may be just below
            const double t = std::nextafter(base_bpw, 10.0) + extra;
            CAPTURE(t);
            CHECK_THROWS_AS((void)tcq::resolve_budget(tcq::budget::of_bits_per_weight(base_bpw - 1e-6, g, act),
                                                      select_scope::global, many), tcq::error);
            const auto b = tcq::budget::of_bits_per_weight(t, g, act);
            const auto k = tcq::resolve_budget(b, select_scope::global, many)[0];
            if (extra == 0.0) CHECK(k == 0);
            if (extra > 0.1) CHECK(k > 0);
            const long double limit = static_cast<long double>(t) * N;
            // Conservative rule: any kept weight pays every non-empty matrix's fixed cost.
            auto bits = [&](tcq::index_t kk) { return base + (kk ? fixed + 25u * static_cast<std::uint64_t>(kk) : 0u); };
            CHECK(static_cast<long double>(bits(k)) <= limit);
            if (k < static_cast<tcq::index_t>(N)) CHECK(static_cast<long double>(bits(k + 1)) > limit);
            // Achieved bits of an actual selection.
            std::vector<std::vector<float>> data;
            std::vector<tcq::scored_matrix> mats;
            for (std::size_t m = 0; m < many.size(); ++m)
                data.push_back(tied_scores(static_cast<std::size_t>(many[m].size()), 40u + static_cast<unsigned>(m), 0));
            for (std::size_t m = 0; m < many.size(); ++m)
                mats.push_back({many[m].name, tcq::make_view(static_cast<const float*>(data[m].data()), many[m].rows, many[m].cols)});
            const auto sel = tcq::select_topk(mats, b);
            REQUIRE(sel.bits.has_value());
            CHECK(sel.selected == k);
            CHECK(static_cast<long double>(sel.bits->total()) <= limit);
            const auto rep = tcq::storage_bits(many, sel.kept_per_matrix(), g, act);
            CHECK(rep == *sel.bits);
            CHECK(sel.bits->weights == N);
        }
}

TEST_CASE("global, per-matrix and per-row top-k equal a brute-force full sort (many ties)") {
    const std::vector<std::pair<int, int>> dims = {{33, 17}, {0, 5}, {1, 1}, {7, 0}, {129, 65}, {5, 301}, {300, 301}};
    for (int levels : {2, 5, 0}) {
        const score_set s(dims, 100u + static_cast<unsigned>(levels), levels);
        const tcq::index_t N = s.total();
        for (tcq::index_t k : {tcq::index_t{0}, tcq::index_t{1}, tcq::index_t{17}, N / 3, N - 1, N}) {
            CAPTURE(levels);
            CAPTURE(k);
            const auto b = tcq::budget::of_count(k);
            const auto ref = tcq::reference::select_topk(s.views, b);
            const auto got1 = tcq::select_topk(s.mats, b, tcq::select_scope::global, tcq::seq());
            const auto got2 = tcq::select_topk(s.mats, b, tcq::select_scope::global, tcq::par(2));
            check_same(got1, ref);
            check_same(got2, ref);
            CHECK(got1.selected == k);
            // The threshold admits exactly the selected weights.
            bool consistent = true;
            for (std::size_t m = 0; m < s.views.size(); ++m)
                for (tcq::index_t r = 0; r < s.views[m].rows(); ++r)
                    for (tcq::index_t c = 0; c < s.views[m].cols(); ++c) {
                        const tcq::index_t f = r * s.views[m].cols() + c;
                        consistent &= got1.thresholds[0].admits(s.views[m](r, c), static_cast<tcq::index_t>(m), f) ==
                                      got1.masks[m].test(f);
                    }
            CHECK(consistent);
        }
        for (double ratio : {0.0, 0.0035, 0.05, 0.5, 1.0}) {
            CAPTURE(ratio);
            const auto b = tcq::budget::of_ratio(ratio);
            for (auto scope : {tcq::select_scope::global, tcq::select_scope::per_matrix, tcq::select_scope::per_row}) {
                const auto ref = tcq::reference::select_topk(s.views, b, scope);
                check_same(tcq::select_topk(s.mats, b, scope, tcq::seq()), ref);
                check_same(tcq::select_topk(s.mats, b, scope, tcq::par(2)), ref);
            }
        }
    }
}

TEST_CASE("all-equal scores: ties go to the lower matrix, then the lower flat index") {
    std::vector<float> a(35, 1.f), b(12, 1.f);
    const std::vector<tcq::scored_matrix> mats = {{"a", tcq::make_view(static_cast<const float*>(a.data()), 5, 7)},
                                                  {"b", tcq::make_view(static_cast<const float*>(b.data()), 3, 4)}};
    const auto sel = tcq::select_topk(mats, tcq::budget::of_count(40), tcq::select_scope::global, tcq::par(2));
    CHECK(sel.masks[0].count() == 35);
    CHECK(sel.masks[1].indices() == std::vector<tcq::index_t>{0, 1, 2, 3, 4});
    CHECK(sel.thresholds[0] == tcq::threshold{40, 1.f, 1, 4});
    const auto rows = tcq::select_topk(mats, tcq::budget::of_count(2), tcq::select_scope::per_row);
    CHECK(rows.masks[1].indices() == std::vector<tcq::index_t>{0, 1, 4, 5, 8, 9});
    CHECK(rows.thresholds.size() == 8);
    CHECK(rows.thresholds[6] == tcq::threshold{2, 1.f, 1, 5});
}

TEST_CASE("streaming equals in-memory bit for bit, in at most two passes") {
    const std::vector<std::pair<int, int>> dims = {{65, 31}, {0, 3}, {211, 509}, {3, 1}, {129, 257}};
    const score_set s(dims, 7, 0);
    std::vector<float> buffer;  // the provider reuses one buffer, as a real one would
    std::vector<int> calls;
    const tcq::score_provider provide = [&](tcq::index_t m, int pass) {
        calls.push_back(static_cast<int>(m) * 10 + pass);
        const auto& v = s.views[static_cast<std::size_t>(m)];
        buffer.assign(static_cast<std::size_t>(v.size()), 0.f);
        for (tcq::index_t r = 0; r < v.rows(); ++r)
            for (tcq::index_t c = 0; c < v.cols(); ++c) buffer[static_cast<std::size_t>(r * v.cols() + c)] = v(r, c);
        return tcq::make_view(static_cast<const float*>(buffer.data()), v.rows(), v.cols());
    };
    for (double ratio : {0.0, 0.0035, 0.2, 1.0})
        for (auto scope : {tcq::select_scope::global, tcq::select_scope::per_matrix, tcq::select_scope::per_row})
            for (int threads : {1, 2}) {
                CAPTURE(ratio);
                calls.clear();
                const auto b = tcq::budget::of_ratio(ratio);
                const auto mem = tcq::select_topk(s.mats, b, scope, tcq::par(threads));
                const auto str = tcq::select_streaming(s.shapes, provide, b, scope, tcq::par(threads));
                check_same(str, mem);
                const bool two = scope == tcq::select_scope::global && ratio > 0.0;
                CHECK(calls.size() == s.shapes.size() * (two ? 2u : 1u));
                for (std::size_t i = 0; i < calls.size(); ++i)
                    CHECK(calls[i] == static_cast<int>(i % s.shapes.size()) * 10 + static_cast<int>(i / s.shapes.size()));
            }
}

TEST_CASE("a large selection exercising the running histogram bound equals the full sort") {
    // 3 matrices, ~600K scores: several chunks, several bound raises per thread.
    const score_set s({{301, 1001}, {257, 513}, {99, 1999}}, 11, 0);
    for (tcq::index_t k : {tcq::index_t{5}, tcq::index_t{2100}, tcq::index_t{70001}}) {
        CAPTURE(k);
        const auto b = tcq::budget::of_count(k);
        const auto ref = tcq::reference::select_topk(s.views, b);
        check_same(tcq::select_topk(s.mats, b, tcq::select_scope::global, tcq::par(2)), ref);
        // The canonical histogram keeps exact counts only from b* up.
        tcq::score_histogram h(k);
        for (const auto& v : s.views) h.add(v, "scores", tcq::par(2));
        const auto cut = h.cut();
        CHECK(h.floor() == cut.bucket);
        CHECK(cut.above + cut.need == k);
        CHECK(tcq::score_histogram::bucket_of(ref.thresholds[0].score) == cut.bucket);
    }
}

TEST_CASE("sharded: merged histograms and candidates equal one pass over everything") {
    const score_set s({{65, 31}, {211, 509}, {3, 1}, {129, 257}, {40, 1000}}, 23, 7);  // 7 levels: heavy ties
    const std::vector<std::vector<int>> shards = {{0, 1}, {2}, {3, 4}};
    for (tcq::index_t k : {tcq::index_t{0}, tcq::index_t{1}, tcq::index_t{999}, tcq::index_t{40000}, s.total()}) {
        CAPTURE(k);
        const auto b = tcq::budget::of_count(k);
        const auto single = tcq::select_topk(s.mats, b, tcq::select_scope::global, tcq::par(2));
        tcq::score_histogram whole(k);
        for (const auto& v : s.views) whole.add(v);
        // 1. shard histograms travel as bytes and merge (in a scrambled order).
        std::vector<std::vector<std::uint8_t>> hbytes;
        for (const auto& sh : shards) {
            tcq::score_histogram h(k);
            for (int m : sh) h.add(s.views[static_cast<std::size_t>(m)], "scores", tcq::par(2));
            hbytes.push_back(h.serialize());
        }
        auto merged = tcq::score_histogram::deserialize(hbytes[2]);
        merged.merge(tcq::score_histogram::deserialize(hbytes[0]));
        merged.merge(tcq::score_histogram::deserialize(hbytes[1]));
        CHECK(merged == whole);
        CHECK(merged.serialize() == whole.serialize());
        const auto cut = merged.cut();
        CHECK(cut == whole.cut());
        // 2. pass 2 per shard, candidates travel as bytes and merge.
        std::vector<std::vector<tcq::mask>> shard_masks;
        std::vector<tcq::boundary_candidates> local;
        tcq::boundary_candidates all(cut);
        for (const auto& sh : shards) {
            tcq::boundary_candidates c(cut);
            std::vector<tcq::mask> ms;
            for (int m : sh) {
                const auto& v = s.views[static_cast<std::size_t>(m)];
                ms.emplace_back(v.rows(), v.cols());
                tcq::mark_above(cut, m, v, ms.back(), c, "scores", tcq::par(2));
            }
            all.merge(tcq::boundary_candidates::deserialize(c.serialize()));
            shard_masks.push_back(std::move(ms));
            local.push_back(std::move(c));
        }
        // Missing shards are detected.
        if (k > 0 && cut.above + cut.in_bucket > static_cast<tcq::index_t>(local[0].above_seen() + local[0].bucket_seen()))
            CHECK_THROWS_AS((void)local[0].resolve(), tcq::error);
        const auto t = all.resolve();
        CHECK(t == single.thresholds[0]);
        // 3. each shard applies the threshold to its own candidates.
        for (std::size_t i = 0; i < shards.size(); ++i) {
            local[i].apply(t, shard_masks[i], shards[i][0]);
            for (std::size_t j = 0; j < shards[i].size(); ++j)
                CHECK(shard_masks[i][j] == single.masks[static_cast<std::size_t>(shards[i][j])]);
        }
    }
}

TEST_CASE("selection: bad input throws") {
    std::vector<float> a(5 * 9, 1.f);
    a[4 * 9 + 2] = std::numeric_limits<float>::quiet_NaN();
    std::vector<tcq::scored_matrix> mats = {{"blk3.v", tcq::make_view(static_cast<const float*>(a.data()), 5, 9)}};
    for (auto scope : {tcq::select_scope::global, tcq::select_scope::per_matrix, tcq::select_scope::per_row})
        for (double r : {0.0, 0.5}) {
            const auto msg = message_of([&] { (void)tcq::select_topk(mats, tcq::budget::of_ratio(r), scope, tcq::par(2)); });
            CHECK(msg.find("blk3.v") != std::string::npos);
            CHECK(msg.find("NaN") != std::string::npos);
            CHECK(msg.find("(4, 2)") != std::string::npos);
        }
    a[4 * 9 + 2] = -1.f;
    CHECK(message_of([&] { (void)tcq::select_topk(mats, tcq::budget::of_count(3)); }).find("negative") != std::string::npos);
    a[4 * 9 + 2] = std::numeric_limits<float>::infinity();
    CHECK(message_of([&] { (void)tcq::select_topk(mats, tcq::budget::of_count(3)); }).find("infinite") != std::string::npos);
    a[4 * 9 + 2] = 1.f;
    CHECK_THROWS_AS((void)tcq::select_topk(mats, tcq::budget::of_count(46)), tcq::error);
    CHECK_THROWS_AS((void)tcq::select_topk(mats, tcq::budget::of_count(10), tcq::select_scope::per_row), tcq::error);

    // Streaming: wrong shape, and scores that change between the passes.
    const std::vector<tcq::matrix_shape> shapes = {{"blk3.v", 5, 9}};
    CHECK(message_of([&] {
              (void)tcq::select_streaming(shapes, [&](tcq::index_t, int) { return tcq::make_view(static_cast<const float*>(a.data()), 9, 5); },
                                          tcq::budget::of_count(3));
          }).find("shape mismatch") != std::string::npos);
    std::vector<float> other(a.size(), 2.f);
    CHECK(message_of([&] {
              (void)tcq::select_streaming(shapes, [&](tcq::index_t, int pass) {
                  return tcq::make_view(static_cast<const float*>(pass ? other.data() : a.data()), 5, 9);
              }, tcq::budget::of_count(3));
          }).find("changed between passes") != std::string::npos);
    CHECK_THROWS_AS((void)tcq::select_streaming(shapes, {}, tcq::budget::of_count(3)), tcq::error);

    // Histogram / candidate state: k mismatch, garbage bytes.
    tcq::score_histogram h1(3), h2(4);
    CHECK_THROWS_AS(h1.merge(h2), tcq::error);
    auto bytes = h1.serialize();
    CHECK_NOTHROW((void)tcq::score_histogram::deserialize(bytes));
    bytes.pop_back();
    CHECK_THROWS_AS((void)tcq::score_histogram::deserialize(bytes), tcq::error);
    bytes[0] = 'X';
    CHECK_THROWS_AS((void)tcq::score_histogram::deserialize(bytes), tcq::error);
    tcq::score_histogram h3(100);
    h3.add(mats[0].scores);
    CHECK_THROWS_AS((void)h3.cut(), tcq::error);  // k > N
    tcq::score_histogram h4(3);
    h4.add(mats[0].scores);
    auto cbytes = tcq::boundary_candidates(h4.cut()).serialize();
    cbytes[5] ^= 1;
    CHECK_THROWS_AS((void)tcq::boundary_candidates::deserialize(cbytes), tcq::error);
}
