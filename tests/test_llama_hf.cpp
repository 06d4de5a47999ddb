// Hugging Face checkpoints for the Llama-family engine: config.json parsing
// (every architecture, every refusal), single/sharded safetensors round trips
// in F32/BF16, the fixture through the llama2.c loader and its HF export
// (same losses, the documented fp32 numbers), and bad input naming file and field.
#include <doctest/doctest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "llama/checkpoint.hpp"
#include "llama/codec.hpp"
#include "llama/eval.hpp"
#include "llama/forward.hpp"

#include "llama_test_util.hpp"
#include "sanitized_build.hpp"

// Own namespace: the four engine test files compile as one unity translation
// unit (tests/llama.cmake), where their helpers would otherwise collide.
namespace test_llama_hf {

namespace fs = std::filesystem;
using llama::index_t;
using llama::RowMatrixXf;

namespace {

const std::string fixture_dir = TCQ_SOURCE_DIR "/examples/fixture/";

fs::path temp_dir(const std::string& name) {
    const auto p = fs::temp_directory_path() / ("tcq_test_llama_hf_" + name);
    fs::remove_all(p);
    return p;
}

void write_text(const fs::path& p, const std::string& s) {
    std::ofstream o(p, std::ios::binary | std::ios::trunc);
    o << s;
}

std::string read_all(const fs::path& p) { return tcq::safetensors::directory::read_text(p); }

/// Real configs (abridged to the keys that matter) of each architecture.
const char* smollm2_135m = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 576,
 "intermediate_size": 1536, "num_hidden_layers": 30, "num_attention_heads": 9, "num_key_value_heads": 3,
 "vocab_size": 49152, "max_position_embeddings": 8192, "rope_theta": 100000, "rms_norm_eps": 1e-05,
 "tie_word_embeddings": true, "hidden_act": "silu", "attention_bias": false, "mlp_bias": false,
 "rope_scaling": null, "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "bfloat16", "pretraining_tp": 1})";
const char* qwen25_05b = R"({"architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_size": 896,
 "intermediate_size": 4864, "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
 "vocab_size": 151936, "max_position_embeddings": 32768, "rope_theta": 1000000.0, "rms_norm_eps": 1e-06,
 "tie_word_embeddings": true, "hidden_act": "silu", "sliding_window": 32768, "use_sliding_window": false,
 "max_window_layers": 21, "bos_token_id": 151643, "eos_token_id": 151643})";
const char* llama32_1b = R"({"architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
 "intermediate_size": 8192, "num_hidden_layers": 16, "num_attention_heads": 32, "num_key_value_heads": 8,
 "head_dim": 64, "vocab_size": 128256, "max_position_embeddings": 131072, "rope_theta": 500000.0,
 "rms_norm_eps": 1e-05, "tie_word_embeddings": true, "hidden_act": "silu",
 "rope_scaling": {"factor": 32.0, "high_freq_factor": 4.0, "low_freq_factor": 1.0,
 "original_max_position_embeddings": 8192, "rope_type": "llama3"}, "bos_token_id": 128000,
 "eos_token_id": 128001})";
const char* qwen3_06b = R"({"architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "hidden_size": 1024,
 "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
 "head_dim": 128, "vocab_size": 151936, "max_position_embeddings": 40960, "rope_theta": 1000000,
 "rms_norm_eps": 1e-06, "tie_word_embeddings": true, "hidden_act": "silu", "attention_bias": false,
 "sliding_window": null, "use_sliding_window": false, "max_window_layers": 28, "rope_scaling": null})";
const char* mistral_7b = R"({"architectures": ["MistralForCausalLM"], "model_type": "mistral", "hidden_size": 4096,
 "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
 "vocab_size": 32000, "max_position_embeddings": 32768, "rope_theta": 10000.0, "rms_norm_eps": 1e-05,
 "tie_word_embeddings": false, "hidden_act": "silu", "sliding_window": 4096})";

llama::config parse(const std::string& s) { return llama::parse_hf_config(s, "config.json"); }

/// `base` with `key` replaced by the raw JSON `value` (or removed if empty).
std::string with(const char* base, const std::string& key, const std::string& value) {
    auto j = nlohmann::json::parse(base);
    if (value.empty())
        j.erase(key);
    else
        j[key] = nlohmann::json::parse(value);
    return j.dump();
}

llama::config tiny(const char* arch) {
    auto c = llama_tiny_config(arch);
    const std::string a = arch;
    if (a == "Qwen2ForCausalLM") c.qkv_bias = c.tied = true;
    if (a == "Qwen3ForCausalLM") c.qk_norm = true;
    if (a == "LlamaForCausalLM") c.scaling = llama::llama3_scaling{8.0, 1.0, 4.0, 16};
    if (a == "MistralForCausalLM") c.sliding_window = 40;
    return c;
}

const char* archs[] = {"LlamaForCausalLM", "MistralForCausalLM", "Qwen2ForCausalLM", "Qwen3ForCausalLM"};

std::vector<std::int32_t> random_tokens(index_t n, index_t len, index_t vocab, unsigned seed) {
    std::mt19937 g(seed);
    std::vector<std::int32_t> t(static_cast<std::size_t>(n * len));
    for (auto& x : t) x = static_cast<std::int32_t>(g() % static_cast<unsigned>(vocab));
    return t;
}

bool same_weights(llama::model& a, llama::model& b) {
    auto ta = llama::hf_tensors(a), tb = llama::hf_tensors(b);
    if (ta.size() != tb.size()) return false;
    for (std::size_t i = 0; i < ta.size(); ++i) {
        const index_t n = llama::numel(ta[i].shape);
        if (ta[i].name != tb[i].name || ta[i].shape != tb[i].shape ||
            std::memcmp(ta[i].data, tb[i].data, sizeof(float) * static_cast<std::size_t>(n)) != 0)
            return false;
    }
    return true;
}

/// A saved tiny checkpoint of `arch` (F32, one file) for the bad-input cases.
fs::path saved_tiny(const std::string& name, const char* arch = "Qwen2ForCausalLM") {
    const auto dir = temp_dir(name);
    llama::save_hf(llama::random_model(tiny(arch), 3), dir, {tcq::safetensors::dtype::F32, 1u << 30, {}});
    return dir;
}

}  // namespace

TEST_CASE("config.json of each architecture parses to the documented fields") {
    const auto s = parse(smollm2_135m);
    CHECK(s.dim == 576);
    CHECK(s.n_heads == 9);
    CHECK(s.n_kv_heads == 3);
    CHECK(s.head_dim == 64);
    CHECK(s.tied);
    CHECK(s.rope_theta == 100000);
    CHECK(s.norm_eps == doctest::Approx(1e-5));
    CHECK(!s.scaling);
    CHECK(s.bos_token_id == 1);
    CHECK(s.rope == llama::rope_pairs::half);

    const auto q = parse(qwen25_05b);
    CHECK(q.qkv_bias);
    CHECK(!q.o_bias);
    CHECK(!q.mlp_bias);
    CHECK(q.sliding_window == 0);  // use_sliding_window false: inactive
    CHECK(q.vocab_size == 151936);
    // use_sliding_window on layers >= max_window_layers: none of 24 at 24, all at 0.
    const auto q_on = with(with(qwen25_05b, "use_sliding_window", "true").c_str(), "max_window_layers", "24");
    CHECK(parse(q_on).sliding_window == 0);
    CHECK(parse(with(q_on.c_str(), "max_window_layers", "0")).sliding_window == 32768);

    const auto l = parse(llama32_1b);
    REQUIRE(l.scaling);
    CHECK(l.scaling->factor == 32);
    CHECK(l.scaling->original_max_position_embeddings == 8192);
    CHECK(l.head_dim == 64);

    const auto q3 = parse(qwen3_06b);
    CHECK(q3.qk_norm);
    CHECK(q3.head_dim == 128);
    CHECK(q3.q_dim() == 2048);  // wider than hidden_size
    CHECK(!q3.qkv_bias);

    const auto m = parse(mistral_7b);
    CHECK(m.sliding_window == 4096);
    CHECK(!m.tied);
    CHECK(m.n_kv_heads == 8);

    // Defaults of absent keys: num_key_value_heads = heads, head_dim = hidden/heads.
    const auto d = parse(with(with(smollm2_135m, "num_key_value_heads", "").c_str(), "rope_theta", ""));
    CHECK(d.n_kv_heads == 9);
    CHECK(d.rope_theta == 10000);
}

TEST_CASE("to_hf_config writes what parse_hf_config reads back") {
    for (const char* a : archs) {
        CAPTURE(a);
        auto c = tiny(a);
        c.bos_token_id = 1;
        c.eos_token_id = 2;
        CHECK(parse(llama::to_hf_config(c)) == c);
    }
    auto q3 = tiny("Qwen3ForCausalLM");
    q3.qkv_bias = q3.o_bias = true;  // Qwen3 attention_bias
    CHECK(parse(llama::to_hf_config(q3)) == q3);
    auto q2 = tiny("Qwen2ForCausalLM");
    q2.sliding_window = 32;  // every layer slides
    CHECK(parse(llama::to_hf_config(q2)) == q2);
}

TEST_CASE("unsupported or contradictory config values are errors naming key and value") {
    struct bad {
        const char* base;
        std::string key, value, message;
    };
    const std::vector<bad> cases{
        {smollm2_135m, "hidden_size", "", "missing field 'hidden_size'"},
        {smollm2_135m, "vocab_size", "", "missing field 'vocab_size'"},
        {smollm2_135m, "hidden_size", "\"576\"", "field 'hidden_size' is not an integer: \"576\""},
        {smollm2_135m, "num_attention_heads", "7", "num_attention_heads = 7 does not divide hidden_size = 576"},
        {smollm2_135m, "num_key_value_heads", "2", "num_key_value_heads = 2 does not divide num_attention_heads = 9"},
        {smollm2_135m, "hidden_act", "\"gelu\"", "unsupported hidden_act = \"gelu\""},
        {smollm2_135m, "architectures", "[\"GPT2LMHeadModel\"]", "unsupported architectures = [\"GPT2LMHeadModel\"]"},
        {smollm2_135m, "model_type", "\"qwen2\"", "field 'model_type' = \"qwen2\" contradicts"},
        {smollm2_135m, "rope_scaling", R"({"rope_type": "yarn", "factor": 4.0})",
         "unsupported rope_scaling.rope_type = \"yarn\""},
        {smollm2_135m, "rope_scaling", R"({"type": "linear", "factor": 2.0})",
         "unsupported rope_scaling.rope_type = \"linear\""},
        {smollm2_135m, "quantization_config", R"({"quant_method": "gptq"})", "unsupported quantization_config"},
        {smollm2_135m, "rms_norm_eps", "0", "rms_norm_eps = 0"},
        {smollm2_135m, "tie_word_embeddings", "1", "field 'tie_word_embeddings' is not true/false: 1"},
        {smollm2_135m, "head_dim", "63", "head_dim = 63 is odd"},
        {smollm2_135m, "sliding_window", "4096", "unsupported sliding_window = 4096"},
        {mistral_7b, "attention_bias", "true", "unsupported attention_bias = true"},
        {qwen25_05b, "mlp_bias", "true", "unsupported mlp_bias = true"},
        {qwen25_05b, "use_sliding_window", "true", "unsupported max_window_layers = 21"},
        {llama32_1b, "rope_scaling", R"({"rope_type": "llama3"})", "missing field 'rope_scaling.factor'"},
        {llama32_1b, "rope_scaling",
         R"({"rope_type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1})",
         "need 0 < low < high"},
        {qwen3_06b, "num_key_value_heads", "-3", "field 'num_key_value_heads' = -3 is negative"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.key);
        CAPTURE(c.value);
        CHECK_THROWS_WITH_AS((void)parse(with(c.base, c.key, c.value)), doctest::Contains(c.message.c_str()),
                             tcq::error);
    }
    CHECK_THROWS_WITH_AS((void)parse("{\"hidden_size\": "), doctest::Contains("config.json: not valid JSON"), tcq::error);
    CHECK_THROWS_WITH_AS((void)parse("[1]"), doctest::Contains("not a JSON object"), tcq::error);
}

TEST_CASE("HF checkpoints round-trip: F32 exactly, BF16 sharded with an index") {
    for (const char* a : archs) {
        CAPTURE(a);
        auto m = llama::random_model(tiny(a), 17, 0.3f);
        const auto dir = temp_dir(std::string("rt_") + a);
        llama::save_hf(m, dir, {tcq::safetensors::dtype::F32, 1u << 30, {{"tokenizer.json", "{}"}}});
        CHECK(fs::exists(dir / "model.safetensors"));
        CHECK(read_all(dir / "tokenizer.json") == "{}");
        auto back = llama::load_hf(dir);
        CHECK(back.cfg() == m.cfg());
        CHECK(same_weights(m, back));

        // BF16 in shards of at most 8 KB: several files and an index.
        const auto sdir = temp_dir(std::string("shard_") + a);
        llama::save_hf(m, sdir, {tcq::safetensors::dtype::BF16, 8192, {}});
        CHECK(fs::exists(sdir / "model.safetensors.index.json"));
        CHECK(!fs::exists(sdir / "model.safetensors"));
        const auto idx = tcq::safetensors::parse_shard_index(read_all(sdir / "model.safetensors.index.json"), "index");
        CHECK(idx.shards().size() > 2);
        CHECK(idx.shards().front().starts_with("model-00001-of-"));
        auto sb = llama::load_hf(sdir);
        auto rounded = m;
        for (auto& t : llama::hf_tensors(rounded)) {
            const index_t n = llama::numel(t.shape);
            for (index_t i = 0; i < n; ++i) t.data[i] = tcq::round_to_bf16(t.data[i]);
        }
        CHECK(same_weights(rounded, sb));
        const auto toks = random_tokens(3, 21, 41, 2);
        const auto view = tcq::make_view(toks.data(), 3, 21);
        CHECK(llama::sequence_losses(sb, view, tcq::seq()) == llama::sequence_losses(rounded, view, tcq::seq()));
        fs::remove_all(dir);
        fs::remove_all(sdir);
    }
}

TEST_CASE("the fixture through the llama2.c loader and its HF export gives the same numbers") {
    const auto m = llama::load_llama2c(fixture_dir + "model/model.bin");
    CHECK(m.cfg().dim == 192);
    CHECK(m.cfg().n_kv_heads == 3);
    CHECK(m.cfg().vocab_size == 259);
    CHECK(m.cfg().tied);
    const auto dir = temp_dir("fixture");
    llama::save_hf(m, dir, {tcq::safetensors::dtype::F32, 1u << 30, {}});
    const auto hf = llama::load_hf(dir);
    CHECK(hf.cfg().rope == llama::rope_pairs::half);  // q/k rows permuted to rotate-half order
    {
        // The byte vocabulary's tokenizer.json: <0xNN> is 3 + N, BOS <s> = 1 prepended.
        const auto files = llama::byte_tokenizer_files(256);
        REQUIRE(files.size() == 2u);
        const auto tok = nlohmann::json::parse(files[0].second);
        CHECK(tok["model"]["vocab"].size() == 259u);
        CHECK(tok["model"]["vocab"]["<0x41>"] == llama::byte_token('A'));
        CHECK(tok["model"]["vocab"]["<0x0A>"] == llama::byte_token('\n'));
        CHECK(tok["model"]["vocab"]["<s>"] == llama::tok_bos);
        CHECK(tok["model"]["byte_fallback"] == true);
        CHECK(tok["post_processor"]["special_tokens"]["<s>"]["ids"][0] == llama::tok_bos);
        CHECK(nlohmann::json::parse(files[1].second)["add_bos_token"] == true);
    }

    const auto codec = llama::text_codec::bytes();
    const index_t windows = sanitized_build ? 2 : 64;
    struct task {
        const char* name;
        double loss;
    };
    for (auto t : {task{"arith", 1.24805}, task{"gsm8k", 1.15486}, task{"shakespeare", 1.44496}}) {
        CAPTURE(t.name);
        const auto ids = codec.encode(llama::read_text(fixture_dir + "data/" + t.name + ".valid.txt"));
        // Both layouts compute the same function: RoPE tables differ only in rounding
        // (run.c's float formula vs double), so a few windows agree to float noise.
        const auto few = llama::id_eval_windows(codec.prefix(), ids, 4, t.name, llama::window_tokens);
        const double a = llama::task_loss(m, few.view(), tcq::par(2)).loss;
        const double b4 = llama::task_loss(hf, few.view(), tcq::par(2)).loss;
        CHECK(std::abs(a - b4) < 1e-5);
        // The HF export reproduces the documented fp32 numbers (tests/test_llama_fixture.cpp pins the llama2.c side).
        const auto w = llama::id_eval_windows(codec.prefix(), ids, windows, t.name, llama::window_tokens);
        const auto r = llama::task_loss(hf, w.view(), tcq::par(2));
        CHECK(r.windows == windows);
        if (!sanitized_build) CHECK(std::abs(r.loss - t.loss) < 1e-4);
    }

    const auto text = llama::read_text(fixture_dir + "data/arith.valid.txt");
    const index_t problems = sanitized_build ? 10 : 500;
    const auto via_hf = llama::arith_accuracy(hf, codec, text, "arith", problems, tcq::par(2));
    CHECK(via_hf.total == problems);
    if (!sanitized_build) CHECK(via_hf.correct == 287);  // the fixture's documented count
    if (sanitized_build)
        CHECK(via_hf.correct == llama::arith_accuracy(m, codec, text, "arith", problems, tcq::par(2)).correct);
    fs::remove_all(dir);
}

TEST_CASE("bad checkpoints are errors naming the file and the tensor or field") {
    namespace st = tcq::safetensors;
    SUBCASE("truncated shard") {
        const auto dir = saved_tiny("trunc");
        const auto f = dir / "model.safetensors";
        fs::resize_file(f, fs::file_size(f) - 10);
        CHECK_THROWS_WITH_AS((void)llama::load_hf(dir), doctest::Contains("model.safetensors"), tcq::error);
    }
    SUBCASE("corrupt header") {
        const auto dir = saved_tiny("corrupt");
        const auto f = dir / "model.safetensors";
        std::fstream io(f, std::ios::binary | std::ios::in | std::ios::out);
        io.seekp(8);
        io.write("#", 1);
        io.close();
        CHECK_THROWS_WITH_AS((void)llama::load_hf(dir), doctest::Contains("model.safetensors"), tcq::error);
    }
    SUBCASE("index names a missing shard, or a tensor its shard lacks") {
        auto m = llama::random_model(tiny("LlamaForCausalLM"), 1);
        const auto dir = temp_dir("index");
        llama::save_hf(m, dir, {st::dtype::BF16, 4096, {}});
        const auto ip = dir / "model.safetensors.index.json";
        const std::string orig = read_all(ip);
        auto j = nlohmann::json::parse(orig);
        j["weight_map"]["model.norm.weight"] = "model-00099-of-00099.safetensors";
        write_text(ip, j.dump());
        CHECK_THROWS_WITH_AS((void)llama::load_hf(dir),
                             doctest::Contains("names shard 'model-00099-of-00099.safetensors', which is missing"),
                             tcq::error);
        j = nlohmann::json::parse(orig);
        j["weight_map"]["model.norm.weight"] = j["weight_map"]["model.embed_tokens.weight"];
        write_text(ip, j.dump());
        CHECK_THROWS_WITH_AS((void)llama::load_hf(dir), doctest::Contains("tensor 'model.norm.weight' is listed in shard"),
                             tcq::error);
        j = nlohmann::json::parse(orig);
        j["weight_map"].erase("model.norm.weight");
        write_text(ip, j.dump());
        CHECK_THROWS_WITH_AS((void)llama::load_hf(dir), doctest::Contains("tensor 'model.norm.weight' is missing"),
                             tcq::error);
        j = nlohmann::json::parse(orig);
        j["weight_map"]["model.norm.weight"] = "../evil.safetensors";
        write_text(ip, j.dump());
        CHECK_THROWS_WITH_AS((void)llama::load_hf(dir), doctest::Contains("weight_map.model.norm.weight"), tcq::error);
        write_text(ip, "{\"weight_map\": 3}");
        CHECK_THROWS_WITH_AS((void)llama::load_hf(dir), doctest::Contains("field 'weight_map' is not an object"),
                             tcq::error);
        fs::remove_all(dir);
    }
    SUBCASE("config contradicts the tensors") {
        const auto dir = saved_tiny("vocab");
        auto j = nlohmann::json::parse(read_all(dir / "config.json"));
        j["vocab_size"] = 40;
        write_text(dir / "config.json", j.dump());
        CHECK_THROWS_WITH_AS((void)llama::load_hf(dir),
                             doctest::Contains("tensor 'model.embed_tokens.weight' has shape [41, 23], the config implies [40, 23]"),
                             tcq::error);
        j["vocab_size"] = 41;
        j["architectures"] = {"MistralForCausalLM"};  // no q/k/v biases: the file has three per layer
        j["model_type"] = "mistral";
        j.erase("use_sliding_window");
        write_text(dir / "config.json", j.dump());
        CHECK_THROWS_WITH_AS((void)llama::load_hf(dir), doctest::Contains("self_attn.k_proj.bias' is not part of a MistralForCausalLM"),
                             tcq::error);
        fs::remove(dir / "config.json");
        CHECK_THROWS_WITH_AS((void)llama::load_hf(dir), doctest::Contains("no config.json"), tcq::error);
    }
    SUBCASE("wrong dtype, non-finite value, missing files") {
        st::writer w;
        w.add("model.embed_tokens.weight", std::vector<std::int32_t>(41 * 23), {41, 23});
        const auto dir = saved_tiny("dtype");
        w.write(dir / "model.safetensors");
        CHECK_THROWS_WITH_AS((void)llama::load_hf(dir), doctest::Contains("has dtype I32, expected F32, F16 or BF16"),
                             tcq::error);
        auto m = llama::random_model(tiny("Qwen2ForCausalLM"), 3);
        m.final_norm[5] = NAN;
        const auto nd = temp_dir("nan");
        llama::save_hf(m, nd, {st::dtype::F32, 1u << 30, {}});
        CHECK_THROWS_WITH_AS((void)llama::load_hf(nd), doctest::Contains("tensor 'model.norm.weight' has the non-finite value"),
                             tcq::error);
        fs::remove(nd / "model.safetensors");
        CHECK_THROWS_WITH_AS((void)llama::load_hf(nd), doctest::Contains("neither model.safetensors nor"), tcq::error);
    }
}

TEST_CASE("the writer leaves nothing behind on failure and refuses to overwrite") {
    namespace st = tcq::safetensors;
    const auto m = llama::random_model(tiny("Qwen3ForCausalLM"), 1);
    const auto dir = temp_dir("nonempty");
    fs::create_directories(dir);
    write_text(dir / "keep.txt", "x");
    CHECK_THROWS_WITH_AS(llama::save_hf(m, dir), doctest::Contains("output exists and is not an empty directory"),
                         tcq::error);
    CHECK(read_all(dir / "keep.txt") == "x");
    // A tensor source that fails half-way: neither dir nor dir.partial remain.
    const auto out = temp_dir("fails");
    std::vector<st::tensor_out> ts{{"a", {2}, [](std::span<float> v) { v[0] = v[1] = 1; }},
                                   {"b", {2}, [](std::span<float>) { tcq::fail("source broke"); }}};
    CHECK_THROWS_WITH_AS(st::write_directory(out, ts, st::dtype::F32, 4, {{"config.json", "{}"}}),
                         doctest::Contains("source broke"), tcq::error);
    CHECK(!fs::exists(out));
    CHECK(!fs::exists(fs::path(out.string() + ".partial")));
    CHECK_THROWS_WITH_AS(llama::save_hf(m, "/proc/tcq_cannot_write_here"), doctest::Contains("/proc/tcq_cannot_write_here"),
                         tcq::error);
    fs::remove_all(dir);
}

}  // namespace test_llama_hf
