#pragma once
/// @file args.hpp
/// @brief Command-line parsing for the `tcq` tool: declared options, strict
/// checking, typed accessors. Every problem with the command line is a
/// usage_error (exit status 2); problems with the data are tcq::error (1).
///
/// Syntax: `--name value`, `--name=value`, `-o value` for declared short
/// names, `--flag` for options without a value, positionals anywhere, `--`
/// ends option parsing. An option given twice is an error unless declared
/// repeatable.

#include <charconv>
#include <cmath>
#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

namespace tcq::cli {

/// Shortest round-trip decimal form of `v`.
inline std::string format_real(double v) {
    char buf[32];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

/// A malformed command line: reported with the usage text, exit status 2.
class usage_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

/// One declared option.
struct option_spec {
    std::string name;         ///< long name without dashes, e.g. "bits"
    bool takes_value = true;  ///< false: a flag
    char short_name = 0;      ///< e.g. 'o' for -o; 0: none
    bool repeatable = false;  ///< may be given more than once
};

/// Parsed arguments of one subcommand.
class arguments {
public:
    /// Parses `args` (without the program and subcommand names) against `specs`.
    /// Throws usage_error on an unknown option, a missing value, a repeated
    /// option, or more than `max_positionals` positionals.
    static arguments parse(std::span<const std::string> args, std::span<const option_spec> specs,
                           std::size_t max_positionals) {
        arguments a;
        bool options_done = false;
        for (std::size_t i = 0; i < args.size(); ++i) {
            const std::string& tok = args[i];
            if (options_done || tok.size() < 2 || tok[0] != '-') {
                a.positionals_.push_back(tok);
                continue;
            }
            if (tok == "--") {
                options_done = true;
                continue;
            }
            std::string name;
            std::optional<std::string> inline_value;
            if (tok[1] == '-') {
                const auto eq = tok.find('=');
                name = tok.substr(2, eq == std::string::npos ? std::string::npos : eq - 2);
                if (eq != std::string::npos) inline_value = tok.substr(eq + 1);
            } else {
                if (tok.size() != 2) throw usage_error("unknown option '" + tok + "'");
                name = short_to_long(tok[1], specs, tok);
            }
            const option_spec& spec = find_spec(name, specs, tok);
            std::string value;
            if (spec.takes_value) {
                if (inline_value) {
                    value = *inline_value;
                } else {
                    if (i + 1 >= args.size()) throw usage_error("option '" + tok + "' needs a value");
                    value = args[++i];
                }
            } else if (inline_value) {
                throw usage_error("option '--" + name + "' takes no value");
            }
            auto& slot = a.values_[spec.name];
            if (!slot.empty() && !spec.repeatable) throw usage_error("option '--" + spec.name + "' given twice");
            slot.push_back(std::move(value));
        }
        if (a.positionals_.size() > max_positionals) {
            if (max_positionals == 0)
                throw usage_error("unexpected argument '" + a.positionals_.front() + "'");
            throw usage_error("unexpected argument '" + a.positionals_[max_positionals] + "'");
        }
        return a;
    }

    /// True if the option (or flag) was given.
    [[nodiscard]] bool has(std::string_view name) const { return values_.find(std::string(name)) != values_.end(); }

    /// The value of an option given once, if given.
    [[nodiscard]] std::optional<std::string> get(std::string_view name) const {
        const auto it = values_.find(std::string(name));
        if (it == values_.end()) return std::nullopt;
        return it->second.back();
    }

    /// All values of a repeatable option, in command-line order.
    [[nodiscard]] std::vector<std::string> all(std::string_view name) const {
        const auto it = values_.find(std::string(name));
        return it == values_.end() ? std::vector<std::string>{} : it->second;
    }

    /// The value of a required option; usage_error if absent.
    [[nodiscard]] std::string required(std::string_view name) const {
        auto v = get(name);
        if (!v) throw usage_error("missing required option '--" + std::string(name) + "'");
        return *v;
    }

    /// An integer option in [lo, hi], or `fallback` if absent.
    [[nodiscard]] std::int64_t integer(std::string_view name, std::int64_t fallback, std::int64_t lo,
                                       std::int64_t hi) const {
        const auto v = get(name);
        return v ? parse_integer(name, *v, lo, hi) : fallback;
    }

    /// A required integer option in [lo, hi].
    [[nodiscard]] std::int64_t required_integer(std::string_view name, std::int64_t lo, std::int64_t hi) const {
        return parse_integer(name, required(name), lo, hi);
    }

    /// A finite real option in [lo, hi], or `fallback` if absent.
    [[nodiscard]] double real(std::string_view name, double fallback, double lo, double hi) const {
        const auto v = get(name);
        return v ? parse_real(name, *v, lo, hi) : fallback;
    }

    /// Positional arguments, in order.
    [[nodiscard]] const std::vector<std::string>& positionals() const noexcept { return positionals_; }

    /// Throws usage_error if more than one of `names` was given.
    void at_most_one_of(std::initializer_list<std::string_view> names) const {
        std::string given;
        int n = 0;
        for (auto nm : names)
            if (has(nm)) {
                given += (n++ ? " and --" : "--") + std::string(nm);
            }
        if (n > 1) throw usage_error("options " + given + " exclude each other");
    }

    /// Parses an integer in [lo, hi]; usage_error naming the option otherwise.
    static std::int64_t parse_integer(std::string_view name, const std::string& s, std::int64_t lo,
                                      std::int64_t hi) {
        std::int64_t v = 0;
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc{} || p != s.data() + s.size() || s.empty())
            throw usage_error("option '--" + std::string(name) + "': '" + s + "' is not an integer");
        if (v < lo || v > hi)
            throw usage_error("option '--" + std::string(name) + "': " + s + " is outside [" + std::to_string(lo) +
                              ", " + std::to_string(hi) + "]");
        return v;
    }

    /// Parses a finite real number in [lo, hi]; usage_error naming the option otherwise.
    static double parse_real(std::string_view name, const std::string& s, double lo, double hi) {
        double v = 0;
        const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
        if (ec != std::errc{} || p != s.data() + s.size() || s.empty() || !std::isfinite(v))
            throw usage_error("option '--" + std::string(name) + "': '" + s + "' is not a finite number");
        if (v < lo || v > hi)
            throw usage_error("option '--" + std::string(name) + "': " + s + " is outside [" + format_real(lo) + ", " +
                              format_real(hi) + "]");
        return v;
    }

private:
    static std::string short_to_long(char c, std::span<const option_spec> specs, const std::string& tok) {
        for (const auto& s : specs)
            if (s.short_name == c) return s.name;
        throw usage_error("unknown option '" + tok + "'");
    }

    static const option_spec& find_spec(const std::string& name, std::span<const option_spec> specs,
                                        const std::string& tok) {
        for (const auto& s : specs)
            if (s.name == name) return s;
        throw usage_error("unknown option '" + tok + "'");
    }

    std::map<std::string, std::vector<std::string>, std::less<>> values_;
    std::vector<std::string> positionals_;
};

}  // namespace tcq::cli
