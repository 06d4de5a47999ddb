// The fixture through the Llama-family engine: the llama2.c loader (shape,
// every array in place, bad files), the fp32 reference numbers, KV-cached
// decoding and generation, and the evaluation protocol on ids (windows,
// calibration sampling, a+b=c problems, short files, token checks).
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "llama/answer_spans.hpp"
#include "llama/checkpoint.hpp"
#include "llama/codec.hpp"

#include "sanitized_build.hpp"

// Own namespace: the four engine test files compile as one unity translation
// unit (tests/llama.cmake), where their helpers would otherwise collide.
namespace test_llama_fixture {

namespace fs = std::filesystem;
using llama::index_t;
using llama::linear_kind;

namespace {

const std::string fixture_dir = TCQ_SOURCE_DIR "/examples/fixture/";

const llama::model& fixture_model() {
    static const llama::model m = llama::load_llama2c(fixture_dir + "model/model.bin");
    return m;
}

const llama::text_codec& codec() {
    static const auto c = llama::text_codec::bytes();
    return c;
}

std::vector<std::int32_t> ids_of(const std::string& text) { return codec().encode(text); }

llama::token_batch eval_windows(const std::string& text, index_t n, const std::string& what) {
    return llama::id_eval_windows(codec().prefix(), ids_of(text), n, what, llama::window_tokens);
}

/// A llama.c-shaped config: interleaved RoPE, separate classifier, odd widths where free.
llama::config tiny_config(bool tied) {
    llama::config c;
    c.dim = 24;
    c.hidden_dim = 37;
    c.n_layers = 2;
    c.n_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 6;
    c.vocab_size = 259;
    c.max_seq = 91;
    c.tied = tied;
    c.rope = llama::rope_pairs::interleaved;
    c.norm_eps = 1e-5f;
    return c;
}

/// `m` as a llama2.c version-0 file (run.c's layout), written here so the
/// loader is checked against an independent writer. RoPE tables are zeros.
std::vector<std::byte> serialize_llama2c(const llama::model& m) {
    const auto& c = m.cfg();
    std::vector<std::byte> out;
    auto put = [&](const void* p, std::size_t n) {
        const auto* b = static_cast<const std::byte*>(p);
        out.insert(out.end(), b, b + n);
    };
    const std::int32_t h[7] = {static_cast<std::int32_t>(c.dim),      static_cast<std::int32_t>(c.hidden_dim),
                               static_cast<std::int32_t>(c.n_layers), static_cast<std::int32_t>(c.n_heads),
                               static_cast<std::int32_t>(c.n_kv_heads),
                               static_cast<std::int32_t>(c.tied ? c.vocab_size : -c.vocab_size),
                               static_cast<std::int32_t>(c.max_seq)};
    put(h, sizeof h);
    auto floats = [&](const float* p, index_t n) { put(p, sizeof(float) * static_cast<std::size_t>(n)); };
    floats(m.embedding.data(), m.embedding.size());
    for (const auto& b : m.layers) floats(b.attn_norm.data(), c.dim);
    for (auto k : {linear_kind::q, linear_kind::k, linear_kind::v, linear_kind::o}) {
        for (const auto& b : m.layers) floats(b[k].data(), b[k].size());
        if (k == linear_kind::o)
            for (const auto& b : m.layers) floats(b.ffn_norm.data(), c.dim);
    }
    for (auto k : {linear_kind::gate, linear_kind::down, linear_kind::up})  // w1, w2, w3
        for (const auto& b : m.layers) floats(b[k].data(), b[k].size());
    floats(m.final_norm.data(), c.dim);
    out.resize(out.size() + sizeof(float) * static_cast<std::size_t>(c.max_seq * c.head_dim));
    if (!c.tied) floats(m.lm_head.data(), m.lm_head.size());
    return out;
}

fs::path temp_file(const std::string& name) { return fs::temp_directory_path() / ("tcq_test_llama_fixture_" + name); }

void write_bytes(const fs::path& p, std::span<const std::byte> b) {
    std::ofstream o(p, std::ios::binary | std::ios::trunc);
    o.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
}

std::vector<std::byte> read_bytes(const fs::path& p) {
    const auto s = llama::read_text(p);
    std::vector<std::byte> b(s.size());
    std::memcpy(b.data(), s.data(), s.size());
    return b;
}

void set_header(std::vector<std::byte>& b, int field, std::int32_t v) { std::memcpy(b.data() + 4 * field, &v, 4); }

bool same_model(const llama::model& a, const llama::model& b) {
    auto x = a, y = b;  // hf_tensors wants mutable models
    const auto ta = llama::hf_tensors(x), tb = llama::hf_tensors(y);
    if (ta.size() != tb.size()) return false;
    for (std::size_t i = 0; i < ta.size(); ++i)
        if (ta[i].name != tb[i].name || ta[i].shape != tb[i].shape ||
            std::memcmp(ta[i].data, tb[i].data, sizeof(float) * static_cast<std::size_t>(llama::numel(ta[i].shape))))
            return false;
    return true;
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
    CHECK(c.max_seq == 256);
    CHECK(c.tied);
    CHECK(c.head_dim == 32);
    CHECK(c.rope == llama::rope_pairs::interleaved);
    CHECK(c.bos_token_id == 1);
    CHECK(llama::max_length(m) == 256);
    index_t linear = 0;
    for (index_t l = 0; l < c.n_layers; ++l)
        for (auto k : llama::all_linear_kinds) linear += m.linear(l, k).rows() * m.linear(l, k).cols();
    CHECK(linear == 2433024);
    CHECK(m.linear(3, linear_kind::k).rows() == 96);
    CHECK(m.linear(3, linear_kind::down).cols() == 512);
    CHECK(llama::linear_name(3, linear_kind::q) == "model.layers.3.self_attn.q_proj");
    CHECK(llama::linear_name(5, linear_kind::down) == "model.layers.5.mlp.down_proj");
    CHECK_THROWS_AS((void)m.linear(6, linear_kind::q), std::out_of_range);
    CHECK(llama::load_model(fixture_dir + "model/model.bin").cfg() == c);  // a file goes to the llama2.c loader
}

TEST_CASE("the llama2.c loader puts every array where run.c has it (fixture, shared and separate classifier)") {
    // Re-serializing the loaded fixture reproduces the file except the RoPE tables (recomputed on load).
    const auto bytes = read_bytes(fixture_dir + "model/model.bin");
    const auto again = serialize_llama2c(fixture_model());
    REQUIRE(again.size() == bytes.size());
    const std::size_t rope_off = bytes.size() - 256 * 32 * 4;
    CHECK(std::memcmp(again.data(), bytes.data(), rope_off) == 0);

    for (bool tied : {true, false}) {
        CAPTURE(tied);
        const auto m = llama::random_model(tiny_config(tied), 3);
        const auto path = temp_file(tied ? "shared.bin" : "separate.bin");
        write_bytes(path, serialize_llama2c(m));
        const auto back = llama::load_llama2c(path);
        fs::remove(path);
        auto want = m.cfg();
        want.bos_token_id = 1;
        want.eos_token_id = 2;
        CHECK(back.cfg() == want);
        CHECK(same_model(back, m));
        CHECK(back.classifier().isApprox(m.classifier(), 0.f));
    }
}

TEST_CASE("the llama2.c loader rejects bad files with a message naming file and problem") {
    const auto good = serialize_llama2c(llama::random_model(tiny_config(false), 1));
    const auto path = temp_file("bad.bin");
    const std::string name = path.string();
    auto load = [&](std::span<const std::byte> b) {
        write_bytes(path, b);
        return llama::load_llama2c(path);
    };

    CHECK_THROWS_WITH_AS((void)load({}), doctest::Contains((name + ": truncated header").c_str()), tcq::error);
    CHECK_THROWS_WITH_AS((void)load(std::span(good).first(27)), doctest::Contains("truncated header"), tcq::error);
    CHECK_THROWS_WITH_AS((void)load(std::span(good).first(good.size() - 4)),
                         doctest::Contains((name + ": size mismatch").c_str()), tcq::error);
    CHECK_THROWS_WITH_AS((void)load(std::span(good).first(good.size() - 4)), doctest::Contains("(truncated)"), tcq::error);
    auto longer = good;
    longer.resize(good.size() + 3);
    CHECK_THROWS_WITH_AS((void)load(longer), doctest::Contains("(trailing data)"), tcq::error);

    struct corrupt {
        int field;
        std::int32_t value;
        const char* message;
    };
    // Header fields are checked under their HF names (the loader builds a config).
    for (auto c : {corrupt{0, 0, "hidden_size = 0"}, corrupt{0, -24, "hidden_size = -24"},
                   corrupt{0, 1 << 30, "hidden_size = 1073741824"}, corrupt{1, 0, "intermediate_size = 0"},
                   corrupt{2, 0, "num_hidden_layers = 0"}, corrupt{2, 100000, "num_hidden_layers = 100000"},
                   corrupt{3, 5, "n_heads = 5 does not divide dim = 24"}, corrupt{3, 0, "n_heads = 0"},
                   corrupt{4, 3, "does not divide num_attention_heads"}, corrupt{4, 8, "num_key_value_heads = 8"},
                   corrupt{5, 0, "vocab_size = 0"}, corrupt{5, INT32_MIN, "vocab_size = 0"},
                   corrupt{6, 0, "max_position_embeddings = 0"}, corrupt{6, -1, "max_position_embeddings = -1"},
                   corrupt{3, 8, "is odd"}}) {
        CAPTURE(c.field);
        CAPTURE(c.value);
        auto b = good;
        set_header(b, c.field, c.value);
        if (c.field == 3 && c.value == 8) set_header(b, 4, 8);  // head size 24 / 8 = 3
        CHECK_THROWS_WITH_AS((void)load(b), doctest::Contains((name + ": header").c_str()), tcq::error);
        CHECK_THROWS_WITH_AS((void)load(b), doctest::Contains(c.message), tcq::error);
    }
    // A plausible header whose sizes disagree with the file: the classifier sign flips the expected size.
    auto flipped = good;
    set_header(flipped, 5, 259);
    CHECK_THROWS_WITH_AS((void)load(flipped), doctest::Contains("size mismatch"), tcq::error);

    auto nan = good;
    const float q = std::nanf("");
    std::memcpy(nan.data() + 28 + 4 * 259 * 24 + 4 * 2 * 24 + 4 * 5, &q, 4);  // layers.0.wq[5]
    CHECK_THROWS_WITH_AS((void)load(nan), doctest::Contains("non-finite value nan in layers.0.wq at index 5"), tcq::error);
    fs::remove(path);
    CHECK_THROWS_WITH_AS((void)llama::load_llama2c(temp_file("does_not_exist.bin")), doctest::Contains("cannot open"),
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
        const auto text = llama::read_text(fixture_dir + "data/" + t.name + ".valid.txt");
        const index_t windows = sanitized_build ? 4 : 64;
        const auto w = eval_windows(text, windows, t.name);
        const auto r = llama::task_loss(m, w.view(), tcq::par(2));
        CHECK(r.windows == windows);
        if (sanitized_build)
            CHECK(std::abs(r.loss - t.loss) < 0.5);
        else
            CHECK(std::abs(r.loss - t.loss) < 1e-3);
    }
}

TEST_CASE("fp32 fixture arith accuracy is 287 +- 2 of 500") {
    const auto text = llama::read_text(fixture_dir + "data/arith.valid.txt");
    CHECK(llama::is_arith_text(text));
    const index_t problems = sanitized_build ? 25 : 500;
    const auto r = llama::arith_accuracy(fixture_model(), codec(), text, "arith", problems, tcq::par(2));
    CHECK(r.total == problems);
    CHECK(r.correct <= r.total);
    if (!sanitized_build) {
        CHECK(r.correct >= 285);
        CHECK(r.correct <= 289);
    }
}

TEST_CASE("KV-cached decoding reproduces the full forward on the fixture") {
    // Random models of every feature are in test_llama_grad.cpp; this is the trained one.
    const auto& m = fixture_model();
    const auto text = llama::read_text(fixture_dir + "data/gsm8k.valid.txt");
    const auto tokens = codec().encode_sequence(text.substr(100, 150));
    REQUIRE(tokens.size() == 151u);
    const auto full = llama::forward_logits(m, tokens);
    llama::decoder dec(m);
    // Uneven pieces: a prefill, single steps, another multi-token extend past one attention tile.
    index_t at = 0;
    for (index_t n : {13, 1, 1, 1, 7, 1, 127}) {
        const auto logits = dec.extend(std::span(tokens).subspan(static_cast<std::size_t>(at), static_cast<std::size_t>(n)));
        at += n;
        CAPTURE(at);
        const auto row = full.row(at - 1);
        float diff = 0;
        for (index_t v = 0; v < row.size(); ++v) diff = std::max(diff, std::abs(row(v) - logits[static_cast<std::size_t>(v)]));
        CHECK(diff < 1e-4f * (1.f + row.cwiseAbs().maxCoeff()));
        CHECK(llama::argmax(logits) ==
              llama::argmax(std::span<const float>(row.data(), static_cast<std::size_t>(row.size()))));
    }
    CHECK(dec.position() == 151);
    CHECK_THROWS_WITH_AS((void)llama::decoder(m, 257), doctest::Contains("exceeds the model's longest sequence 256"),
                         tcq::error);
}

TEST_CASE("greedy generation continues arithmetic") {
    llama::decoder dec(fixture_model());
    auto stop = [&](std::int32_t t) { return codec().is_special(t); };
    const auto out = llama::greedy(dec, codec().encode_sequence("123+456="), 6, stop);
    CHECK(out.size() == 6u);
    CHECK(codec().decode(out).substr(0, 4) == "579\n");
    CHECK(codec().ends_line(out[3]));
    CHECK_FALSE(codec().ends_line(out[0]));
    CHECK(llama::greedy(dec, codec().encode_sequence(""), 3, stop).size() <= 3u);  // BOS alone is a prompt
    CHECK(llama::greedy(dec, codec().prefix(), 0, stop).empty());
}

TEST_CASE("evaluation windows and calibration sampling") {
    std::string text(1000, 'x');
    for (std::size_t i = 0; i < text.size(); ++i) text[i] = static_cast<char>('a' + i % 26);
    const auto ids = ids_of(text);
    const auto& pre = codec().prefix();
    REQUIRE(pre == std::vector<std::int32_t>{llama::tok_bos});
    CHECK(codec().encode_sequence("ab") == std::vector<std::int32_t>{llama::tok_bos, llama::byte_token('a'),
                                                                      llama::byte_token('b')});
    const auto w = llama::id_eval_windows(pre, ids, 64, "t", 256);
    CHECK(w.count == 3);  // 1000 / 255
    CHECK(w.length == 256);
    CHECK(w.row(1)[0] == llama::tok_bos);
    CHECK(w.row(1)[1] == llama::byte_token(static_cast<unsigned char>(text[255])));
    CHECK(w.row(2)[255] == llama::byte_token(static_cast<unsigned char>(text[3 * 255 - 1])));
    CHECK(llama::id_eval_windows(pre, ids, 2, "t", 256).count == 2);
    CHECK_THROWS_WITH_AS((void)llama::id_eval_windows(pre, std::span(ids).first(254), 64, "short.txt", 256),
                         doctest::Contains("short.txt"), tcq::error);
    CHECK_THROWS_WITH_AS((void)llama::id_eval_windows(pre, ids, 64, "one.txt", 1),
                         doctest::Contains("one.txt: window length 1 leaves no room"), tcq::error);

    const auto a = llama::id_sample_windows(pre, ids, 7, 42, "t", 256);
    const auto b = llama::id_sample_windows(pre, ids, 7, 42, "t", 256);
    const auto c = llama::id_sample_windows(pre, ids, 7, 43, "t", 256);
    CHECK(a.tokens == b.tokens);
    CHECK(a.tokens != c.tokens);
    std::mt19937_64 rng(42);
    for (index_t i = 0; i < 7; ++i) {
        const auto off = rng() % (1000 - 255 + 1);  // the documented offset rule
        CHECK(a.row(i)[0] == llama::tok_bos);
        CHECK(a.row(i)[1] == llama::byte_token(static_cast<unsigned char>(text[off])));
        CHECK(a.row(i)[255] == llama::byte_token(static_cast<unsigned char>(text[off + 254])));
    }
    CHECK(llama::id_sample_windows(pre, std::span(ids).first(255), 2, 1, "t", 256).count == 2);  // one position
    CHECK_THROWS_WITH_AS((void)llama::id_sample_windows(pre, std::span(ids).first(254), 2, 1, "calib.txt", 256),
                         doctest::Contains("calib.txt: 254 tokens is shorter"), tcq::error);

    const auto t1 = ids_of(std::string(300, 'p')), t2 = ids_of(std::string(400, 'q')), t3 = ids_of(std::string(500, 'r'));
    const std::vector<std::vector<std::int32_t>> texts{t1, t2, t3};
    const auto mix = llama::id_sample_mix(pre, texts, 8, 1, 256);
    REQUIRE(mix.count == 8);
    const char want[] = "pppqqqrr";  // shares 3, 3, 2 in text order
    for (index_t i = 0; i < 8; ++i) CHECK(mix.row(i)[1] == llama::byte_token(static_cast<unsigned char>(want[i])));
    // Text f is drawn with seed + f.
    const auto second = llama::id_sample_windows(pre, t2, 3, 2, "x", 256);
    CHECK(std::equal(second.tokens.begin(), second.tokens.end(), mix.tokens.begin() + 3 * 256));
    const std::vector<std::vector<std::int32_t>> with_short{t1, ids_of("too short"), t3};
    CHECK_THROWS_WITH_AS((void)llama::id_sample_mix(pre, with_short, 8, 1, 256), doctest::Contains("calibration text 1"),
                         tcq::error);
}

TEST_CASE("windows without a prefix (a tokenizer that adds no BOS) use every position for ids") {
    std::vector<std::int32_t> ids(1000);
    for (std::size_t i = 0; i < ids.size(); ++i) ids[i] = static_cast<std::int32_t>(i % 251);
    const std::vector<std::int32_t> none;
    const auto w = llama::id_eval_windows(none, ids, 64, "t", 255);
    CHECK(w.count == 3);  // 1000 / 255
    CHECK(w.length == 255);
    CHECK(w.row(1)[0] == ids[255]);
    CHECK(w.row(2)[254] == ids[3 * 255 - 1]);
    const auto s = llama::id_sample_windows(none, ids, 5, 9, "t", 255);
    std::mt19937_64 rng(9);
    for (index_t i = 0; i < 5; ++i) {
        const auto off = rng() % (1000 - 255 + 1);
        CHECK(s.row(i)[0] == ids[off]);
        CHECK(s.row(i)[254] == ids[off + 254]);
    }
    CHECK(llama::id_sample_windows(none, std::span(ids).first(255), 1, 1, "t", 255).row(0)[0] == ids[0]);
    CHECK_THROWS_WITH_AS((void)llama::id_eval_windows(none, std::span(ids).first(254), 4, "nobos.txt", 255),
                         doctest::Contains("nobos.txt: 254 tokens is shorter than one window of 255"), tcq::error);
    CHECK_THROWS_WITH_AS((void)llama::id_sample_windows(none, ids, 1, 1, "zero.txt", 0),
                         doctest::Contains("zero.txt: bad sample request"), tcq::error);
}

TEST_CASE("arith problems follow the protocol and tolerate other lines") {
    const std::string text = "1+1=2\nhello\n2+2=4\n3+3=6\n12+30=42\nnot a problem\n5+5=10\n4+4=\n7+8=15";
    const auto p = llama::arith_problems(text, 500);
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
    CHECK(llama::arith_problems(text, 2).size() == 2u);
    CHECK(llama::is_arith_text("1+2=3\n4+5=9\n10+1=11\n2+2=4\n"));
    CHECK_FALSE(llama::is_arith_text(text));
    CHECK_FALSE(llama::is_arith_text("Q: 1+2=3?\nA: yes\n"));
}

TEST_CASE("short evaluation files use what they have; empty ones are errors") {
    const auto& m = fixture_model();
    const auto text = llama::read_text(fixture_dir + "data/arith.valid.txt");
    std::size_t end = 0;
    for (int i = 0; i < 23; ++i) end = text.find('\n', end) + 1;
    const auto r = llama::arith_accuracy(m, codec(), text.substr(0, end), "head", 500, tcq::par(2));  // 23 lines
    CHECK(r.total == 20);
    CHECK(r.correct <= r.total);
    CHECK_THROWS_WITH_AS((void)llama::arith_accuracy(m, codec(), "1+1=2\n2+2=4\n3+3=6\n", "tiny.txt", 500, tcq::seq()),
                         doctest::Contains("tiny.txt: no line"), tcq::error);
    const std::string long_lines = std::string(300, '1') + "\n1\n1\n1+1=2\n";
    CHECK_THROWS_WITH_AS((void)llama::arith_accuracy(m, codec(), long_lines, "long.txt", 500, tcq::seq()),
                         doctest::Contains("long.txt: the prompt of line 4 leaves no room"), tcq::error);
    const auto w = eval_windows(text.substr(0, 255 * 3 + 10), 64, "three");
    const auto l = llama::task_loss(m, w.view(), tcq::par(2));
    CHECK(l.windows == 3);
    CHECK(std::isfinite(l.loss));
    CHECK_THROWS_WITH_AS((void)eval_windows("tiny", 64, "tiny.txt"), doctest::Contains("tiny.txt"), tcq::error);
}

TEST_CASE("forward entry points validate tokens") {
    const auto& m = fixture_model();
    llama::token_batch b(2, 11);
    for (auto& t : b.tokens) t = 50;
    CHECK(llama::sequence_losses(m, b.view(), tcq::seq()).size() == 2u);
    b.tokens[14] = 259;
    CHECK_THROWS_WITH_AS((void)llama::sequence_losses(m, b.view(), tcq::seq()), doctest::Contains("token 259 at (1, 3)"),
                         tcq::error);
    b.tokens[14] = -1;
    CHECK_THROWS_WITH_AS((void)llama::sequence_losses(m, b.view(), tcq::seq()), doctest::Contains("token -1 at (1, 3)"),
                         tcq::error);
    CHECK_THROWS_WITH_AS((void)llama::sequence_losses(m, llama::token_batch(1, 257).view(), tcq::seq()),
                         doctest::Contains("sequence length 257"), tcq::error);
    CHECK_THROWS_AS((void)llama::sequence_losses(m, llama::token_batch(1, 1).view(), tcq::seq()), tcq::error);
    llama::decoder dec(m);
    const std::int32_t bad[2] = {5, 300};
    CHECK_THROWS_WITH_AS((void)dec.extend(bad), doctest::Contains("token 300"), tcq::error);
    // Losses do not depend on the thread count.
    const auto w = eval_windows(llama::read_text(fixture_dir + "data/shakespeare.valid.txt"), 5, "s");
    CHECK(llama::sequence_losses(m, w.view(), tcq::seq()) == llama::sequence_losses(m, w.view(), tcq::par(2)));
}

TEST_CASE("the codec a model gets: tokenizer.json prefixes, ids only, and what it refuses") {
    const std::string tok = TCQ_SOURCE_DIR "/tests/data/tokenizers/";
    // Llama-2 (SentencePiece BPE): one BOS <s> = 1; Qwen2 adds none.
    const auto spm = llama::text_codec::for_model(tok + "llama-spm", 32000);
    CHECK(spm.prefix() == std::vector<std::int32_t>{1});
    const auto ids = spm.encode("12+30=42\n");
    CHECK(spm.decode(ids) == "12+30=42\n");
    CHECK(spm.ends_line(ids.back()));
    CHECK_FALSE(spm.ends_line(ids.front()));
    CHECK(spm.is_special(2));
    const auto qwen = llama::text_codec::for_model(tok + "qwen2", 151936);
    CHECK(qwen.prefix().empty());
    CHECK(qwen.encode_sequence("a b") == qwen.encode("a b"));
    // A tokenizer larger than the model's vocabulary is refused, naming both.
    CHECK_THROWS_WITH_AS((void)llama::text_codec::for_model(tok + "qwen2", 1001), doctest::Contains("vocab_size 1001"),
                         tcq::error);
    // No tokenizer and not the byte vocabulary: ids only, with config.json's BOS; text is an error naming the model.
    const auto only = llama::text_codec::for_model("/nowhere/model", 49152, std::nullopt, 0);
    CHECK(only.prefix() == std::vector<std::int32_t>{0});
    CHECK(only.describe() == "ids only");
    CHECK_THROWS_WITH_AS((void)only.encode("x"), doctest::Contains("/nowhere/model: no tokenizer.json"), tcq::error);
    CHECK(llama::text_codec::for_model("/nowhere/model", 49152).prefix().empty());
    // The byte vocabulary of a 259-token model.
    const auto bytes = llama::text_codec::for_model("/nowhere/model.bin", 259);
    CHECK(bytes.encode_sequence("a") == std::vector<std::int32_t>{llama::tok_bos, llama::byte_token('a')});
}

TEST_CASE("answer spans: rule and JSONL segments, flags through sampling, bad input") {
    const std::string text = "1+2=3\n40+5=45\nend";
    const auto segs = llama::answer_segments(text, {"=", "\n"}, "t.txt");
    REQUIRE(segs.size() == 5);
    CHECK(segs[0].text == "1+2=");
    CHECK_FALSE(segs[0].answer);
    CHECK(segs[1].text == "3\n");
    CHECK(segs[1].answer);
    CHECK(segs[2].text == "40+5=");
    CHECK(segs[3].text == "45\n");
    CHECK(segs[4].text == "end");
    CHECK_FALSE(segs[4].answer);
    const auto st = llama::encode_segments(codec(), segs);
    REQUIRE(st.ids == ids_of(text));  // byte vocabulary: segment-wise encoding is the text's
    std::string marks;
    for (auto f : st.scored) marks += f ? 'x' : '.';
    CHECK(marks == "....xx.....xxx...");
    // An answer without its terminator runs to the end; a marker that never occurs is refused.
    const auto tail = llama::answer_segments("Q: hi\nA: yes", {"A:", "\n\n"}, "g.txt");
    REQUIRE(tail.size() == 2);
    CHECK(tail[1].text == " yes");
    CHECK_THROWS_WITH_AS((void)llama::answer_segments("no marker", {"=", "\n"}, "x.txt"),
                         doctest::Contains("x.txt: the answer marker '=' does not occur"), tcq::error);

    const auto pc = llama::prompt_completion_segments(
        "{\"prompt\": \"7+1=\", \"completion\": \"8\"}\n\n{\"prompt\": \"\", \"completion\": \"ok\"}\n", "d.jsonl");
    REQUIRE(pc.size() == 4);
    CHECK(pc[0].text == "7+1=");
    CHECK(pc[1].text == "8\n");
    CHECK(pc[1].answer);
    CHECK(pc[3].text == "ok\n");
    CHECK_THROWS_WITH_AS((void)llama::prompt_completion_segments("{\"prompt\": 1, \"completion\": \"a\"}", "d.jsonl"),
                         doctest::Contains("d.jsonl:1: field \"prompt\""), tcq::error);
    CHECK_THROWS_WITH_AS((void)llama::prompt_completion_segments("{\"prompt\": \"a\"}\n{oops", "d.jsonl"),
                         doctest::Contains("d.jsonl:1: field \"completion\""), tcq::error);
    CHECK_THROWS_WITH_AS((void)llama::prompt_completion_segments("{\"prompt\": \"a\", \"completion\": \"b\"}\n{oops", "d.jsonl"),
                         doctest::Contains("d.jsonl:2: not a JSON record"), tcq::error);
    CHECK_THROWS_WITH_AS((void)llama::prompt_completion_segments("\n \n", "e.jsonl"), doctest::Contains("e.jsonl: no JSONL record"),
                         tcq::error);

    // Windows carry their ids' flags (the BOS is never scored), drawn at the same offsets.
    std::string lines;
    for (int i = 0; i < 60; ++i) lines += std::to_string(100 + i) + "+" + std::to_string(i) + "=" + std::to_string(100 + 2 * i) + "\n";
    const auto stream = llama::encode_segments(codec(), llama::answer_segments(lines, {"=", "\n"}, "a.txt"));
    const auto& pre = codec().prefix();
    const auto plain = llama::id_sample_windows(pre, stream.ids, 4, 5, "a.txt", 64);
    const auto marked = llama::id_sample_windows(pre, stream.ids, 4, 5, "a.txt", 64, stream.scored);
    CHECK(plain.tokens == marked.tokens);
    REQUIRE(marked.scored.size() == marked.tokens.size());
    CHECK(plain.scored.empty());
    for (index_t r = 0; r < marked.count; ++r) {
        CHECK(marked.scored[static_cast<std::size_t>(r * 64)] == 0);
        // After the window's first newline the state is known: flagged from
        // the byte after '=' through the next '\n'.
        bool known = false, in_answer = false;
        index_t checked = 0;
        for (index_t t = 1; t < 64; ++t) {
            const auto tok = marked.row(r)[static_cast<std::size_t>(t)];
            const bool f = marked.scored[static_cast<std::size_t>(r * 64 + t)] != 0;
            if (known) {
                CHECK(f == in_answer);
                ++checked;
            }
            if (tok == llama::byte_token('=')) in_answer = true;
            if (tok == llama::byte_token('\n')) {
                known = true;
                in_answer = false;
            }
        }
        CHECK(checked > 40);
    }
    CHECK(llama::scored_targets(marked) > 0);
    const std::vector<llama::id_stream> mixed{stream, {stream.ids, {}}};
    CHECK_THROWS_WITH_AS((void)llama::id_sample_mix(pre, std::span<const llama::id_stream>(mixed), 4, 1, 64),
                         doctest::Contains("calibration text 1 has no answer spans"), tcq::error);
}

}  // namespace test_llama_fixture
