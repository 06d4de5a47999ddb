// libFuzzer target: arbitrary bytes → tokenizer.json parser, then encode and decode.
// Input: the tokenizer.json text, optionally followed by a NUL byte and the
// text to encode (else a fixed text). Contract: loading either throws
// tcq::error or gives a tokenizer; encode throws only tcq::error (invalid
// UTF-8, a hostile regex hitting its match limit) and every id it returns
// without add_special is a token of the tokenizer; decode of those ids throws
// only tcq::error. Any other exception, sanitizer report or trap is a finding.
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

#include "tcq/tokenizer/tokenizer.hpp"

namespace {

void check(bool ok) {
    if (!ok) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view all(reinterpret_cast<const char*>(data), size);
    const std::size_t nul = all.find('\0');
    const std::string_view json = all.substr(0, nul);
    const std::string_view text =
        nul == std::string_view::npos ? std::string_view("Hello w\xC3\xB6rld  123 <s>\n\tx") : all.substr(nul + 1);
    std::optional<tcq::tokenizer> t;
    try {
        t.emplace(tcq::tokenizer::from_json_text(json, "fuzz/tokenizer.json"));
    } catch (const tcq::error&) {
        return 0;
    }
    try {
        const std::vector<std::int32_t> ids = t->encode(text);
        for (const std::int32_t id : ids) check(t->id_to_token(id) != nullptr && id < t->vocab_size());
        try {
            (void)t->decode(ids);
            (void)t->decode(ids, true);
        } catch (const tcq::error&) {
        }
        (void)t->encode(text, true);
    } catch (const tcq::error&) {
    }
    return 0;
}
