#pragma once
/// @file seed_list.hpp
/// @brief Lists of calibration seeds as users type them: "0-9", "0,2,5", "0-3,7".

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "tcq/core/error.hpp"

namespace tcq {

/// Most seeds one list may name (guards against "0-999999999999").
inline constexpr std::size_t max_seed_list = 100000;

/// Parses comma-separated items, each a seed `S` or an inclusive range `A-B`
/// (A ≤ B), seeds in [0, 2^62). Order is kept. Throws tcq::error naming the
/// offending item on an empty list or item, a non-number, a reversed range,
/// a repeated seed, or more than max_seed_list seeds.
[[nodiscard]] inline std::vector<std::uint64_t> parse_seed_list(std::string_view s) {
    constexpr std::uint64_t limit = std::uint64_t{1} << 62;
    auto number = [&](std::string_view item, std::string_view t) {
        std::uint64_t v = 0;
        const auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v);
        require(!t.empty() && ec == std::errc{} && p == t.data() + t.size() && v < limit, "seed list '", s,
                "': '", item, "' is not a seed or a range A-B of seeds in [0, 2^62)");
        return v;
    };
    require(!s.empty(), "seed list is empty");
    std::vector<std::uint64_t> out;
    std::size_t b = 0;
    while (true) {
        const auto e = std::min(s.find(',', b), s.size());
        const auto item = s.substr(b, e - b);
        require(!item.empty(), "seed list '", s, "' has an empty item");
        const auto dash = item.find('-');
        const std::uint64_t lo = number(item, item.substr(0, dash));
        const std::uint64_t hi = dash == std::string_view::npos ? lo : number(item, item.substr(dash + 1));
        require(lo <= hi, "seed list '", s, "': range '", item, "' runs backwards");
        require(hi - lo < max_seed_list && out.size() + (hi - lo + 1) <= max_seed_list, "seed list '", s,
                "' names more than ", max_seed_list, " seeds");
        for (std::uint64_t v = lo; v <= hi; ++v) out.push_back(v);
        if (e == s.size()) break;
        b = e + 1;
    }
    auto sorted = out;
    std::sort(sorted.begin(), sorted.end());
    const auto rep = std::adjacent_find(sorted.begin(), sorted.end());
    require(rep == sorted.end(), "seed list '", s, "' repeats seed ", rep == sorted.end() ? 0 : *rep);
    return out;
}

}  // namespace tcq
