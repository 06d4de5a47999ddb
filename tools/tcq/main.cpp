/// @file main.cpp
/// @brief The `tcq` command-line tool: whole models (quantize, compare, eval,
/// generate, convert), the tensor-level steps on per-layer safetensors files
/// (GPTQ, scores, selection, packing, TaCQ), and tokenization. Built with
/// tcq::mpi, a run under mpirun is one MPI job (`tcq quantize` data-parallel).
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
#include "cmd_gptq.hpp"
#include "cmd_pack.hpp"
#include "cmd_score.hpp"
#include "cmd_select.hpp"
#include "cmd_tacq.hpp"
#include "cmd_tokenize.hpp"
#include "command.hpp"
#include "model_commands.hpp"
#include "tcq/core/error.hpp"
#include "tcq/version.hpp"
#include "world.hpp"

#ifdef TCQ_CLI_MPI
#include "tcq/mpi/guard.hpp"
#endif

namespace {

using tcq::cli::command;

/// All subcommands, in the order `tcq --help` lists them.
std::vector<command> commands() {
    auto cmds = tcq::cli::model_commands();
    for (auto c : {tcq::cli::tokenize_command(), tcq::cli::gptq_command(), tcq::cli::score_command(),
                   tcq::cli::select_command(), tcq::cli::pack_command(), tcq::cli::inspect_command(),
                   tcq::cli::unpack_command(), tcq::cli::tacq_command()})
        cmds.push_back(std::move(c));
    return cmds;
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

/// Prints a usage error and the relevant usage text (rank 0 only: every
/// rank parses the same argv); returns exit status 2.
int usage_failure(const std::string& message, const std::string& usage) {
    if (tcq::cli::world_rank() == 0) std::cerr << "tcq: usage error: " << message << "\n\n" << usage;
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
#ifdef TCQ_CLI_MPI
    } catch (const tcq::mpi::collective_error&) {
        throw;  // run_main names the failing rank, once per rank
#endif
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

/// The whole tool, once the process knows whether it is an MPI job.
int tool_main(int argc, char** argv) {
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
    if (tcq::cli::world_size() > 1 && name != "quantize")
        return usage_failure("only 'quantize' runs on several MPI ranks, not '" + name + "'", usage);
    const std::vector<std::string> args(argv + 2, argv + argc);
    for (const auto& c : cmds)
        if (c.name == name) return run_command(c, args);
    return usage_failure("unknown command '" + name + "'", usage);
}

}  // namespace

int main(int argc, char** argv) {
#ifdef TCQ_CLI_MPI
    if (tcq::cli::launched_by_mpi())
        return tcq::mpi::run_main(argc, argv, [&](tcq::mpi::communicator& comm) {
            tcq::cli::world() = &comm;
            const int rc = tool_main(argc, argv);
            tcq::cli::world() = nullptr;
            return rc;
        });
#endif
    return tool_main(argc, argv);
}
