#include <doctest/doctest.h>

#include <array>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <string>
#include <vector>

#include "tcq/io/safetensors.hpp"

namespace st = tcq::safetensors;
using bytes_t = std::vector<std::byte>;

namespace {

bytes_t to_bytes(std::string_view s) {
    bytes_t b(s.size());
    if (!s.empty()) std::memcpy(b.data(), s.data(), s.size());
    return b;
}

template <class T>
void append(bytes_t& out, const T& v) {
    const auto* p = reinterpret_cast<const std::byte*>(&v);
    out.insert(out.end(), p, p + sizeof(T));
}

/// A file from a header string (used verbatim, length written as given or as
/// `len` when set) and a data buffer.
bytes_t make_file(std::string_view header, const bytes_t& data = {}, std::uint64_t len = ~0ull) {
    bytes_t f;
    append(f, len == ~0ull ? static_cast<std::uint64_t>(header.size()) : len);
    const auto h = to_bytes(header);
    f.insert(f.end(), h.begin(), h.end());
    f.insert(f.end(), data.begin(), data.end());
    return f;
}

bytes_t zeros(std::size_t n) { return bytes_t(n, std::byte{0}); }

st::reader read(const bytes_t& b) { return st::reader::from_memory(b, "test.st"); }

/// Expects a tcq::error whose message contains every one of `parts`.
void expect_error(const bytes_t& file, std::initializer_list<std::string_view> parts) {
    try {
        (void)read(file);
        FAIL_CHECK("no error for a malformed file");
    } catch (const tcq::error& e) {
        const std::string msg = e.what();
        INFO("message: ", msg);
        CHECK(msg.find("test.st") != std::string::npos);
        for (auto p : parts) CHECK(msg.find(p) != std::string::npos);
    }
}

template <class F>
std::string error_of(F&& f) {
    try {
        f();
    } catch (const tcq::error& e) {
        return e.what();
    }
    return "<no error>";
}

bool contains(const std::string& s, std::string_view p) { return s.find(p) != std::string::npos; }

std::filesystem::path temp_file(const std::string& name) {
    return std::filesystem::temp_directory_path() / ("tcq_test_safetensors_" + name);
}

constexpr std::array all_dtypes{st::dtype::BOOL, st::dtype::U8,   st::dtype::I32, st::dtype::I64,
                                st::dtype::F16,  st::dtype::BF16, st::dtype::F32, st::dtype::F64};

}  // namespace

TEST_CASE("dtype names, sizes and parsing") {
    for (auto t : all_dtypes) {
        CHECK(st::parse_dtype(st::dtype_name(t)) == t);
        CHECK(st::dtype_size(t) > 0);
    }
    CHECK(st::dtype_size(st::dtype::BF16) == 2);
    CHECK(st::dtype_size(st::dtype::I64) == 8);
    CHECK_FALSE(st::parse_dtype("I8").has_value());
    CHECK_FALSE(st::parse_dtype("f32").has_value());
    static_assert(st::dtype_of<float> == st::dtype::F32);
    static_assert(st::dtype_of<bool> == st::dtype::BOOL);
    static_assert(st::dtype_of<tcq::bf16_bits> == st::dtype::BF16);
}

TEST_CASE("round trip of every dtype and shape, in memory and through a mapped file") {
    const std::vector<std::vector<tcq::index_t>> shapes = {{},     {0},    {1},       {5},
                                                           {2, 3}, {3, 0}, {2, 0, 4}, {1, 2, 1, 3}};
    std::mt19937 rng(7);
    st::writer w;
    std::vector<std::tuple<std::string, st::dtype, std::vector<tcq::index_t>, bytes_t>> expect;
    for (auto t : all_dtypes)
        for (std::size_t s = 0; s < shapes.size(); ++s) {
            std::size_t n = 1;
            for (auto d : shapes[s]) n *= static_cast<std::size_t>(d);
            bytes_t b(n * st::dtype_size(t));
            for (auto& x : b) x = std::byte(t == st::dtype::BOOL ? rng() & 1u : rng() & 0xffu);
            std::string name = std::string(st::dtype_name(t)) + "/s" + std::to_string(s);
            w.add(name, t, shapes[s], b);
            expect.emplace_back(name, t, shapes[s], b);
        }
    w.set_metadata("format", "pt");
    const auto file = w.serialize();
    CHECK(w.serialize() == file);  // deterministic

    const auto path = temp_file("roundtrip.st");
    w.write(path);
    CHECK(std::filesystem::file_size(path) == file.size());
    CHECK_FALSE(std::filesystem::exists(path.string() + ".tmp"));

    for (bool mapped : {false, true}) {
        CAPTURE(mapped);
        const auto r = mapped ? st::reader::open(path) : read(file);
        REQUIRE(r.tensors().size() == expect.size());
        const auto names = r.names();
        CHECK(std::is_sorted(names.begin(), names.end()));
        CHECK(r.metadata().at("format") == "pt");
        for (const auto& e : expect) {
            const auto& [name, t, shape, b] = e;
            CAPTURE(std::get<0>(e));
            REQUIRE(r.contains(name));
            const auto& info = r.info(name);
            CHECK(info.type == t);
            CHECK(info.shape == shape);
            const auto got = r.bytes(name);
            CHECK(got.size() == b.size());
            CHECK(std::equal(got.begin(), got.end(), b.begin(), b.end()));
            // Python's layout: every tensor aligned to its element size.
            CHECK(reinterpret_cast<std::uintptr_t>(got.data()) % st::dtype_size(t) == 0);
        }
    }
    std::filesystem::remove(path);
}

TEST_CASE("typed add, zero-copy views and conversions") {
    const std::vector<float> f = {1.5f, -2.f, 3.25f, 0.f, 1e-3f, -7.f};
    const std::vector<double> d = {1.0, -0.5, 1e-300, 3.0};
    const std::vector<std::int32_t> i32 = {-1, 2, 1 << 30};
    const std::vector<std::int64_t> i64 = {-(std::int64_t{1} << 60), 5};
    const std::vector<std::uint8_t> u8 = {0, 255, 7};
    st::writer w;
    w.add("f", f, {2, 3}).add("d", d, {4}).add("i32", i32, {3, 1}).add("i64", i64, {2}).add("u8", u8, {3});
    w.add_as("h", f, {3, 2}, st::dtype::F16)
        .add_as("b", f, {6}, st::dtype::BF16)
        .add_as("f64", f, {6}, st::dtype::F64);
    w.add("scalar", std::vector<float>{42.f}, {});
    w.add("empty", std::vector<float>{}, {0, 3});
    const auto file = w.serialize();
    const auto r = read(file);

    const auto vf = r.view<float>("f");
    REQUIRE(vf.rows() == 2);
    REQUIRE(vf.cols() == 3);
    CHECK(vf(1, 2) == -7.f);
    CHECK(r.view<double>("d")(0, 2) == 1e-300);  // 1-d viewed as 1×n
    CHECK(r.view<std::int32_t>("i32")(2, 0) == (1 << 30));
    CHECK(r.view<std::int64_t>("i64")(0, 0) == -(std::int64_t{1} << 60));
    CHECK(r.view<std::uint8_t>("u8")(0, 1) == 255);
    const auto sc = r.view<float>("scalar");
    CHECK((sc.rows() == 1 && sc.cols() == 1 && sc(0, 0) == 42.f));
    const auto em = r.view<float>("empty");
    CHECK((em.rows() == 0 && em.cols() == 3));
    CHECK(r.matrix_shape("h") == std::pair<tcq::index_t, tcq::index_t>{3, 2});

    // All of f is exactly representable in fp16 except 1e-3; compare with the RNE helpers.
    const auto hf = r.to_float("h");
    const auto bf = r.to_float("b");
    for (std::size_t i = 0; i < f.size(); ++i) {
        CHECK(hf[i] == tcq::round_to_half(f[i]));
        CHECK(bf[i] == tcq::round_to_bf16(f[i]));
    }
    CHECK(r.to_float("f64") == f);
    CHECK(r.to_float("f") == f);
    CHECK(r.to_double("f")[4] == static_cast<double>(1e-3f));
    CHECK(r.to_double("d") == d);

    std::vector<float> wrong(5);
    CHECK(contains(error_of([&] { r.to_float("f", wrong); }), "'f' has 6 elements"));
    CHECK(contains(error_of([&] { (void)r.to_float("i32"); }), "dtype I32"));
    CHECK(contains(error_of([&] { (void)r.view<float>("d"); }), "dtype F64"));
    CHECK(contains(error_of([&] { (void)r.info("nope"); }), "no tensor 'nope'"));
}

TEST_CASE("F64 beyond float range is an error, not a silent infinity") {
    st::writer w;
    w.add("big", std::vector<double>{1.0, 1e300}, {2});
    w.add("inf", std::vector<double>{-std::numeric_limits<double>::infinity()}, {1});
    const auto file = w.serialize();
    const auto r = read(file);
    CHECK(contains(error_of([&] { (void)r.to_float("big"); }), "flat index 1"));
    CHECK(std::isinf(r.to_float("inf")[0]));  // a stored infinity stays one
    CHECK(r.to_double("big")[1] == 1e300);
}

TEST_CASE("masks: BOOL and U8 0/1 tensors to tcq::mask and back") {
    tcq::mask m(3, 5);
    for (tcq::index_t i : {0, 4, 7, 14}) m.set(i);
    st::writer w;
    w.add_mask("m", m);
    w.add("u", std::vector<std::uint8_t>{0, 1, 1, 0}, {2, 2});
    w.add("bad", std::vector<std::uint8_t>{0, 2}, {2});
    const std::array<bool, 3> bb{true, false, true};
    w.add("b", bb, {3});
    const auto file = w.serialize();
    const auto r = read(file);
    CHECK(r.info("m").type == st::dtype::BOOL);
    CHECK(r.read_mask("m") == m);
    const auto u = r.read_mask("u");
    CHECK((u.rows() == 2 && u.count() == 2 && u.test(0, 1) && u.test(1, 0)));
    CHECK(r.view<std::uint8_t>("m")(0, 4) == 1);
    CHECK(contains(error_of([&] { (void)r.read_mask("bad"); }), "value 2 at flat index 1"));
    CHECK(r.info("b").type == st::dtype::BOOL);
    const auto b = r.read_mask("b");
    CHECK((b.rows() == 1 && b.cols() == 3 && b.test(0) && !b.test(1) && b.test(2)));
    CHECK(contains(error_of([&] { (void)r.read_mask("nope"); }), "no tensor 'nope'"));
    CHECK(contains(error_of([&] {
                       (void)r.read_mask("u").count();
                       (void)r.to_float("m");
                   }),
                   "dtype BOOL"));
}

TEST_CASE("metadata round trip, including escapes and UTF-8") {
    st::writer w;
    w.set_metadata("format", "pt")
        .set_metadata("quote\"and\\slash", "line\nbreak\ttab\x01")
        .set_metadata("unicode", "\xc3\xa9t\xc3\xa9 \xe2\x86\x92")
        .set_metadata("empty", "");
    const auto r = read(w.serialize());
    CHECK(r.tensors().empty());
    CHECK(r.metadata().size() == 4);
    CHECK(r.metadata().at("quote\"and\\slash") == "line\nbreak\ttab\x01");
    CHECK(r.metadata().at("unicode") == "\xc3\xa9t\xc3\xa9 \xe2\x86\x92");
    CHECK(r.metadata().at("empty").empty());

    st::writer bad;
    bad.set_metadata("k", "\xff");
    CHECK(contains(error_of([&] { (void)bad.serialize(); }), "not valid UTF-8"));
}

TEST_CASE("bytes exactly as Python safetensors writes them") {
    // save_file({"attn0": torch.arange(6.).reshape(1, 1, 2, 3)}): compact JSON,
    // padded with spaces to a multiple of 8 so the data starts 8-aligned.
    {
        const std::string h = R"({"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}})";
        bytes_t data;
        for (float v : {0.f, 1.f, 2.f, 3.f, 4.f, 5.f}) append(data, v);
        const auto expected = make_file(h + std::string(7, ' '), data);
        CHECK(h.size() + 7 == 72);

        st::writer w;
        w.add("attn0", std::vector<float>{0, 1, 2, 3, 4, 5}, {1, 1, 2, 3});
        CHECK(w.serialize() == expected);
        const auto r = read(expected);
        CHECK(r.info("attn0").shape == std::vector<tcq::index_t>{1, 1, 2, 3});
        CHECK(r.to_float("attn0")[5] == 5.f);
    }
    // Empty dict, with and without metadata.
    {
        CHECK(st::writer{}.serialize() == make_file("{}      "));
        st::writer w;
        w.set_metadata("framework", "pt");
        const auto expected = make_file(R"({"__metadata__":{"framework":"pt"}})" + std::string(5, ' '));
        CHECK(w.serialize() == expected);
        CHECK(read(expected).metadata().at("framework") == "pt");
    }
    // Tensor order: descending dtype rank of Python's Dtype enum, then name.
    {
        st::writer w;
        w.add("a", std::vector<std::uint8_t>{1, 0}, {2})
            .add("x", st::dtype::BOOL, {1}, bytes_t{std::byte{1}});
        w.add_as("b", std::vector<float>{1, 2, 3}, {3}, st::dtype::F16);
        w.add("c", std::vector<std::int64_t>{9}, {1}).add("d", std::vector<float>{1, 2}, {2});
        w.add("e", std::vector<double>{2.5}, {}).add_as("g", std::vector<float>{1}, {1}, st::dtype::BF16);
        w.add("h", std::vector<std::int32_t>{-3}, {1});
        w.set_metadata("format", "pt");
        const std::string h = R"({"__metadata__":{"format":"pt"},)"
                              R"("c":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},)"
                              R"("e":{"dtype":"F64","shape":[],"data_offsets":[8,16]},)"
                              R"("d":{"dtype":"F32","shape":[2],"data_offsets":[16,24]},)"
                              R"("h":{"dtype":"I32","shape":[1],"data_offsets":[24,28]},)"
                              R"("g":{"dtype":"BF16","shape":[1],"data_offsets":[28,30]},)"
                              R"("b":{"dtype":"F16","shape":[3],"data_offsets":[30,36]},)"
                              R"("a":{"dtype":"U8","shape":[2],"data_offsets":[36,38]},)"
                              R"("x":{"dtype":"BOOL","shape":[1],"data_offsets":[38,39]}})";
        const auto out = w.serialize();
        std::uint64_t n = 0;
        std::memcpy(&n, out.data(), 8);
        CHECK(n % 8 == 0);
        const std::string got(reinterpret_cast<const char*>(out.data()) + 8, n);
        CHECK(got == h + std::string(n - h.size(), ' '));
        CHECK(out.size() == 8 + n + 39);
    }
    // Readers accept any key order and whitespace (older writers sorted by name).
    {
        bytes_t data;
        append(data, std::uint16_t{0x3c00});  // fp16 1.0
        append(data, 2.0f);
        const auto f = make_file(
            "{\n  \"z\": {\"shape\": [], \"data_offsets\": [2, 6], \"dtype\": \"F32\"},\n"
            "  \"a\": {\"data_offsets\": [0, 2], \"dtype\": \"F16\", \"shape\": [1]}\n}",
            data);
        const auto r = read(f);
        CHECK(r.names() == std::vector<std::string>{"a", "z"});
        CHECK(r.to_float("a")[0] == 1.f);
        CHECK(r.to_float("z")[0] == 2.f);
        // "z" starts at byte 2 of an 8-aligned buffer: not 4-aligned, so no view.
        CHECK(contains(error_of([&] { (void)r.view<float>("z"); }), "not 4-byte aligned"));
    }
}

TEST_CASE("every truncation of a valid file is rejected") {
    st::writer w;
    w.add("w", std::vector<float>{1, 2, 3, 4}, {2, 2}).add("m", std::vector<std::uint8_t>{1}, {1});
    w.set_metadata("k", "v");
    const auto file = w.serialize();
    REQUIRE_NOTHROW((void)read(file));
    for (std::size_t n = 0; n < file.size(); ++n) {
        CAPTURE(n);
        const bytes_t cut(file.begin(), file.begin() + static_cast<std::ptrdiff_t>(n));
        CHECK_THROWS_AS((void)read(cut), tcq::error);
    }
    bytes_t longer = file;
    longer.push_back(std::byte{0});
    expect_error(longer, {"1 trailing bytes"});
}

TEST_CASE("malformed headers are rejected with the file and tensor named") {
    const std::string ok = R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})";
    REQUIRE_NOTHROW((void)read(make_file(ok, zeros(8))));

    // Header length.
    expect_error(make_file(ok, zeros(8), 1ull << 63), {"header length"});
    expect_error(make_file(ok, zeros(8), ok.size() + 9), {"header length", "exceeds"});
    expect_error(make_file(ok, zeros(8), 100'000'001), {"100000000-byte limit"});
    expect_error(make_file("", {}), {"header is empty"});
    expect_error(bytes_t(5), {"too small"});

    // JSON syntax and structure.
    expect_error(make_file(R"({"t":)"), {"invalid JSON"});
    expect_error(make_file(R"( {})"), {"start with '{'"});
    expect_error(make_file(std::string_view("{}\0\0", 4)), {"invalid JSON"});
    expect_error(make_file("{\"t\xff\":1}"), {"invalid JSON"});  // not UTF-8
    expect_error(make_file(R"({"t":1})"), {"tensor 't'", "not an object"});
    expect_error(make_file(R"({"t":{"a":{"b":[1]}}})"), {"nests deeper"});
    expect_error(make_file(R"({"__metadata__":{"k":1}})"), {"__metadata__", "'k'", "not a string"});
    expect_error(make_file(R"({"__metadata__":[]})"), {"__metadata__", "not an object"});
    expect_error(make_file(R"({"t":{"dtype":"F32","shape":[],"data_offsets":[0,0]},"t":{}})"),
                 {"duplicate tensor name 't'"});
    expect_error(
        make_file(R"({"t":{"dtype":"F32","dtype":"F32","shape":[1],"data_offsets":[0,4]}})", zeros(4)),
        {"duplicate key 'dtype'"});

    // Fields.
    expect_error(make_file(R"({"t":{"dtype":"F32","shape":[2]}})", zeros(8)),
                 {"tensor 't'", "missing field 'data_offsets'"});
    expect_error(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":0}})", zeros(8)),
                 {"tensor 't'", "unknown field 'x'"});
    expect_error(make_file(R"({"t":{"dtype":"I8","shape":[2],"data_offsets":[0,2]}})", zeros(2)),
                 {"tensor 't'", "unsupported dtype 'I8'"});
    expect_error(make_file(R"({"t":{"dtype":"XYZ","shape":[2],"data_offsets":[0,2]}})", zeros(2)),
                 {"tensor 't'", "'XYZ'"});
    expect_error(make_file(R"({"t":{"dtype":3,"shape":[2],"data_offsets":[0,2]}})", zeros(2)),
                 {"tensor 't'", "dtype"});

    // Shapes.
    expect_error(make_file(R"({"t":{"dtype":"U8","shape":[-2],"data_offsets":[0,2]}})", zeros(2)),
                 {"tensor 't'", "shape[0] = -2 is negative"});
    expect_error(make_file(R"({"t":{"dtype":"U8","shape":[2.0],"data_offsets":[0,2]}})", zeros(2)),
                 {"tensor 't'", "shape[0]", "not a non-negative integer"});
    expect_error(make_file(R"({"t":{"dtype":"U8","shape":["2"],"data_offsets":[0,2]}})", zeros(2)),
                 {"tensor 't'", "shape[0]"});
    expect_error(make_file(R"({"t":{"dtype":"U8","shape":2,"data_offsets":[0,2]}})", zeros(2)),
                 {"tensor 't'", "not an array"});
    expect_error(make_file(R"({"t":{"dtype":"U8","shape":[18446744073709551615],"data_offsets":[0,0]}})"),
                 {"tensor 't'", "shape[0]"});
    expect_error(make_file(R"({"t":{"dtype":"U8","shape":[4294967296,4294967296],"data_offsets":[0,0]}})"),
                 {"tensor 't'", "overflows"});
    expect_error(make_file(R"({"t":{"dtype":"F64","shape":[2305843009213693952],"data_offsets":[0,0]}})"),
                 {"tensor 't'", "overflows"});  // numel fits, bytes do not

    // Offsets and sizes.
    expect_error(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", zeros(4)),
                 {"tensor 't'", "outside the 4-byte data buffer"});
    expect_error(make_file(R"({"t":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", zeros(8)),
                 {"tensor 't'", "end 0 < begin 8"});
    expect_error(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8,9]}})", zeros(8)),
                 {"tensor 't'", "two integers"});
    expect_error(make_file(R"({"t":{"dtype":"F32","shape":[2],"data_offsets":[0,-8]}})", zeros(8)),
                 {"tensor 't'", "data_offsets"});
    expect_error(make_file(R"({"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", zeros(8)),
                 {"tensor 't'", "needs 12 bytes", "hold 8"});
    expect_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                           zeros(12)),
                 {"tensor 'b'", "overlaps tensor 'a'"});
    expect_error(make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                           R"("z":{"dtype":"F32","shape":[0],"data_offsets":[4,4]}})",
                           zeros(8)),
                 {"tensor 'z'", "overlaps tensor 'a'"});
    expect_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", zeros(8)),
                 {"tensor 'a'", "4 unused bytes"});
    expect_error(make_file(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})", zeros(8)),
                 {"4 trailing bytes"});
    expect_error(make_file(R"({})", zeros(1)), {"1 trailing bytes"});
}

TEST_CASE("opening files: errors name the path; views survive the reader's copies") {
    const auto missing = temp_file("does_not_exist.st");
    CHECK(contains(error_of([&] { (void)st::reader::open(missing); }), missing.string()));
    const auto dir = std::filesystem::temp_directory_path();
    CHECK(contains(error_of([&] { (void)st::reader::open(dir); }), "not a regular file"));
    const auto tiny = temp_file("tiny.st");
    { std::ofstream(tiny, std::ios::binary) << "abc"; }
    CHECK(contains(error_of([&] { (void)st::reader::open(tiny); }), "too small"));
    std::filesystem::remove(tiny);

    const auto path = temp_file("copy.st");
    st::writer w;
    w.add("w", std::vector<float>{1, 2, 3, 4, 5, 6}, {3, 2});
    w.write(path);
    tcq::matrix_view<const float> v;
    std::optional<st::reader> keep;
    {
        const auto r = st::reader::open(path);
        v = r.view<float>("w");
        keep = r;  // copies share the mapping
    }
    CHECK(v(2, 1) == 6.f);
    CHECK(keep->source() == path.string());
    keep.reset();
    std::filesystem::remove(path);

    CHECK(contains(error_of([&] { w.write(temp_file("no_such_dir") / "x.st"); }), "x.st"));
}

TEST_CASE("writer rejects invalid tensors") {
    st::writer w;
    w.add("a", std::vector<float>{1}, {1});
    CHECK(contains(error_of([&] { w.add("a", std::vector<float>{1}, {1}); }), "duplicate tensor name 'a'"));
    CHECK(contains(error_of([&] { w.add("b", std::vector<float>{1, 2}, {3}); }), "needs 12 bytes, got 8"));
    CHECK(contains(error_of([&] { w.add("c", std::vector<float>{}, {-1}); }), "invalid shape"));
    CHECK(contains(error_of([&] { w.add("__metadata__", std::vector<float>{1}, {1}); }), "reserved"));
    CHECK(contains(error_of([&] { w.add_as("d", std::vector<float>{1}, {1}, st::dtype::I32); }), "as I32"));
    CHECK(
        contains(error_of([&] { (void)w.add("bad\xff", std::vector<float>{1}, {1}).serialize(); }), "UTF-8"));
    // A failed add leaves the name free.
    CHECK_NOTHROW(w.add("b", std::vector<float>{1, 2, 3}, {3}));
}

TEST_CASE("strided matrices and borrowed tensors") {
    std::vector<float> buf = {1, 2, 9, 3, 4, 9};  // 2×2 with row stride 3
    const auto v = tcq::make_view<const float>(buf.data(), 2, 2, 3);
    std::vector<std::int32_t> big(1000);
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<std::int32_t>(i * 7);
    st::writer w;
    w.add_matrix("m", v).add_matrix("mh", v, st::dtype::F16);
    w.add_borrowed("big", st::dtype::I32, {10, 100}, std::as_bytes(std::span(big)));
    const auto file = w.serialize();
    const auto r = read(file);
    CHECK(r.to_float("m") == std::vector<float>{1, 2, 3, 4});
    CHECK(r.to_float("mh") == std::vector<float>{1, 2, 3, 4});
    CHECK(r.view<std::int32_t>("big")(9, 99) == 999 * 7);
}

TEST_CASE("fuzz seed files (written independently, in Python's layout) read and re-write exactly") {
    const std::filesystem::path dir = std::filesystem::path(TCQ_SOURCE_DIR) / "tests/fuzz/corpus_safetensors";
    const auto mixed = st::reader::open(dir / "mixed.st");
    CHECK(mixed.names() == std::vector<std::string>{"b", "h", "i", "m", "n", "s", "u", "w"});
    CHECK(mixed.metadata().at("format") == "pt");
    CHECK(mixed.to_float("w") == std::vector<float>{1, -2, 3.5f, 0});
    CHECK(mixed.to_float("h") == std::vector<float>{1, -2, 5.9604644775390625e-8f});
    CHECK(mixed.to_float("b")[0] == 1.f);
    CHECK(mixed.to_double("s")[0] == 0.5);
    CHECK(mixed.view<std::int64_t>("i")(0, 0) == -5);
    CHECK(mixed.view<std::int32_t>("n")(0, 0) == 7);
    CHECK(mixed.read_mask("m").indices() == std::vector<tcq::index_t>{0});

    // Re-writing what was read reproduces the file byte for byte.
    st::writer w;
    for (const auto& t : mixed.tensors()) w.add(t.name, t.type, t.shape, mixed.bytes(t.name));
    for (const auto& [k, v] : mixed.metadata()) w.set_metadata(k, v);
    std::ifstream in(dir / "mixed.st", std::ios::binary);
    const std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(w.serialize() == to_bytes(raw));

    CHECK(st::reader::open(dir / "metadata_only.st").metadata().at("framework") == "pt");
    const auto zs = st::reader::open(dir / "zero_size.st");
    CHECK(zs.info("a").shape == std::vector<tcq::index_t>{0, 3});
    CHECK(zs.read_mask("z").count() == 2);
}

TEST_CASE("misaligned buffers: views refuse, conversions copy correctly") {
    const std::vector<float> f = {0.5f, -1.25f, 3.f};
    st::writer w;
    w.add("f", f, {3}).add_as("h", f, {3}, st::dtype::F16).add_as("b", f, {3}, st::dtype::BF16);
    w.add_as("d", f, {3}, st::dtype::F64);
    const auto file = w.serialize();
    bytes_t shifted(file.size() + 1);
    std::copy(file.begin(), file.end(), shifted.begin() + 1);
    const auto r = st::reader::from_memory(std::span(shifted).subspan(1), "shifted");
    for (const char* name : {"f", "h", "b", "d"}) {
        CAPTURE(name);
        CHECK(r.to_float(name) == f);
        CHECK(r.to_double(name)[1] == -1.25);
    }
    CHECK(contains(error_of([&] { (void)r.view<float>("f"); }), "not 4-byte aligned"));
    CHECK(contains(error_of([&] { (void)r.view<double>("d"); }), "'d' data is not 8-byte aligned"));
}
