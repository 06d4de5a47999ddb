// Downstream use of tcq::tokenizer (built when the tcq build had PCRE2 and
// utf8proc): a two-merge BPE with an NFC normalizer and a Split regex.
#include <tcq/tokenizer/tokenizer.hpp>

#include <cstdio>
#include <vector>

int main() {
    const char* json = R"({"normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Split", "pattern": {"Regex": "\\p{L}+"}, "behavior": "Isolated"},
        "model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2, "abb": 3, " ": 4},
                  "merges": ["a b", "ab b"]}})";
    const auto t = tcq::tokenizer::from_json_text(json);
    const std::vector<std::int32_t> ids = t.encode("abb ab");
    std::printf("tcq tokenizer consumer: %zu ids\n", ids.size());
    return ids == std::vector<std::int32_t>{3, 4, 2} ? 0 : 1;
}
