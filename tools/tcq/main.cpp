/// @file main.cpp
/// @brief The `tcq` command-line tool: GPTQ, scores, selection, packing and
/// the whole TaCQ method on per-layer safetensors files; tokenization.
///
/// Exit status: 0 success; 1 runtime error (bad or inconsistent input data,
/// I/O failure; "tcq: error: …" on stderr); 2 usage error (the message and
/// the usage text on stderr).

#include <exception>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "args.hpp"
#include "cmd_convert.hpp"
#include "cmd_eval.hpp"
#include "cmd_gptq.hpp"
#include "cmd_pack.hpp"
#include "cmd_score.hpp"
#include "cmd_select.hpp"
#include "cmd_tacq.hpp"
#include "cmd_tokenize.hpp"
#include "command.hpp"
#include "tcq/core/error.hpp"
#include "tcq/version.hpp"

namespace {

using tcq::cli::command;

/// All subcommands, in the order `tcq --help` lists them.
std::vector<command> commands() {
    return {tcq::cli::gptq_command(),  tcq::cli::score_command(),  tcq::cli::select_command(),
            tcq::cli::pack_command(),  tcq::cli::inspect_command(), tcq::cli::unpack_command(),
            tcq::cli::tacq_command(),  tcq::cli::tokenize_command(), tcq::cli::eval_command(),
            tcq::cli::convert_command()};
}

/// The top-level usage text.
std::string main_usage(const std::vector<command>& cmds) {
    std::string s = "usage: tcq <command> [options]\n\ncommands:\n";
    for (const auto& c : cmds) {
        std::string name = c.name;
        name.resize(10, ' ');
        s += "  " + name + c.summary + "\n";
    }
    s += "\n`tcq <command> --help` shows a command's options. `tcq --version` prints the version.\n"
         "Exit status: 0 success, 1 runtime error, 2 usage error.\n";
    return s;
}

/// Prints a usage error and the relevant usage text; returns exit status 2.
int usage_failure(const std::string& message, const std::string& usage) {
    std::cerr << "tcq: usage error: " << message << "\n\n" << usage;
    return 2;
}

/// Prints a runtime error; returns exit status 1.
int runtime_failure(const std::string& message) {
    std::cerr << "tcq: error: " << message << '\n';
    return 1;
}

/// True if `args` asks for help (-h or --help before any `--`).
bool wants_help(const std::vector<std::string>& args) {
    for (const auto& a : args) {
        if (a == "--") return false;
        if (a == "-h" || a == "--help") return true;
    }
    return false;
}

/// Parses and runs one subcommand, mapping failures to exit statuses.
int run_command(const command& c, const std::vector<std::string>& args) {
    if (wants_help(args)) {
        std::cout << c.usage;
        return 0;
    }
    tcq::cli::arguments parsed;
    try {
        parsed = tcq::cli::arguments::parse(args, c.specs, c.max_positionals);
    } catch (const tcq::cli::usage_error& e) {
        return usage_failure(e.what(), c.usage);
    }
    try {
        return c.run(parsed);
    } catch (const tcq::cli::usage_error& e) {
        return usage_failure(e.what(), c.usage);
    } catch (const tcq::error& e) {
        return runtime_failure(e.what());
    } catch (const nlohmann::json::exception& e) {
        return runtime_failure(std::string("JSON: ") + e.what());
    } catch (const std::bad_alloc&) {
        return runtime_failure("out of memory");
    } catch (const std::exception& e) {
        return runtime_failure(e.what());
    }
}

}  // namespace

int main(int argc, char** argv) {
    const std::vector<command> cmds = commands();
    const std::string usage = main_usage(cmds);
    if (argc < 2) return usage_failure("missing command", usage);
    const std::string name = argv[1];
    if (name == "-h" || name == "--help" || name == "help") {
        std::cout << usage;
        return 0;
    }
    if (name == "--version") {
        std::cout << "tcq " << tcq::version_string << '\n';
        return 0;
    }
    const std::vector<std::string> args(argv + 2, argv + argc);
    for (const auto& c : cmds)
        if (c.name == name) return run_command(c, args);
    return usage_failure("unknown command '" + name + "'", usage);
}
