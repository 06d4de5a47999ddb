// `tcq tokenize` run as a process on Hugging Face test vectors
// (tests/data/tokenizers): stdin bytes in, one line of ids out.
#include <doctest/doctest.h>

#if !defined(TCQ_CLI_PATH)

TEST_CASE("cli tokenize: tcq tool not built (TCQ_BUILD_TOOLS=OFF)") { MESSAGE("skipped: no tcq executable in this build"); }

#else

#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

const fs::path data_dir = fs::path(TCQ_SOURCE_DIR) / "tests" / "data" / "tokenizers";

std::string slurp(const fs::path& f) {
    std::ifstream in(f, std::ios::binary);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

/// Test string `i` of `<name>/tests.inp` and its expected line of tests.out (without the leading space).
std::pair<std::string, std::string> vector_of(const std::string& name, std::size_t i) {
    const std::string inp = slurp(data_dir / name / "tests.inp");
    const std::string sep = "\n__ggml_vocab_test__\n";
    std::size_t b = 0;
    for (std::size_t k = 0; k < i; ++k) b = inp.find(sep, b) + sep.size();
    const std::string text = inp.substr(b, inp.find(sep, b) - b);
    std::istringstream out(slurp(data_dir / name / "tests.out"));
    std::string line;
    for (std::size_t k = 0; k <= i; ++k) std::getline(out, line);
    if (!line.empty() && line[0] == ' ') line.erase(0, 1);
    return {text, line};
}

struct run_result {
    int status = -1;
    std::string out, err;
};

/// Runs `tcq tokenize <args> < stdin_text`.
run_result tokenize(const std::string& stdin_text, const std::string& args) {
    static int n = 0;
    const fs::path dir = fs::temp_directory_path() / ("tcq_cli_tok_" + std::to_string(::getpid()) + "_" + std::to_string(n++));
    fs::create_directories(dir);
    {
        std::ofstream(dir / "in.txt", std::ios::binary) << stdin_text;
    }
    const std::string cmd = std::string("'") + TCQ_CLI_PATH + "' tokenize " + args + " <'" + (dir / "in.txt").string() +
                            "' >'" + (dir / "out.txt").string() + "' 2>'" + (dir / "err.txt").string() + "'";
    const int raw = std::system(cmd.c_str());
    run_result r;
    r.status = (raw != -1 && WIFEXITED(raw)) ? WEXITSTATUS(raw) : -1;
    r.out = slurp(dir / "out.txt");
    r.err = slurp(dir / "err.txt");
    fs::remove_all(dir);
    return r;
}

std::string dir_arg(const std::string& name) { return "--tokenizer '" + (data_dir / name).string() + "'"; }

}  // namespace

TEST_CASE("cli tokenize: ids of Hugging Face test vectors, one line on stdout") {
    // (tokenizer, string index): "Äpfel", the empty string, "\n", Khmer, and the long
    // stress string (runs of spaces, tabs and newlines, emoji with ZWJ, CJK, digits).
    const std::vector<std::pair<std::string, std::size_t>> cases = {
        {"gpt-2", 2}, {"gpt-2", 7}, {"gpt-2", 45}, {"llama-spm", 1}, {"llama-spm", 21}, {"llama-spm", 45},
        {"llama-bpe", 45}, {"qwen2", 45}};
    for (const auto& c : cases) {
        const std::string name = c.first;  // clang 14: INFO cannot capture structured bindings
        const std::size_t i = c.second;
        const auto [text, want] = vector_of(name, i);
        INFO(name, " string ", i);
        const run_result r = tokenize(text, dir_arg(name));
        INFO("stderr: ", r.err);
        REQUIRE(r.status == 0);
        CHECK(r.out == want + "\n");
    }
}

TEST_CASE("cli tokenize: --add-special, a tokenizer.json path, and failures") {
    const auto [text, want] = vector_of("llama-spm", 45);
    const run_result r = tokenize(text, "--add-special --tokenizer '" + (data_dir / "llama-spm" / "tokenizer.json").string() + "'");
    REQUIRE(r.status == 0);
    CHECK(r.out == "1 " + want + "\n");  // <s> from add_bos_token in tokenizer_config.json

    const run_result bad_utf8 = tokenize("ok \xFF", dir_arg("gpt-2"));
    CHECK(bad_utf8.status == 1);
    CHECK(bad_utf8.err.find("invalid UTF-8 at byte 3") != std::string::npos);
    CHECK(bad_utf8.out.empty());

    const run_result missing = tokenize("x", "--tokenizer '" + (data_dir / "nope").string() + "'");
    CHECK(missing.status == 1);
    CHECK(missing.err.find("no such file or directory") != std::string::npos);

    const run_result usage = tokenize("x", "");
    CHECK(usage.status == 2);
    CHECK(usage.err.find("missing required option '--tokenizer'") != std::string::npos);
}

#endif
