#pragma once
/// @file calib_ids.hpp
/// @brief Pre-tokenized calibration ids (`--calib-ids FILE`): a text file with
/// one sequence of token ids per line (docs/tokenizers.md, "Pre-tokenized ids").
///
/// Format: decimal ids in [0, 2^31 - 1) separated by spaces or tabs; one line
/// is one window or one document; a trailing carriage return is ignored; blank lines and
/// lines whose first non-blank character is '#' are skipped. The output line
/// of `tcq tokenize` is a valid one-sequence file.
///
/// Needs nothing beyond the standard library (no tokenizer, no JSON).

#include <charconv>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <limits>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tcq/core/error.hpp"
#include "tcq/io/atomic_file.hpp"

namespace tcq {

/// Parses calibration ids from `text`; `source` names it in errors
/// ("source:line: …"). With `vocab_size` > 0 every id must be below it.
[[nodiscard]] inline std::vector<std::vector<std::int32_t>> parse_calib_ids(std::string_view text,
                                                                            std::string_view source,
                                                                            std::int64_t vocab_size = 0) {
    std::vector<std::vector<std::int32_t>> out;
    std::size_t line_no = 0;
    for (std::size_t pos = 0; pos < text.size();) {
        std::size_t end = text.find('\n', pos);
        if (end == std::string_view::npos) end = text.size();
        std::string_view line = text.substr(pos, end - pos);
        pos = end + 1;
        ++line_no;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        std::vector<std::int32_t> ids;
        bool comment = false;
        for (std::size_t i = 0; i < line.size();) {
            if (line[i] == ' ' || line[i] == '\t') {
                ++i;
                continue;
            }
            if (ids.empty() && line[i] == '#') {
                comment = true;
                break;
            }
            std::size_t j = i;
            while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
            const std::string_view word = line.substr(i, j - i);
            std::int64_t v = 0;
            const auto [p, ec] = std::from_chars(word.data(), word.data() + word.size(), v);
            if (ec == std::errc::result_out_of_range || (ec == std::errc{} && p == word.data() + word.size() &&
                                                         (v < 0 || v >= std::numeric_limits<std::int32_t>::max())))
                fail(source, ":", line_no, ": id ", word, " is outside [0, 2^31 - 1)");
            if (ec != std::errc{} || p != word.data() + word.size() || word[0] == '-' || word[0] == '+')
                fail(source, ":", line_no, ": '", word, "' is not a decimal token id");
            if (vocab_size > 0 && v >= vocab_size)
                fail(source, ":", line_no, ": id ", v, " is outside the vocabulary [0, ", vocab_size, ")");
            ids.push_back(static_cast<std::int32_t>(v));
            i = j;
        }
        if (!comment && !ids.empty()) out.push_back(std::move(ids));
    }
    return out;
}

/// Reads and parses the calibration-ids file `path`.
[[nodiscard]] inline std::vector<std::vector<std::int32_t>> read_calib_ids(const std::filesystem::path& path,
                                                                           std::int64_t vocab_size = 0) {
    std::ifstream in(path, std::ios::binary);
    if (!in) fail(path.string(), ": cannot read the calibration ids file");
    std::ostringstream ss;
    ss << in.rdbuf();
    if (in.bad()) fail(path.string(), ": read error");
    return parse_calib_ids(ss.str(), path.string(), vocab_size);
}

/// Writes `seqs` in the same format, one line each, atomically (a temporary
/// file renamed on success, tcq/io/atomic_file.hpp). Empty sequences cannot be written.
inline void write_calib_ids(const std::filesystem::path& path, std::span<const std::vector<std::int32_t>> seqs) {
    std::string text;
    for (std::size_t s = 0; s < seqs.size(); ++s) {
        require(!seqs[s].empty(), path.string(), ": sequence ", s, " is empty (a blank line would drop it)");
        for (std::size_t i = 0; i < seqs[s].size(); ++i) {
            require(seqs[s][i] >= 0 && seqs[s][i] < std::numeric_limits<std::int32_t>::max(), path.string(),
                    ": sequence ", s, " holds the negative id ", seqs[s][i]);
            if (i) text += ' ';
            text += std::to_string(seqs[s][i]);
        }
        text += '\n';
    }
    write_atomically(path, path.string(), [&](std::ostream& os) {
        os.write(text.data(), static_cast<std::streamsize>(text.size()));
    });
}

}  // namespace tcq
