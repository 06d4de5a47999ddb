#pragma once
/// @file cmd_tokenize.hpp
/// @brief `tcq tokenize`: a text on stdin to its token ids on stdout, so a
/// tokenizer can be checked from the shell against Hugging Face.

#include <cstdio>
#include <iostream>
#include <iterator>
#include <string>

#include "command.hpp"
#include "tcq/tokenizer/tokenizer.hpp"

namespace tcq::cli {

/// Usage text of `tcq tokenize`.
inline constexpr const char* tokenize_usage = R"(usage: tcq tokenize --tokenizer DIR_OR_FILE [--add-special] < text

Reads all of stdin as one text (the bytes as given, newlines included; it must
be UTF-8) and writes its token ids to stdout on one line, space-separated.
Without --add-special no BOS/EOS is added, like Hugging Face's
encode(text, add_special_tokens=False). docs/tokenizers.md says what is
supported.

options:
  --tokenizer PATH      tokenizer.json, or a model directory holding it; a
                        tokenizer_config.json beside it is read too (required)
  --add-special         add the BOS/EOS ids that tokenizer_config.json
                        (add_bos_token, add_eos_token) or the post_processor ask for
)";

/// Runs `tcq tokenize`.
inline int run_tokenize(const arguments& a) {
    const std::string path = a.required("tokenizer");
    const tokenizer t = tokenizer::from_path(path);
    std::cin >> std::noskipws;
    std::string text((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
    if (std::cin.bad()) fail("stdin: read error");
    const auto ids = t.encode(text, a.has("add-special"));
    std::string line;
    line.reserve(ids.size() * 7 + 1);
    for (std::size_t i = 0; i < ids.size(); ++i) {
        if (i) line += ' ';
        line += std::to_string(ids[i]);
    }
    line += '\n';
    std::cout << line << std::flush;
    if (!std::cout) fail("stdout: write error");
    return 0;
}

/// The `tcq tokenize` subcommand.
inline command tokenize_command() {
    return {"tokenize", "text on stdin to token ids (tokenizer.json)", tokenize_usage,
            {{"tokenizer", true}, {"add-special", false}}, 0, run_tokenize};
}

}  // namespace tcq::cli
