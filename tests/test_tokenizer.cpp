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
    for (auto id : v) {
        s += ' ';
        s += std::to_string(id);
    }
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

TEST_CASE("tokenizer: added and special tokens are cut out first, longest match") {
    const auto& g = real("gpt-2");
    const ids_t hello = g.encode("Hello");
    ids_t want = hello;
    want.push_back(50256);
    want.insert(want.end(), hello.begin(), hello.end());
    CHECK(g.encode("Hello<|endoftext|>Hello") == want);
    // A prefix of the token is ordinary text.
    CHECK(g.encode("<|endoftext|") != ids_t{50256});

    const auto& l = real("llama-bpe");
    const ids_t hi = l.encode("Hi");
    ids_t w2{128000};
    w2.insert(w2.end(), hi.begin(), hi.end());
    w2.push_back(128001);
    CHECK(l.encode("<|begin_of_text|>Hi<|end_of_text|>") == w2);

    // Llama-2's tokens are normalized: "<s>" is matched as "▁<s>" in the normalized text.
    const auto& s = real("llama-spm");
    CHECK(s.encode("<s>") == ids_t{1});
    CHECK(s.encode("</s>") == ids_t{2});
}

TEST_CASE("tokenizer: add_special follows tokenizer_config.json, then the post_processor") {
    const std::string text = "Hello world";
    // Llama-2: add_bos_token true → <s> first; add_eos_token false.
    const ids_t spm = real("llama-spm").encode(text);
    ids_t spm_bos{1};
    spm_bos.insert(spm_bos.end(), spm.begin(), spm.end());
    CHECK(real("llama-spm").encode(text, true) == spm_bos);
    // GPT-2, Qwen2: no add_bos_token, post_processor ByteLevel → nothing added.
    CHECK(real("gpt-2").encode(text, true) == real("gpt-2").encode(text));
    CHECK(real("qwen2").encode(text, true) == real("qwen2").encode(text));
    // This Llama-3 file's post_processor is ByteLevel only → nothing added either.
    CHECK(real("llama-bpe").encode(text, true) == real("llama-bpe").encode(text));
}

TEST_CASE("tokenizer: decode inverts encode") {
    const std::vector<std::string> texts = {"Hello world", " leading and  double  spaces\n\n\ttab",
                                            "Ünïcödé ✓ 🦙 日本語", "numbers 1234567 and <|endoftext|>"};
    for (const char* name : {"gpt-2", "llama-bpe", "qwen2"})
        for (const auto& t : texts) {
            INFO(name, ": ", t);
            const ids_t ids = real(name).encode(t);
            CHECK(real(name).decode(ids) == t);
        }
    // Llama-2: the decoder drops the prepended "▁"; byte-fallback ids decode to their bytes.
    for (const auto& t : texts) {
        if (t.find("<|") != std::string::npos) continue;
        INFO("llama-spm: ", t);
        CHECK(real("llama-spm").decode(real("llama-spm").encode(t)) == t);
    }
    CHECK(real("llama-spm").decode(ids_t{1, 15043}, true) == real("llama-spm").decode(ids_t{15043}));
    CHECK(message_of([] { (void)real("gpt-2").decode(ids_t{50257}); }).find("id 50257 is not in the vocabulary") !=
          std::string::npos);
}

TEST_CASE("tokenizer: Qwen2's NFC normalizer composes before splitting") {
    const auto& q = real("qwen2");
    // "é" as e + U+0301 and as U+00E9 are one text after NFC.
    CHECK(q.encode("caf\x65\xCC\x81") == q.encode("caf\xC3\xA9"));
    // GPT-2 has no normalizer: the two spellings differ.
    CHECK(real("gpt-2").encode("caf\x65\xCC\x81") != real("gpt-2").encode("caf\xC3\xA9"));
    CHECK(tcq::tok::normalize_unicode("\x65\xCC\x81", tcq::tok::unicode_form::nfc) == "\xC3\xA9");
    CHECK(tcq::tok::normalize_unicode("\xC3\xA9", tcq::tok::unicode_form::nfd) == "\x65\xCC\x81");
    CHECK(tcq::tok::normalize_unicode("\xEF\xAC\x81", tcq::tok::unicode_form::nfkc) == "fi");  // U+FB01 ligature
}

TEST_CASE("tokenizer: a long text is the concatenation of its context-free units") {
    // 200 KB: each unit starts with a space and ends a sentence, so no word crosses units.
    const std::string unit = " The quick brown fox jumps over the lazy dog.";
    std::string text;
    for (int i = 0; i < 4500; ++i) text += unit;
    for (const char* name : {"gpt-2", "llama-bpe", "qwen2"}) {
        INFO(name);
        const ids_t one = real(name).encode(unit);
        ids_t want;
        for (int i = 0; i < 4500; ++i) want.insert(want.end(), one.begin(), one.end());
        CHECK(real(name).encode(text) == want);
    }
    // Llama-2 has no pre-tokenizer: the whole text is one BPE word.
    const ids_t spm = real("llama-spm").encode(text);
    CHECK(real("llama-spm").decode(spm) == text);
}

// ---------------------------------------------------------------------------
// Small hand-made tokenizers: each algorithm step on its own.

namespace {

using nlohmann::json;

/// A byte-free BPE tokenizer over letters: vocab a b c ab bc abc, merges by rank.
json tiny_bpe() {
    return json{{"version", "1.0"},
                {"truncation", nullptr},
                {"padding", nullptr},
                {"added_tokens", json::array()},
                {"normalizer", nullptr},
                {"pre_tokenizer", nullptr},
                {"post_processor", nullptr},
                {"decoder", nullptr},
                {"model",
                 {{"type", "BPE"},
                  {"dropout", nullptr},
                  {"unk_token", "<unk>"},
                  {"fuse_unk", false},
                  {"byte_fallback", false},
                  {"vocab", {{"<unk>", 0}, {"a", 1}, {"b", 2}, {"c", 3}, {"ab", 4}, {"bc", 5}, {"abc", 6}}},
                  {"merges", json::array({"b c", "a b", "a bc"})}}}};
}

tcq::tokenizer load(const json& j) { return tcq::tokenizer::from_json_text(j.dump(), "tokenizer.json"); }

}  // namespace

TEST_CASE("bpe: merges apply by rank, leftmost first, over the whole word") {
    const auto t = load(tiny_bpe());
    CHECK(t.encode("abc") == ids_t{6});        // b c (rank 0) first, then a bc
    CHECK(t.encode("ab") == ids_t{4});
    CHECK(t.encode("bcbc") == ids_t{5, 5});    // leftmost of equal ranks
    CHECK(t.encode("abab") == ids_t{4, 4});
    CHECK(t.encode("cab") == ids_t{3, 4});
    // Unknown characters: one <unk> each (fuse_unk false) ...
    CHECK(t.encode("axyb") == ids_t{1, 0, 0, 2});
    // ... or one per run with fuse_unk.
    json j = tiny_bpe();
    j["model"]["fuse_unk"] = true;
    CHECK(load(j).encode("axyb") == ids_t{1, 0, 2});
    // ignore_merges: a word that is a token is taken whole, even without a merge path.
    j = tiny_bpe();
    j["model"]["vocab"]["ca"] = 7;
    CHECK(load(j).encode("ca") == ids_t{3, 1});
    j["model"]["ignore_merges"] = true;
    CHECK(load(j).encode("ca") == ids_t{7});
    // Merges may also be given as pairs.
    j = tiny_bpe();
    j["model"]["merges"] = json::array({json::array({"b", "c"}), json::array({"a", "b"}), json::array({"a", "bc"})});
    CHECK(load(j).encode("abc") == ids_t{6});
}

TEST_CASE("bpe: byte_fallback spells unknown characters as <0xNN>") {
    json j = tiny_bpe();
    j["model"]["byte_fallback"] = true;
    j["model"]["vocab"]["<0xC3>"] = 10;
    j["model"]["vocab"]["<0xA9>"] = 11;
    const auto t = load(j);
    CHECK(t.encode("a\xC3\xA9") == ids_t{1, 10, 11});  // é: both bytes known
    CHECK(t.encode("a\xC3\xB6") == ids_t{1, 0});       // ö: 0xB6 missing → <unk>
}

TEST_CASE("pre_tokenizer: Split delimiter behaviours (the tokenizers documentation example)") {
    using tcq::tok::split_behavior;
    const tcq::tok::regex dash("-", true, "test");
    const std::string s = "the-final--countdown";
    const auto words = [&](split_behavior b, bool invert = false) {
        std::vector<std::string> w;
        for (const auto& r : tcq::tok::split_ranges(s, dash, b, invert)) w.push_back(s.substr(r.begin, r.end - r.begin));
        return w;
    };
    using v = std::vector<std::string>;
    CHECK(words(split_behavior::removed) == v{"the", "final", "countdown"});
    CHECK(words(split_behavior::isolated) == v{"the", "-", "final", "-", "-", "countdown"});
    CHECK(words(split_behavior::merged_with_previous) == v{"the-", "final-", "-", "countdown"});
    CHECK(words(split_behavior::merged_with_next) == v{"the", "-final", "-", "-countdown"});
    CHECK(words(split_behavior::contiguous) == v{"the", "-", "final", "--", "countdown"});
    CHECK(words(split_behavior::removed, true) == v{"-", "-", "-"});
}

TEST_CASE("pre_tokenizer: Metaspace prepend schemes, split, and the regex empty-match rule") {
    const auto meta = [](const char* scheme, bool split) {
        return tcq::tok::pre_tokenizer::from_json(
            json{{"type", "Metaspace"}, {"replacement", "\xE2\x96\x81"}, {"prepend_scheme", scheme}, {"split", split}},
            {"tokenizer.json", "pre_tokenizer"});
    };
    const auto run = [](const tcq::tok::pre_tokenizer& p, std::string s, bool at_start) {
        std::vector<std::string> w;
        for (const auto& x : p.apply({{std::move(s), at_start}})) w.push_back(x.text);
        return w;
    };
    using v = std::vector<std::string>;
    const std::string u = "\xE2\x96\x81";
    CHECK(run(meta("always", true), "hi there", false) == v{u + "hi", u + "there"});
    CHECK(run(meta("first", true), "hi there", false) == v{"hi", u + "there"});
    CHECK(run(meta("first", true), "hi there", true) == v{u + "hi", u + "there"});
    CHECK(run(meta("never", false), "hi there", true) == v{"hi" + u + "there"});
    // A pattern that can match empty: every position once, no endless loop.
    const tcq::tok::regex star("x*", false, "test");
    const auto m = star.find_all("axxb");
    REQUIRE(m.size() == 4);  // "" at 0, "xx" at 1, "" at 3, "" at 4
    CHECK((m[1].begin == 1 && m[1].end == 3));
}

TEST_CASE("pre_tokenizer: Digits (SmolLM2 puts it before ByteLevel), one digit or runs") {
    const auto digits = [](bool individual) {
        return tcq::tok::pre_tokenizer::from_json(json{{"type", "Digits"}, {"individual_digits", individual}},
                                                  {"tokenizer.json", "pre_tokenizer"});
    };
    const auto run = [](const tcq::tok::pre_tokenizer& p, std::string s) {
        std::vector<std::string> w;
        for (const auto& x : p.apply({{std::move(s), true}})) w.push_back(x.text);
        return w;
    };
    using v = std::vector<std::string>;
    // U+0663 ARABIC-INDIC DIGIT THREE and U+00BD ½ are category N too.
    CHECK(run(digits(true), "ab12c\xD9\xA3\xC2\xBD") == v{"ab", "1", "2", "c", "\xD9\xA3", "\xC2\xBD"});
    CHECK(run(digits(false), "ab12c\xD9\xA3\xC2\xBD") == v{"ab", "12", "c", "\xD9\xA3\xC2\xBD"});
}

TEST_CASE("added tokens: lstrip, rstrip, single_word, normalized, split_special_tokens") {
    json j = tiny_bpe();
    j["model"]["vocab"][" "] = 8;
    j["added_tokens"] = json::array({{{"id", 20}, {"content", "[M]"}, {"special", true}, {"lstrip", true},
                                      {"rstrip", true}, {"normalized", false}, {"single_word", false}},
                                     {{"id", 21}, {"content", "ab"}, {"special", false}, {"lstrip", false},
                                      {"rstrip", false}, {"normalized", false}, {"single_word", true}}});
    const auto t = load(j);
    CHECK(t.encode("a  [M]  b") == ids_t{1, 20, 2});      // spaces on both sides swallowed
    CHECK(t.encode("ab c") == ids_t{21, 8, 3});           // a word of its own: the added token
    CHECK(t.encode("abc") == ids_t{6});                   // inside a word: ordinary BPE
    CHECK(t.token_to_id("[M]") == 20);
    CHECK(t.vocab_size() == 22);
    const auto s = tcq::tokenizer::from_json_text(j.dump(), "tokenizer.json", R"({"split_special_tokens": true})");
    CHECK(s.encode("[M]") == ids_t{0, 0, 0});  // not cut out: '[', 'M', ']' are three unknowns
}

// ---------------------------------------------------------------------------
// Bad input: each row one defect; the message names the file and the field.

namespace {

/// tiny_bpe() with `edit` applied, loaded.
std::function<void()> load_edited(std::function<void(json&)> edit) {
    return [edit] {
        json j = tiny_bpe();
        edit(j);
        (void)load(j);
    };
}

bad::table tokenizer_rows() {
    const auto e = [](std::string field, std::string problem, std::function<void(json&)> edit) {
        return bad::error("tokenizer::from_json_text", "tokenizer.json: " + field, std::move(problem),
                          load_edited(std::move(edit)));
    };
    return {
        e("model.type", "'Unigram' is not supported", [](json& j) { j["model"]["type"] = "Unigram"; }),
        e("model.type", "'WordPiece' is not supported", [](json& j) { j["model"]["type"] = "WordPiece"; }),
        e("model.type", "is missing", [](json& j) { j["model"].erase("type"); }),
        e("model", "is missing", [](json& j) { j.erase("model"); }),
        e("model.vocab", "is missing", [](json& j) { j["model"].erase("vocab"); }),
        e("model.merges", "is missing", [](json& j) { j["model"].erase("merges"); }),
        e("model.merges", "must be an array", [](json& j) { j["model"]["merges"] = "a b"; }),
        e("model.vocab", "must be a JSON object", [](json& j) { j["model"]["vocab"] = json::array(); }),
        e("model.vocab.a", "is outside [0, 2^31 - 1)", [](json& j) { j["model"]["vocab"]["a"] = -1; }),
        e("model.vocab.a", "must be an integer token id", [](json& j) { j["model"]["vocab"]["a"] = "1"; }),
        e("model.vocab", "id 1 is given to both", [](json& j) { j["model"]["vocab"]["z"] = 1; }),
        e("model.merges[1]", "names 'q', which is not in model.vocab",
          [](json& j) { j["model"]["merges"][1] = "a q"; }),
        e("model.merges[0]", "merged token 'ca' is not in model.vocab",
          [](json& j) { j["model"]["merges"][0] = "c a"; }),
        e("model.merges[0]", "two tokens separated by one space", [](json& j) { j["model"]["merges"][0] = "abc"; }),
        e("model.merges[0]", "two tokens separated by one space", [](json& j) { j["model"]["merges"][0] = "a b c"; }),
        e("model.dropout", "'0.1' is not supported", [](json& j) { j["model"]["dropout"] = 0.1; }),
        e("model.frobnicate", "is not a supported option", [](json& j) { j["model"]["frobnicate"] = true; }),
        e("model.byte_fallback", "must be true or false", [](json& j) { j["model"]["byte_fallback"] = 1; }),
        e("truncation", "is not supported", [](json& j) { j["truncation"] = {{"max_length", 8}}; }),
        e("padding", "is not supported", [](json& j) { j["padding"] = {{"strategy", "BatchLongest"}}; }),
        e("extra", "is not a supported option", [](json& j) { j["extra"] = 1; }),
        e("normalizer.type", "'Lowercase' is not supported", [](json& j) { j["normalizer"] = {{"type", "Lowercase"}}; }),
        e("normalizer.normalizers[1].type", "'Precompiled' is not supported",
          [](json& j) {
              j["normalizer"] = {{"type", "Sequence"},
                                 {"normalizers", json::array({{{"type", "NFC"}}, {{"type", "Precompiled"}}})}};
          }),
        e("normalizer.pattern", "exactly one of \"String\" or \"Regex\"",
          [](json& j) { j["normalizer"] = {{"type", "Replace"}, {"pattern", json::object()}, {"content", ""}}; }),
        e("pre_tokenizer.type", "'Whitespace' is not supported",
          [](json& j) { j["pre_tokenizer"] = {{"type", "Whitespace"}}; }),
        e("pre_tokenizer.pretokenizers[1].type", "'Punctuation' is not supported",
          [](json& j) {
              j["pre_tokenizer"] = {{"type", "Sequence"},
                                    {"pretokenizers",
                                     json::array({{{"type", "ByteLevel"}}, {{"type", "Punctuation"}, {"behavior", "Isolated"}}})}};
          }),
        e("pre_tokenizer.behavior", "'Sideways' is not supported",
          [](json& j) {
              j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"String", " "}}}, {"behavior", "Sideways"}};
          }),
        e("pre_tokenizer.pattern.Regex", "pattern does not compile",
          [](json& j) {
              j["pre_tokenizer"] = {{"type", "Split"}, {"pattern", {{"Regex", "(\\p{L}"}}}, {"behavior", "Isolated"}};
          }),
        e("pre_tokenizer.add_prefix_space", "false contradicts prepend_scheme",
          [](json& j) {
              j["pre_tokenizer"] = {{"type", "Metaspace"},
                                    {"replacement", "_"},
                                    {"add_prefix_space", false},
                                    {"prepend_scheme", "always"}};
          }),
        e("pre_tokenizer.prepend_scheme", "'sometimes' is not supported",
          [](json& j) {
              j["pre_tokenizer"] = {{"type", "Metaspace"}, {"replacement", "_"}, {"prepend_scheme", "sometimes"}};
          }),
        e("pre_tokenizer.use_regex", "must be true or false",
          [](json& j) { j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"use_regex", "yes"}}; }),
        e("post_processor.type", "'BoxProcessing' is not supported",
          [](json& j) { j["post_processor"] = {{"type", "BoxProcessing"}}; }),
        e("post_processor.special_tokens", "has no entry '<s>'",
          [](json& j) {
              j["post_processor"] = {{"type", "TemplateProcessing"},
                                     {"single", json::array({{{"SpecialToken", {{"id", "<s>"}, {"type_id", 0}}}},
                                                             {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}})},
                                     {"pair", json::array()},
                                     {"special_tokens", json::object()}};
          }),
        e("added_tokens[0].content", "is empty",
          [](json& j) { j["added_tokens"] = json::array({{{"id", 9}, {"content", ""}}}); }),
        e("added_tokens[0].id", "is missing",
          [](json& j) { j["added_tokens"] = json::array({{{"content", "x"}}}); }),
        bad::error("tokenizer::from_json_text", "tokenizer.json", "malformed JSON",
                   [] { (void)tcq::tokenizer::from_json_text(R"({"model": {"type": "BPE", )"); }),
        bad::error("tokenizer::from_json_text", "tokenizer.json", "must be a JSON object",
                   [] { (void)tcq::tokenizer::from_json_text("[1, 2]"); }),
        bad::error("tokenizer::from_json_text", "tokenizer.json", "nested deeper than 64 levels",
                   [] { (void)tcq::tokenizer::from_json_text(std::string(100, '[') + std::string(100, ']')); }),
        bad::error("tokenizer::from_path", "tokenizer.json", "malformed JSON",
                   [] {
                       // The first 64 KB of a real file: a truncated download.
                       const std::string full = tcq::tok::read_text_file(data_dir / "gpt-2" / "tokenizer.json");
                       (void)tcq::tokenizer::from_json_text(full.substr(0, 65536), "gpt-2/tokenizer.json");
                   }),
        bad::error("tokenizer::from_path", "no-such-dir", "no such file or directory",
                   [] { (void)tcq::tokenizer::from_path(data_dir / "no-such-dir"); }),
        bad::error("tokenizer::from_json_text", "tokenizer_config.json: bos_token", "is missing",
                   [] { (void)tcq::tokenizer::from_json_text(tiny_bpe().dump(), "tokenizer.json", R"({"add_bos_token": true})"); }),
        bad::error("tokenizer::from_json_text", "tokenizer_config.json: bos_token", "'<s>' is not a token",
                   [] {
                       (void)tcq::tokenizer::from_json_text(tiny_bpe().dump(), "tokenizer.json",
                                                            R"({"add_bos_token": true, "bos_token": "<s>"})");
                   }),
        bad::error("tokenizer::from_json_text", "tokenizer_config.json: add_prefix_space", "'true' is not supported",
                   [] {
                       (void)tcq::tokenizer::from_json_text(tiny_bpe().dump(), "tokenizer.json",
                                                            R"({"add_prefix_space": true})");
                   }),
        bad::error("tokenizer::encode", "tokenizer input", "invalid UTF-8 at byte 1",
                   [] { (void)load(tiny_bpe()).encode("a\xC3(b"); }),
        bad::error("tokenizer::decode", "decoder.type", "'CTC' is not supported",
                   [] {
                       json j = tiny_bpe();
                       j["decoder"] = {{"type", "CTC"}};
                       (void)load(j).decode(ids_t{1});
                   }),
        bad::error("tokenizer::from_path", "tokenizers/tokenizer.json", "cannot read the file",
                   [] { (void)tcq::tokenizer::from_path(data_dir); }),  // a directory without one
        bad::ok("tokenizer::encode", "empty text", [] { CHECK(load(tiny_bpe()).encode("").empty()); }),
    };
}

}  // namespace

TEST_CASE("bad input: tokenizer.json, tokenizer_config.json, encode, decode") { bad::run(tokenizer_rows()); }

TEST_CASE("bad input: the message of an unsupported model type is exact") {
    json j = tiny_bpe();
    j["model"]["type"] = "Unigram";
    CHECK(message_of([&] { (void)load(j); }) == "tokenizer.json: model.type 'Unigram' is not supported");
}

TEST_CASE("bad input: every truncation of a tokenizer.json is a clean error") {
    const std::string s = tiny_bpe().dump();
    int errors = 0;
    for (std::size_t n = 0; n < s.size(); ++n) {
        const std::string msg = message_of([&] { (void)tcq::tokenizer::from_json_text(s.substr(0, n)); });
        CHECK(msg.find("tokenizer.json: malformed JSON") == 0);
        errors += msg != "<no error>";
    }
    CHECK(errors == static_cast<int>(s.size()));
}

TEST_CASE("fuzz seeds are valid tokenizers (tests/fuzz/corpus_tokenizer)") {
    int n = 0;
    for (const auto& f : fs::directory_iterator(fs::path(TCQ_SOURCE_DIR) / "tests" / "fuzz" / "corpus_tokenizer")) {
        const std::string all = tcq::tok::read_text_file(f.path());
        const std::size_t nul = all.find('\0');
        INFO(f.path().string());
        const auto t = tcq::tokenizer::from_json_text(all.substr(0, nul), f.path().filename().string());
        const std::string text = nul == std::string::npos ? "hello world" : all.substr(nul + 1);
        const ids_t ids = t.encode(text);
        CHECK(!ids.empty());
        CHECK(t.encode(text, true).size() == ids.size() + 1);  // each seed adds one special id
        CHECK_FALSE(t.decode(ids).empty());
        ++n;
    }
    CHECK(n >= 4);
}
