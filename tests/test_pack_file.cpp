// tcq file container: round trips (memory and mmap), metadata, CRC-32C, and
// rejection of corrupt, truncated and extended files.
#include <doctest/doctest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include <unistd.h>

#include "pack_fixtures.hpp"
#include "tcq/reference/pack.hpp"

using pack_fixtures::case_spec;
using pack_fixtures::make_quantized;
using tcq::index_t;

namespace {

struct sample {
    std::vector<tcq::packed_matrix> mats;
    std::vector<std::string> names;
    tcq::file_metadata meta;
    std::vector<std::byte> bytes;
};

// Three matrices covering every optional section: act-order g_idx, bf16
// kept weights, and a matrix without.
sample make_sample() {
    sample s;
    s.mats.push_back(tcq::pack(make_quantized({37, 203, 3, 32, true, 0.02, 1})));
    s.mats.push_back(tcq::pack(make_quantized({70, 130, 4, 0, false, 0.01, 2}), {tcq::value_format::bf16}));
    s.mats.push_back(tcq::pack(make_quantized({5, 100, 2, 64, false, 0.0, 3})));
    s.names = {"layers.0.attn.q", "layers.0.mlp.up", "layers.1.attn.o"};
    s.meta.method = "tacq";
    s.meta.bits = 3;
    s.meta.budget = 0.0035;
    s.meta.calibration = "arith.calib.txt: 128 windows x 256 tokens, seed 7";
    s.meta.extra = {{"model", "fixture-2.5M"}, {"note", std::string("binary\0ok", 9)}};
    tcq::file_writer w(s.meta);
    for (std::size_t i = 0; i < s.mats.size(); ++i) w.add(s.names[i], s.mats[i].view());
    s.bytes = w.to_bytes();
    return s;
}

bool same(const tcq::packed_view& a, const tcq::packed_view& b) {
    const auto& x = a.parts();
    const auto& y = b.parts();
    auto eq = [](auto s, auto t) { return s.size() == t.size() && std::equal(s.begin(), s.end(), t.begin()); };
    return a.info().rows == b.info().rows && a.info().cols == b.info().cols && a.info().bits == b.info().bits &&
           a.info().group_size == b.info().group_size && a.info().act_order == b.info().act_order &&
           a.info().kept_format == b.info().kept_format && a.info().kept == b.info().kept &&
           eq(x.codes, y.codes) && eq(x.scales, y.scales) && eq(x.zeros, y.zeros) && eq(x.g_idx, y.g_idx) &&
           eq(x.kept.values, y.kept.values) && eq(x.kept.low_cols, y.kept.low_cols) &&
           eq(x.kept.bitmap, y.kept.bitmap) && eq(x.kept.skips, y.kept.skips);
}

void check_loaded(const sample& s, const tcq::packed_file& f) {
    REQUIRE(f.size() == 3);
    CHECK(f.metadata().method == s.meta.method);
    CHECK(f.metadata().bits == 3);
    CHECK(f.metadata().budget == 0.0035);
    CHECK(f.metadata().calibration == s.meta.calibration);
    CHECK(f.metadata().library_version == std::string(tcq::version_string));
    CHECK(f.metadata().extra == s.meta.extra);
    for (index_t i = 0; i < 3; ++i) {
        CHECK(f.name(i) == s.names[static_cast<std::size_t>(i)]);
        CHECK(same(f.matrix(i), s.mats[static_cast<std::size_t>(i)].view()));
        CHECK(&f.find(s.names[static_cast<std::size_t>(i)]) == &f.matrix(i));
        // Sections are used in place: 64-byte aligned views into the file image.
        CHECK(reinterpret_cast<std::uintptr_t>(f.matrix(i).parts().codes.data()) % 64 == 0);
    }
    CHECK(f.try_find("missing") == nullptr);
    CHECK_THROWS_AS((void)f.find("missing"), tcq::error);
}

// Section table entry i: (offset, size).
std::pair<std::size_t, std::size_t> section(const std::vector<std::byte>& b, std::size_t i) {
    std::uint64_t off, size;
    std::memcpy(&off, b.data() + 64 + 32 * i + 8, 8);
    std::memcpy(&size, b.data() + 64 + 32 * i + 16, 8);
    return {static_cast<std::size_t>(off), static_cast<std::size_t>(size)};
}
std::size_t section_count(const std::vector<std::byte>& b) {
    std::uint32_t n;
    std::memcpy(&n, b.data() + 32, 4);
    return n;
}

bool rejected(const std::vector<std::byte>& b, bool verify = true) {
    try {
        tcq::open_options o;
        o.verify_checksums = verify;
        (void)tcq::packed_file::parse(b, o);
        return false;
    } catch (const tcq::error&) {
        return true;
    }
}

}  // namespace

TEST_CASE("CRC-32C: standard check value, SIMD equals bitwise twin on odd sizes") {
    const char* s = "123456789";
    CHECK(tcq::crc32c(std::as_bytes(std::span(s, 9))) == 0xE3069283u);
    CHECK(tcq::reference::crc32c(std::as_bytes(std::span(s, 9))) == 0xE3069283u);
    std::mt19937 g(3);
    std::vector<std::byte> d(1001);
    for (auto& x : d) x = static_cast<std::byte>(g());
    for (std::size_t n : {0u, 1u, 7u, 8u, 9u, 63u, 255u, 1001u}) {
        const auto sp = std::span<const std::byte>(d).first(n);
        CHECK(tcq::crc32c(sp) == tcq::reference::crc32c(sp));
        // Continuation equals one pass.
        CHECK(tcq::crc32c(sp.subspan(n / 3), tcq::crc32c(sp.first(n / 3))) == tcq::crc32c(sp));
    }
}

TEST_CASE("file round trip: memory image and memory-mapped file") {
    const sample s = make_sample();
    CHECK(s.bytes.size() % 64 == 0);
    check_loaded(s, tcq::packed_file::parse(s.bytes));
    const auto path = std::filesystem::temp_directory_path() / ("tcq_pack_test_" + std::to_string(::getpid()) + ".tcq");
    tcq::file_writer w(s.meta);
    for (std::size_t i = 0; i < s.mats.size(); ++i) w.add(s.names[i], s.mats[i].view());
    w.write(path);
    {
        const auto f = tcq::packed_file::open(path);
        CHECK(f.mapped() == (TCQ_HAS_MMAP == 1));
        check_loaded(s, f);
        // Kernels run on the mapped views and agree with the in-memory matrix.
        const auto& V = f.matrix(0);
        std::vector<float> a(static_cast<std::size_t>(V.rows() * V.cols())), b(a.size());
        tcq::dequantize(V, tcq::make_view(a.data(), V.rows(), V.cols()));
        tcq::dequantize(s.mats[0].view(), tcq::make_view(b.data(), V.rows(), V.cols()));
        CHECK(a == b);
        const auto g = tcq::packed_file::open(path, {true, false});
        CHECK(!g.mapped());
        check_loaded(s, g);
    }
    std::filesystem::remove(path);
    CHECK_THROWS_AS((void)tcq::packed_file::open(path), tcq::error);  // gone
}

TEST_CASE("writer rejects bad names and metadata") {
    const auto P = tcq::pack(make_quantized({3, 70, 2, 0, false, 0.0, 1}));
    tcq::file_metadata m;
    tcq::file_writer w(m);
    w.add("a", P.view());
    CHECK_THROWS_AS(w.add("a", P.view()), tcq::error);
    CHECK_THROWS_AS(w.add("", P.view()), tcq::error);
    CHECK_THROWS_AS(w.add(std::string(4097, 'x'), P.view()), tcq::error);
    m.extra = {{"tcq.bits", "3"}};
    CHECK_THROWS_AS(tcq::file_writer{m}, tcq::error);
    m.extra = {{"k", "1"}, {"k", "2"}};
    CHECK_THROWS_AS(tcq::file_writer{m}, tcq::error);
    m.extra = {};
    m.budget = -1;
    CHECK_THROWS_AS(tcq::file_writer{m}, tcq::error);
    // An empty container (metadata only) is valid.
    const auto f = tcq::packed_file::parse(tcq::file_writer(tcq::file_metadata{}).to_bytes());
    CHECK(f.size() == 0);
}

TEST_CASE("corruption: every header, table and padding byte, and bytes of every section") {
    const sample s = make_sample();
    const auto& b = s.bytes;
    const std::size_t nsec = section_count(b);
    CHECK(nsec == 1 + 9 + 8 + 4);  // metadata; act-order + kept; kept; plain
    // Structural bytes: header and table except the CRC fields, and all padding.
    std::vector<std::size_t> structural, payload;
    for (std::size_t i = 0; i < 64 + 32 * nsec; ++i) {
        const bool crc = (i >= 40 && i < 44) || (i >= 60 && i < 64) || (i >= 64 && (i - 64) % 32 >= 24 && (i - 64) % 32 < 28);
        (crc ? payload : structural).push_back(i);
    }
    std::size_t prev_end = 64 + 32 * nsec;
    for (std::size_t i = 0; i < nsec; ++i) {
        const auto [off, size] = section(b, i);
        for (std::size_t p = prev_end; p < off; ++p) structural.push_back(p);
        for (std::size_t p : {off, off + size / 2, off + size - 1}) payload.push_back(p);
        prev_end = off + size;
    }
    for (std::size_t p = prev_end; p < b.size(); ++p) structural.push_back(p);
    for (const auto* list : {&structural, &payload})
        for (std::size_t p : *list)
            for (std::uint8_t flip : {0x01, 0x80}) {
                auto c = b;
                c[p] ^= static_cast<std::byte>(flip);
                CAPTURE(p);
                CHECK(rejected(c));
            }
    // Without checksums structure alone still rejects every structural flip;
    // payload flips may load (codes are free-form) but never read out of bounds.
    for (std::size_t p : structural) {
        auto c = b;
        c[p] ^= std::byte{0x40};
        CAPTURE(p);
        CHECK(rejected(c, false));
    }
    for (std::size_t p : payload) {
        auto c = b;
        c[p] ^= std::byte{0x40};
        (void)rejected(c, false);
    }
}

TEST_CASE("truncation at and around every section boundary, and extension, are rejected") {
    const sample s = make_sample();
    const auto& b = s.bytes;
    std::vector<std::size_t> cuts = {0, 1, 8, 63, 64, 65};
    for (std::size_t i = 0; i < section_count(b); ++i) {
        const auto [off, size] = section(b, i);
        for (std::size_t c : {off - 1, off, off + 1, off + size - 1, off + size, off + size + 1}) cuts.push_back(c);
    }
    cuts.push_back(b.size() - 1);
    for (std::size_t c : cuts) {
        if (c >= b.size()) continue;
        CAPTURE(c);
        const std::vector<std::byte> t(b.begin(), b.begin() + static_cast<std::ptrdiff_t>(c));
        CHECK(rejected(t));
        CHECK(rejected(t, false));
    }
    auto e = b;
    e.resize(b.size() + 64);
    CHECK(rejected(e));
    CHECK(rejected(e, false));
}

TEST_CASE("targeted structural corruption with valid checksums is rejected") {
    const sample s = make_sample();
    // Rewrites a field and fixes every checksum, so only structure can catch it.
    auto patched = [&](auto&& mutate) {
        auto c = s.bytes;
        mutate(c);
        const std::size_t nsec = section_count(c);
        for (std::size_t i = 0; i < nsec; ++i) {
            const auto [off, size] = section(c, i);
            if (off + size > c.size()) continue;
            const std::uint32_t crc = tcq::crc32c(std::span<const std::byte>(c).subspan(off, size));
            std::memcpy(c.data() + 64 + 32 * i + 24, &crc, 4);
        }
        const std::uint32_t tcrc = tcq::crc32c(std::span<const std::byte>(c).subspan(64, 32 * nsec));
        std::memcpy(c.data() + 40, &tcrc, 4);
        const std::uint32_t hcrc = tcq::crc32c(std::span<const std::byte>(c).first(60));
        std::memcpy(c.data() + 60, &hcrc, 4);
        return c;
    };
    auto expect = [&](const std::vector<std::byte>& c, const std::string& needle) {
        try {
            (void)tcq::packed_file::parse(c);
            FAIL("accepted, expected: " << needle);
        } catch (const tcq::error& e) {
            CHECK_MESSAGE(std::string(e.what()).find(needle) != std::string::npos, e.what());
        }
    };
    auto put32 = [](std::vector<std::byte>& c, std::size_t at, std::uint32_t v) { std::memcpy(c.data() + at, &v, 4); };
    auto put64 = [](std::vector<std::byte>& c, std::size_t at, std::uint64_t v) { std::memcpy(c.data() + at, &v, 8); };
    const std::size_t h0 = section(s.bytes, 1).first;  // header of matrix 0
    expect(patched([&](auto& c) { put32(c, 8, 2); }), "unsupported format version 2");
    expect(patched([&](auto& c) { put64(c, h0 + 0, 38); }), "section has");         // rows
    expect(patched([&](auto& c) { put32(c, h0 + 16, 5); }), "unsupported bit width 5");
    expect(patched([&](auto& c) { put32(c, h0 + 24, 4); }), "unknown flags");
    expect(patched([&](auto& c) { put64(c, h0 + 32, 1u << 30); }), "kept weights exceed");
    expect(patched([&](auto& c) { put32(c, 64 + 32 * 2, 9); }), "expected the codes section");  // kind
    expect(patched([&](auto& c) { put32(c, 36, 4); }), "missing matrix header");     // matrix count
    {
        const std::size_t zoff = section(s.bytes, 4).first;  // zeros of matrix 0 (3-bit)
        expect(patched([&](auto& c) { c[zoff] = std::byte{9}; }), "exceeds maxq 7");
    }
    {
        const std::size_t goff = section(s.bytes, 5).first;  // g_idx of matrix 0 (7 groups)
        expect(patched([&](auto& c) { put32(c, goff, 7); }), "g_idx[0] = 7");
    }
    {
        const std::size_t loff = section(s.bytes, 7).first;  // low columns of matrix 0
        expect(patched([&](auto& c) { c[loff] = std::byte{250}; c[loff + 1] = std::byte{251}; }), "kept");
    }
    {
        const std::size_t moff = section(s.bytes, 0).first;  // metadata: count field
        expect(patched([&](auto& c) { put32(c, moff, 4); }), "metadata");
    }
}

TEST_CASE("random mutations never crash the loader; accepted files run the kernels") {
    const sample s = make_sample();
    std::mt19937 g(12345);
    int accepted = 0;
    index_t checked_rows = 0;
    for (int it = 0; it < 400; ++it) {
        auto c = s.bytes;
        const int flips = 1 + static_cast<int>(g() % 4);
        for (int f = 0; f < flips; ++f) c[g() % c.size()] ^= static_cast<std::byte>(1u << (g() % 8));
        if (g() % 8 == 0) c.resize(g() % c.size());
        try {
            tcq::open_options o;
            o.verify_checksums = false;
            const auto f = tcq::packed_file::parse(c, o);
            ++accepted;
            for (index_t i = 0; i < f.size(); ++i) {
                const auto& V = f.matrix(i);
                std::vector<float> out(static_cast<std::size_t>(V.rows() * V.cols())), x(static_cast<std::size_t>(V.cols()), 1.f),
                    y(static_cast<std::size_t>(V.rows()));
                tcq::dequantize(V, tcq::make_view(out.data(), V.rows(), V.cols()));
                tcq::gemv(V, x, y);
                // gemv of a ones-vector is the row sums of the dequantized matrix.
                for (index_t r = 0; r < V.rows(); ++r) {
                    double sum = 0, mag = 0;
                    for (index_t c2 = 0; c2 < V.cols(); ++c2) {
                        const double v = out[static_cast<std::size_t>(r * V.cols() + c2)];
                        sum += v;
                        mag += std::abs(v);
                    }
                    const double got = y[static_cast<std::size_t>(r)];
                    if (std::isfinite(sum) && std::isfinite(mag)) {
                        CHECK_MESSAGE(std::abs(got - sum) <= 1e-4 * mag + 1e-6, "mutation ", it, " matrix ", i,
                                      " row ", r, ": gemv ", got, " vs row sum ", sum);
                    } else {
                        CHECK_MESSAGE(!std::isfinite(got), "mutation ", it, " matrix ", i, " row ", r);
                    }
                    ++checked_rows;
                }
            }
        } catch (const tcq::error&) {
        }
    }
    MESSAGE("accepted ", accepted, " of 400 mutated files (checksums off)");
    CHECK(accepted > 0);
    CHECK(checked_rows > 0);
}
