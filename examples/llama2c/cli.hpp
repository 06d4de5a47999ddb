#pragma once
/// @file cli.hpp
/// @brief Declarative sub-command parsing for tcq-llama2c: each command lists
/// its options; the parser rejects unknown, missing or malformed ones with a
/// usage message. Add a command by adding a `command` to the table in main.cpp.

#include <charconv>
#include <cstdio>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace l2c::cli {

/// Bad command line: printed with the command's usage, exit code 2.
struct usage_error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// One `--name VALUE` option (or `--name` flag when value_name is empty).
struct option {
    std::string name;        ///< without the leading dashes
    std::string value_name;  ///< e.g. "FILE"; empty for a flag
    std::string help;
    bool repeatable = false;
    bool required = false;
};

/// Parsed options of one command.
class parsed {
public:
    /// The value of a single-valued option, if given.
    [[nodiscard]] std::optional<std::string> value(const std::string& name) const {
        const auto it = v_.find(name);
        if (it == v_.end() || it->second.empty()) return std::nullopt;
        return it->second.back();
    }
    /// Every value of a repeatable option, in command-line order.
    [[nodiscard]] std::vector<std::string> values(const std::string& name) const {
        const auto it = v_.find(name);
        return it == v_.end() ? std::vector<std::string>{} : it->second;
    }
    [[nodiscard]] bool flag(const std::string& name) const { return v_.count(name) > 0; }
    [[nodiscard]] std::string value_or(const std::string& name, std::string def) const {
        return value(name).value_or(std::move(def));
    }
    /// An integer option in [lo, hi], or `def` when absent.
    [[nodiscard]] long long integer(const std::string& name, long long def, long long lo, long long hi) const {
        const auto s = value(name);
        if (!s) return def;
        long long x = 0;
        const auto [p, ec] = std::from_chars(s->data(), s->data() + s->size(), x);
        if (ec != std::errc{} || p != s->data() + s->size())
            throw usage_error("--" + name + ": '" + *s + "' is not an integer");
        if (x < lo || x > hi)
            throw usage_error("--" + name + ": " + *s + " is outside [" + std::to_string(lo) + ", " +
                              std::to_string(hi) + "]");
        return x;
    }
    std::map<std::string, std::vector<std::string>> v_;
};

/// A sub-command: name, one-line summary, options, and the action
/// (returns the exit code; throws usage_error or tcq::error on failure).
struct command {
    std::string name;
    std::string summary;
    std::vector<option> options;
    std::function<int(const parsed&)> run;
};

[[nodiscard]] inline std::string usage(const command& c) {
    std::string s = "usage: tcq-llama2c " + c.name;
    for (const auto& o : c.options) {
        std::string one = "--" + o.name + (o.value_name.empty() ? "" : " " + o.value_name);
        if (o.repeatable) one += " ...";
        s += o.required ? " " + one : " [" + one + "]";
    }
    s += "\n  " + c.summary + "\n";
    for (const auto& o : c.options)
        s += "  --" + o.name + (o.value_name.empty() ? "" : " " + o.value_name) + "\n      " + o.help + "\n";
    return s;
}

/// Parses argv[first..] against the options of `c`. Accepts `--name value`
/// and `--name=value`.
[[nodiscard]] inline parsed parse(const command& c, int argc, char** argv, int first) {
    parsed p;
    for (int i = first; i < argc; ++i) {
        std::string_view a = argv[i];
        if (a.substr(0, 2) != "--") throw usage_error("unexpected argument '" + std::string(a) + "'");
        a.remove_prefix(2);
        std::optional<std::string> inline_value;
        if (const auto eq = a.find('='); eq != std::string_view::npos) {
            inline_value = std::string(a.substr(eq + 1));
            a = a.substr(0, eq);
        }
        const option* o = nullptr;
        for (const auto& cand : c.options)
            if (cand.name == a) o = &cand;
        if (!o) throw usage_error("unknown option --" + std::string(a) + " for '" + c.name + "'");
        auto& slot = p.v_[o->name];
        if (!slot.empty() && !o->repeatable) throw usage_error("--" + o->name + " given twice");
        if (o->value_name.empty()) {
            if (inline_value) throw usage_error("--" + o->name + " takes no value");
            slot.emplace_back();
            continue;
        }
        if (inline_value) {
            slot.push_back(*inline_value);
        } else {
            if (i + 1 >= argc) throw usage_error("--" + o->name + " needs a value (" + o->value_name + ")");
            slot.emplace_back(argv[++i]);
        }
    }
    for (const auto& o : c.options)
        if (o.required && !p.v_.count(o.name)) throw usage_error("missing --" + o.name);
    return p;
}

}  // namespace l2c::cli
