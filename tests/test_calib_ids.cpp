// Pre-tokenized calibration ids (tcq/io/calib_ids.hpp): parsing, the
// rejections with file:line, and the atomic writer.
#include <doctest/doctest.h>

#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "bad_input.hpp"
#include "tcq/io/calib_ids.hpp"

namespace fs = std::filesystem;
using seqs_t = std::vector<std::vector<std::int32_t>>;

TEST_CASE("calib ids: one sequence per line; blanks, comments, tabs and CRLF") {
    const std::string text =
        "# calibration windows\n"
        "1 15043 3186\n"
        "\n"
        "   \t\n"
        "  7\t8   9  \r\n"
        "  # indented comment\n"
        "0 2147483646";  // no final newline
    const seqs_t got = tcq::parse_calib_ids(text, "calib.ids");
    CHECK(got == seqs_t{{1, 15043, 3186}, {7, 8, 9}, {0, 2147483646}});
    CHECK(tcq::parse_calib_ids("", "x").empty());
    CHECK(tcq::parse_calib_ids("\n\n# only a comment\n", "x").empty());
    // `tcq tokenize` prints exactly one such line.
    CHECK(tcq::parse_calib_ids("15496 995\n", "x") == seqs_t{{15496, 995}});
}

TEST_CASE("calib ids: write then read gives the sequences back; the writer leaves no temp file") {
    const fs::path dir = fs::temp_directory_path() / ("tcq_calib_ids_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const seqs_t s = {{3, 1, 4, 1, 5}, {9}, {2, 6, 5, 3, 5, 8, 9, 7}};
    tcq::write_calib_ids(dir / "c.ids", s);
    CHECK(tcq::read_calib_ids(dir / "c.ids") == s);
    CHECK(tcq::read_calib_ids(dir / "c.ids", 10) == s);
    CHECK_FALSE(fs::exists(dir / "c.ids.tmp"));
    // A failed write (empty sequence) leaves the previous file untouched.
    const seqs_t bad = {{1}, {}};
    CHECK_THROWS_AS(tcq::write_calib_ids(dir / "c.ids", bad), tcq::error);
    CHECK(tcq::read_calib_ids(dir / "c.ids") == s);
    CHECK_FALSE(fs::exists(dir / "c.ids.tmp"));
    fs::remove_all(dir);
}

TEST_CASE("bad input: calibration ids") {
    const auto parse = [](std::string text, std::int64_t vocab = 0) {
        return [text, vocab] { (void)tcq::parse_calib_ids(text, "calib.ids", vocab); };
    };
    const bad::table rows = {
        bad::error("parse_calib_ids", "calib.ids:2", "'x7' is not a decimal token id", parse("1 2\n3 x7 4\n")),
        bad::error("parse_calib_ids", "calib.ids:1", "'1,2' is not a decimal token id", parse("1,2 3")),
        bad::error("parse_calib_ids", "calib.ids:1", "'+3' is not a decimal token id", parse("+3")),
        bad::error("parse_calib_ids", "calib.ids:1", "'3#' is not a decimal token id", parse("3# trailing")),
        bad::error("parse_calib_ids", "calib.ids:1", "id -1 is outside [0, 2^31 - 1)", parse("-1")),
        bad::error("parse_calib_ids", "calib.ids:1", "is outside [0, 2^31 - 1)", parse("99999999999999999999999")),
        bad::error("parse_calib_ids", "calib.ids:1", "id 2147483647 is outside", parse("2147483647")),
        bad::error("parse_calib_ids", "calib.ids:3", "id 32000 is outside the vocabulary [0, 32000)",
                   parse("1\n\n5 32000\n", 32000)),
        bad::error("read_calib_ids", "no/such.ids", "cannot read",
                   [] { (void)tcq::read_calib_ids("no/such.ids"); }),
        bad::error("write_calib_ids", "no/such/dir/c.ids", "cannot open",
                   [] { tcq::write_calib_ids("no/such/dir/c.ids", seqs_t{{1}}); }),
        bad::ok("parse_calib_ids", "ids just below the vocabulary size",
                [] { CHECK(tcq::parse_calib_ids("31999 0", "x", 32000) == seqs_t{{31999, 0}}); }),
    };
    bad::run(rows);
}
