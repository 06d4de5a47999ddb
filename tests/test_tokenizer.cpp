// tokenizer.json loading and encoding: the Hugging Face test vectors of four
// real tokenizers (tests/data/tokenizers, ids from the `tokenizers` library),
// the algorithm pieces on small hand-made tokenizers, and the rejections.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bad_input.hpp"
#include "error_message.hpp"
#include "tcq/tokenizer/json_fields.hpp"
#include "tcq/tokenizer/pre_tokenizer.hpp"
#include "tcq/tokenizer/tokenizer.hpp"
#include "tcq/tokenizer/unicode.hpp"

namespace fs = std::filesystem;
using ids_t = std::vector<std::int32_t>;
using test_util::message_of;

namespace {

const fs::path data_dir = fs::path(TCQ_SOURCE_DIR) / "tests" / "data" / "tokenizers";

/// The four tokenizers, loaded once.
const tcq::tokenizer& real(const std::string& name) {
    static std::map<std::string, tcq::tokenizer> cache;
    auto it = cache.find(name);
    if (it == cache.end()) it = cache.emplace(name, tcq::tokenizer::from_path(data_dir / name)).first;
    return it->second;
}

/// The strings of tests.inp: split on "\n__ggml_vocab_test__\n", trailing empty piece dropped.
std::vector<std::string> read_inputs(const fs::path& f) {
    const std::string s = tcq::tok::read_text_file(f);
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::vector<std::string> out;
    std::size_t b = 0;
    for (std::size_t k = s.find(sep); k != std::string::npos; k = s.find(sep, b)) {
        out.push_back(s.substr(b, k - b));
        b = k + sep.size();
    }
    out.push_back(s.substr(b));
    if (!out.empty() && out.back().empty()) out.pop_back();
    return out;
}

/// The id lines of tests.out.
std::vector<ids_t> read_outputs(const fs::path& f) {
    std::istringstream in(tcq::tok::read_text_file(f));
    std::vector<ids_t> out;
    for (std::string line; std::getline(in, line);) {
        std::istringstream ls(line);
        ids_t ids;
        for (std::int32_t id; ls >> id;) ids.push_back(id);
        out.push_back(std::move(ids));
    }
    return out;
}

std::string show(const ids_t& v) {
    std::string s;
    for (auto id : v) s += " " + std::to_string(id);
    return s;
}

/// Checks every vector of `<name>/<stem>.inp/.out`; returns the number matched.
int check_vectors(const std::string& name, const std::string& stem) {
    const auto inputs = read_inputs(data_dir / name / (stem + ".inp"));
    const auto expected = read_outputs(data_dir / name / (stem + ".out"));
    REQUIRE(inputs.size() == 46);
    REQUIRE(expected.size() == inputs.size());
    const tcq::tokenizer& t = real(name);
    int ok = 0;
    for (std::size_t i = 0; i < inputs.size(); ++i) {
        const ids_t got = t.encode(inputs[i]);
        std::size_t k = 0;
        while (k < got.size() && k < expected[i].size() && got[k] == expected[i][k]) ++k;
        INFO(name, "/", stem, " string ", i, " first mismatch at id ", k, "\n expected:", show(expected[i]),
             "\n got:     ", show(got));
        CHECK(got == expected[i]);
        ok += got == expected[i] ? 1 : 0;
    }
    MESSAGE(name, "/", stem, ": ", ok, " of ", inputs.size(), " match");
    return ok;
}

}  // namespace

TEST_CASE("tokenizer vectors: gpt-2") {
    CHECK(check_vectors("gpt-2", "tests") == 46);
    CHECK(check_vectors("gpt-2", "tests.prev") == 46);
}
TEST_CASE("tokenizer vectors: llama-bpe (Llama-3)") {
    CHECK(check_vectors("llama-bpe", "tests") == 46);
    CHECK(check_vectors("llama-bpe", "tests.prev") == 46);
}
TEST_CASE("tokenizer vectors: qwen2") {
    CHECK(check_vectors("qwen2", "tests") == 46);
    CHECK(check_vectors("qwen2", "tests.prev") == 46);
}
TEST_CASE("tokenizer vectors: llama-spm (Llama-2)") {
    CHECK(check_vectors("llama-spm", "tests") == 46);
    CHECK(check_vectors("llama-spm", "tests.prev") == 46);
}
