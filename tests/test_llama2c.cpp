// The llama2c reference engine: checkpoint loader/saver, data and evaluation
// protocol, fp32 fixture numbers, KV-cached decoding.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "l2c.hpp"

#include "sanitized_build.hpp"

namespace {

using l2c::index_t;

const std::string fixture_dir = TCQ_SOURCE_DIR "/examples/fixture/";

l2c::config tiny_config(bool shared = true) {
    l2c::config c;
    c.dim = 24;
    c.hidden_dim = 40;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.vocab_size = 259;
    c.seq_len = 90;
    c.shared_classifier = shared;
    return c;
}

std::filesystem::path temp_file(const std::string& name) {
    return std::filesystem::temp_directory_path() / ("tcq_test_llama2c_" + name);
}

void write_bytes(const std::filesystem::path& p, std::span<const std::byte> b) {
    std::ofstream o(p, std::ios::binary | std::ios::trunc);
    o.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

void set_header(std::vector<std::byte>& b, int field, std::int32_t v) {
    std::memcpy(b.data() + 4 * field, &v, 4);
}

const l2c::model& fixture_model() {
    static const l2c::model m = l2c::load_checkpoint(fixture_dir + "model/model.bin");
    return m;
}

}  // namespace

TEST_CASE("the fixture checkpoint loads with the documented shape") {
    const auto& m = fixture_model();
    const auto& c = m.cfg();
    CHECK(c.dim == 192);
    CHECK(c.hidden_dim == 512);
    CHECK(c.n_layers == 6);
    CHECK(c.n_heads == 6);
    CHECK(c.n_kv_heads == 3);
    CHECK(c.vocab_size == 259);
    CHECK(c.seq_len == 256);
    CHECK(c.shared_classifier);
    CHECK(c.head_size() == 32);
    CHECK(m.n_linear_weights() == 2433024);
    CHECK(m.linear(3, l2c::linear_kind::wk).rows() == 96);
    CHECK(m.linear(3, l2c::linear_kind::w2).cols() == 512);
    CHECK(l2c::linear_name(3, l2c::linear_kind::wq) == "layers.3.wq");
    CHECK_THROWS_AS((void)m.linear(6, l2c::linear_kind::wq), tcq::error);
}

TEST_CASE("checkpoints round-trip byte for byte (shared and separate classifier)") {
    const auto fixture_bytes = l2c::read_file_bytes(fixture_dir + "model/model.bin");
    const auto again = l2c::serialize_checkpoint(l2c::parse_checkpoint(fixture_bytes, "fixture"));
    REQUIRE(again.size() == fixture_bytes.size());
    // The RoPE tables are recomputed on save (run.c formula); all weights are identical.
    const std::size_t rope_off = fixture_bytes.size() - 256 * 32 * 4;
    CHECK(std::memcmp(again.data(), fixture_bytes.data(), rope_off) == 0);

    for (bool shared : {true, false}) {
        const auto m = l2c::random_model(tiny_config(shared), 3);
        const auto path = temp_file(shared ? "shared.bin" : "separate.bin");
        l2c::save_checkpoint(m, path);
        const auto back = l2c::load_checkpoint(path);
        CHECK(back.cfg() == m.cfg());
        CHECK(l2c::serialize_checkpoint(back) == l2c::serialize_checkpoint(m));
        CHECK(back.classifier().isApprox(m.classifier(), 0.f));
        std::filesystem::remove(path);
    }
}

TEST_CASE("the loader rejects bad files with a message naming file and problem") {
    const auto good = l2c::serialize_checkpoint(l2c::random_model(tiny_config(false), 1));
    auto parse = [](const std::vector<std::byte>& b) { return l2c::parse_checkpoint(b, "bad.bin"); };

    CHECK_THROWS_WITH_AS(parse({}), doctest::Contains("bad.bin: truncated header"), tcq::error);
    CHECK_THROWS_WITH_AS(parse(std::vector<std::byte>(good.begin(), good.begin() + 27)),
                         doctest::Contains("truncated header"), tcq::error);
    CHECK_THROWS_WITH_AS(parse(std::vector<std::byte>(good.begin(), good.end() - 4)),
                         doctest::Contains("(truncated)"), tcq::error);
    auto longer = good;
    longer.resize(good.size() + 3);
    CHECK_THROWS_WITH_AS(parse(longer), doctest::Contains("(trailing data)"), tcq::error);

    struct corrupt {
        int field;
        std::int32_t value;
        const char* message;
    };
    for (auto c : {corrupt{0, 0, "dim = 0"}, corrupt{0, -24, "dim = -24"}, corrupt{0, 1 << 30, "dim = 1073741824"},
                   corrupt{1, 0, "hidden_dim"}, corrupt{2, 0, "n_layers"}, corrupt{2, 100000, "n_layers"},
                   corrupt{3, 5, "does not divide dim"}, corrupt{3, 0, "n_heads"}, corrupt{4, 3, "does not divide n_heads"},
                   corrupt{4, 8, "n_kv_heads = 8"}, corrupt{5, 0, "vocab_size"}, corrupt{5, INT32_MIN, "vocab_size"},
                   corrupt{6, 0, "seq_len"}, corrupt{6, -1, "seq_len"}, corrupt{3, 8, "odd"}}) {
        CAPTURE(c.field);
        CAPTURE(c.value);
        auto b = good;
        set_header(b, c.field, c.value);
        if (c.field == 3 && c.value == 8) set_header(b, 0, 24), set_header(b, 4, 8);  // head size 3
        CHECK_THROWS_WITH_AS(parse(b), doctest::Contains(c.message), tcq::error);
    }
    // A plausible header whose sizes disagree with the file: flipping the
    // classifier sign changes the expected size.
    auto flipped = good;
    set_header(flipped, 5, 259);
    CHECK_THROWS_WITH_AS(parse(flipped), doctest::Contains("size mismatch"), tcq::error);

    auto nan = good;
    const float q = std::nanf("");
    std::memcpy(nan.data() + 28 + 4 * 259 * 24 + 4 * 2 * 24 + 4 * 5, &q, 4);  // layers.0.wq[5]
    CHECK_THROWS_WITH_AS(parse(nan), doctest::Contains("non-finite value nan in layers.0.wq at index 5"), tcq::error);

    const auto path = temp_file("truncated.bin");
    write_bytes(path, std::span(good).first(good.size() / 2));
    CHECK_THROWS_WITH_AS((void)l2c::load_checkpoint(path), doctest::Contains((path.string() + ": size mismatch").c_str()), tcq::error);
    std::filesystem::remove(path);
    CHECK_THROWS_WITH_AS((void)l2c::load_checkpoint(temp_file("does_not_exist.bin")), doctest::Contains("cannot open"),
                         tcq::error);
}

TEST_CASE("fp32 fixture losses reproduce the reference to 1e-3") {
    const auto& m = fixture_model();
    struct task {
        const char* name;
        double loss;
    };
    for (auto t : {task{"arith", 1.2480}, task{"gsm8k", 1.1549}, task{"shakespeare", 1.4450}}) {
        CAPTURE(t.name);
        const auto text = l2c::read_text(fixture_dir + "data/" + t.name + ".valid.txt");
        const index_t windows = sanitized_build ? 4 : 64;
        const auto r = l2c::task_loss(m, text, tcq::par(2), t.name, windows);
        CHECK(r.windows == windows);
        if (sanitized_build)
            CHECK(std::abs(r.loss - t.loss) < 0.5);
        else
            CHECK(std::abs(r.loss - t.loss) < 1e-3);
    }
}

TEST_CASE("fp32 fixture arith accuracy is 287 +- 2 of 500") {
    const auto text = l2c::read_text(fixture_dir + "data/arith.valid.txt");
    CHECK(l2c::is_arith_text(text));
    const index_t problems = sanitized_build ? 25 : 500;
    const auto r = l2c::arith_accuracy(fixture_model(), text, tcq::par(2), "arith", problems);
    CHECK(r.total == problems);
    if (!sanitized_build) {
        CHECK(r.correct >= 285);
        CHECK(r.correct <= 289);
    }
}

TEST_CASE("KV-cached decoding reproduces the full forward") {
    auto check_model = [](const l2c::model& m, const std::vector<std::int32_t>& tokens) {
        const auto full = l2c::forward_logits(m, tokens);
        l2c::decoder dec(m);
        // Uneven pieces: a prefill, single steps, another multi-token extend.
        const std::vector<index_t> pieces{13, 1, 1, 1, 7, 1, static_cast<index_t>(tokens.size()) - 24};
        index_t at = 0;
        for (index_t n : pieces) {
            const auto logits = dec.extend(std::span(tokens).subspan(static_cast<std::size_t>(at), static_cast<std::size_t>(n)));
            at += n;
            CAPTURE(at);
            const auto row = full.row(at - 1);
            float diff = 0;
            for (index_t v = 0; v < row.size(); ++v) diff = std::max(diff, std::abs(row(v) - logits[static_cast<std::size_t>(v)]));
            CHECK(diff < 1e-4f * (1.f + row.cwiseAbs().maxCoeff()));
            CHECK(l2c::argmax(logits) == l2c::argmax(std::span<const float>(row.data(), static_cast<std::size_t>(row.size()))));
        }
        CHECK(dec.position() == static_cast<index_t>(tokens.size()));
    };
    // Fixture, and a random model past one attention tile (64 rows).
    const auto text = l2c::read_text(fixture_dir + "data/gsm8k.valid.txt");
    check_model(fixture_model(), l2c::encode(text.substr(100, 150)));
    std::mt19937 g(5);
    std::vector<std::int32_t> toks(83);
    for (auto& t : toks) t = static_cast<std::int32_t>(g() % 259);
    check_model(l2c::random_model(tiny_config(), 9, 0.3f), toks);

    l2c::decoder small(fixture_model(), 4);
    CHECK_THROWS_WITH_AS(small.extend(l2c::encode("abcd")), doctest::Contains("exceed the capacity"), tcq::error);
    CHECK_THROWS_AS(l2c::decoder(fixture_model(), 257), tcq::error);
}

TEST_CASE("greedy generation continues arithmetic") {
    const auto out = l2c::generate(fixture_model(), "123+456=", 6);
    CHECK(out.size() == 6u);
    CHECK(out.substr(0, 4) == "579\n");
    CHECK(l2c::generate(fixture_model(), "", 3).size() <= 3u);
}

TEST_CASE("evaluation windows and calibration sampling") {
    std::string text(1000, 'x');
    for (std::size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 26);
    const auto w = l2c::eval_windows(text, 64, "t");
    CHECK(w.count == 3);  // 1000 / 255
    CHECK(w.length == 256);
    CHECK(w.row(1)[0] == l2c::tok_bos);
    CHECK(w.row(1)[1] == l2c::byte_token(static_cast<unsigned char>(text[255])));
    CHECK(w.row(2)[255] == l2c::byte_token(static_cast<unsigned char>(text[3 * 255 - 1])));
    CHECK_THROWS_WITH_AS((void)l2c::eval_windows(text.substr(0, 254), 64, "short.txt"), doctest::Contains("short.txt"),
                         tcq::error);

    const auto a = l2c::sample_windows(text, 7, 42);
    const auto b = l2c::sample_windows(text, 7, 42);
    const auto c = l2c::sample_windows(text, 7, 43);
    CHECK(a.tokens == b.tokens);
    CHECK(a.tokens != c.tokens);
    std::mt19937_64 rng(42);
    for (index_t i = 0; i < 7; ++i) {
        const auto off = rng() % (1000 - 255 + 1);  // the documented offset rule
        CHECK(a.row(i)[0] == l2c::tok_bos);
        CHECK(a.row(i)[1] == l2c::byte_token(static_cast<unsigned char>(text[off])));
        CHECK(a.row(i)[255] == l2c::byte_token(static_cast<unsigned char>(text[off + 254])));
    }
    CHECK(l2c::sample_windows(text.substr(0, 255), 2, 1).count == 2);  // exactly one position
    CHECK_THROWS_AS((void)l2c::sample_windows(text.substr(0, 254), 2, 1), tcq::error);

    const std::string t1(300, 'p'), t2(400, 'q'), t3(500, 'r');
    const std::vector<std::string_view> texts{t1, t2, t3};
    const auto mix = l2c::sample_mix(texts, 8, 1);
    REQUIRE(mix.count == 8);
    const char want[] = "pppqqqrr";  // shares 3, 3, 2 in text order
    for (index_t i = 0; i < 8; ++i) CHECK(mix.row(i)[1] == l2c::byte_token(static_cast<unsigned char>(want[i])));
}

TEST_CASE("arith problems follow the protocol and tolerate other lines") {
    const std::string text = "1+1=2\nhello\n2+2=4\n3+3=6\n12+30=42\nnot a problem\n5+5=10\n4+4=\n7+8=15";
    const auto p = l2c::arith_problems(text, 500);
    REQUIRE(p.size() == 4u);
    CHECK(p[0].line == 3);
    CHECK(p[0].prompt == "1+1=2\nhello\n2+2=4\n3+3=");
    CHECK(p[0].answer == "6");
    CHECK(p[1].prompt == "hello\n2+2=4\n3+3=6\n12+30=");
    CHECK(p[1].answer == "42");
    CHECK(p[2].line == 6);
    CHECK(p[3].line == 8);  // "4+4=" (no answer) is skipped; no trailing newline needed
    CHECK(p[3].prompt == "not a problem\n5+5=10\n4+4=\n7+8=");
    CHECK(p[3].answer == "15");
    CHECK(l2c::arith_problems(text, 2).size() == 2u);
    CHECK(l2c::is_arith_text("1+2=3\n4+5=9\n10+1=11\n2+2=4\n"));
    CHECK_FALSE(l2c::is_arith_text(text));
    CHECK_FALSE(l2c::is_arith_text("Q: 1+2=3?\nA: yes\n"));
}

TEST_CASE("short evaluation files use what they have; empty ones are errors") {
    const auto& m = fixture_model();
    const auto text = l2c::read_text(fixture_dir + "data/arith.valid.txt");
    std::size_t end = 0;
    for (int i = 0; i < 23; ++i) end = text.find('\n', end) + 1;
    const auto r = l2c::arith_accuracy(m, text.substr(0, end), tcq::par(2), "head");  // 23 lines
    CHECK(r.total == 20);
    CHECK(r.correct <= r.total);
    CHECK_THROWS_WITH_AS((void)l2c::arith_accuracy(m, "1+1=2\n2+2=4\n3+3=6\n", tcq::seq(), "tiny.txt"),
                         doctest::Contains("tiny.txt: no line"), tcq::error);
    const std::string long_lines = std::string(300, '1') + "\n1\n1\n1+1=2\n";
    CHECK_THROWS_WITH_AS((void)l2c::arith_accuracy(m, long_lines, tcq::seq(), "long.txt"),
                         doctest::Contains("leaves no room"), tcq::error);
    const auto l = l2c::task_loss(m, text.substr(0, 255 * 3 + 10), tcq::par(2), "three");
    CHECK(l.windows == 3);
    CHECK(std::isfinite(l.loss));
    CHECK_THROWS_AS((void)l2c::task_loss(m, "tiny", tcq::seq(), "tiny.txt"), tcq::error);
}

TEST_CASE("forward entry points validate tokens") {
    const auto& m = fixture_model();
    l2c::token_batch b(2, 10);
    for (auto& t : b.tokens) t = 50;
    CHECK(l2c::sequence_losses(m, b.view(), tcq::seq()).size() == 2u);
    b.tokens[13] = 259;
    CHECK_THROWS_WITH_AS((void)l2c::sequence_losses(m, b.view(), tcq::seq()), doctest::Contains("token 259 at (1, 3)"),
                         tcq::error);
    b.tokens[13] = -1;
    CHECK_THROWS_AS((void)l2c::sequence_losses(m, b.view(), tcq::seq()), tcq::error);
    CHECK_THROWS_WITH_AS((void)l2c::sequence_losses(m, l2c::token_batch(1, 257).view(), tcq::seq()),
                         doctest::Contains("sequence length 257"), tcq::error);
    CHECK_THROWS_AS((void)l2c::sequence_losses(m, l2c::token_batch(1, 1).view(), tcq::seq()), tcq::error);
    // Losses do not depend on the thread count.
    const auto w = l2c::eval_windows(l2c::read_text(fixture_dir + "data/shakespeare.valid.txt"), 5, "s");
    CHECK(l2c::sequence_losses(m, w.view(), tcq::seq()) == l2c::sequence_losses(m, w.view(), tcq::par(2)));
}
