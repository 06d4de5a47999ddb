#pragma once
/// @file safetensors_dir.hpp
/// @brief A Hugging Face checkpoint directory of safetensors files: one
/// `model.safetensors`, or shards `model-XXXXX-of-YYYYY.safetensors` listed by
/// `model.safetensors.index.json`. Reading maps every shard and resolves tensor
/// names across them; writing shards past a size limit and writes the index,
/// all into a temporary directory renamed at the end (nothing is left behind
/// on failure).
///
/// Needs nlohmann-json: link `tcq::io`.

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "tcq/core/error.hpp"
#include "tcq/io/safetensors.hpp"

namespace tcq::safetensors {

/// File name of an unsharded checkpoint.
inline constexpr std::string_view single_file_name = "model.safetensors";
/// File name of the shard index.
inline constexpr std::string_view index_file_name = "model.safetensors.index.json";

/// A parsed `model.safetensors.index.json`: tensor name → shard file name.
struct shard_index {
    std::map<std::string, std::string, std::less<>> weight_map;  ///< tensor → shard file
    std::uint64_t total_size = 0;                                ///< metadata.total_size (0 if absent)

    /// The distinct shard file names, sorted.
    [[nodiscard]] std::vector<std::string> shards() const {
        std::set<std::string> s;
        for (const auto& [t, f] : weight_map) s.insert(f);
        return {s.begin(), s.end()};
    }
};

/// Parses an index file's text. Errors name `what` (the file) and the field:
/// not JSON, no `weight_map` object, a value that is not a string, or a shard
/// name that is not a plain file name (no directories, no "..").
[[nodiscard]] inline shard_index parse_shard_index(std::string_view text, std::string_view what) {
    nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr, false);
    require(!j.is_discarded(), what, ": not valid JSON");
    require(j.is_object(), what, ": the top level is not a JSON object");
    shard_index idx;
    if (auto m = j.find("metadata"); m != j.end() && m->is_object()) {
        if (auto ts = m->find("total_size"); ts != m->end()) {
            require(ts->is_number_unsigned() || ts->is_number_integer(), what,
                    ": field 'metadata.total_size' is not an integer: ", ts->dump());
            require(!ts->is_number_integer() || ts->get<std::int64_t>() >= 0, what,
                    ": field 'metadata.total_size' is negative: ", ts->dump());
            idx.total_size = ts->get<std::uint64_t>();
        }
    }
    const auto wm = j.find("weight_map");
    require(wm != j.end(), what, ": missing field 'weight_map'");
    require(wm->is_object(), what, ": field 'weight_map' is not an object");
    for (const auto& [name, file] : wm->items()) {
        require(file.is_string(), what, ": field 'weight_map.", name, "' is not a string: ", file.dump());
        const auto f = file.get<std::string>();
        require(!f.empty() && f.find('/') == std::string::npos && f.find('\\') == std::string::npos && f != "." &&
                    f != "..",
                what, ": field 'weight_map.", name, "' names '", f, "', which is not a file name in the directory");
        idx.weight_map.emplace(name, f);
    }
    require(!idx.weight_map.empty(), what, ": field 'weight_map' is empty");
    return idx;
}

/// The tensors of a checkpoint directory, each found in the shard that holds it.
class directory {
public:
    /// Opens `dir`: `model.safetensors` if present, else the index and every
    /// shard it names. Each shard is mapped and validated; every tensor the
    /// index names must be in its shard.
    [[nodiscard]] static directory open(const std::filesystem::path& dir) {
        directory d;
        d.dir_ = dir;
        const auto single = dir / single_file_name, index = dir / index_file_name;
        std::error_code ec;
        if (std::filesystem::is_regular_file(single, ec)) {
            d.readers_.push_back(reader::open(single));
            for (const auto& t : d.readers_.back().tensors()) d.where_.emplace(t.name, 0);
            return d;
        }
        require(std::filesystem::is_regular_file(index, ec), dir.string(), ": neither ", single_file_name, " nor ",
                index_file_name, " is there");
        const auto idx = parse_shard_index(read_text(index), index.string());
        std::map<std::string, std::size_t, std::less<>> slot;
        for (const auto& f : idx.shards()) {
            const auto p = dir / f;
            require(std::filesystem::is_regular_file(p, ec), index.string(), ": names shard '", f,
                    "', which is missing from ", dir.string());
            slot.emplace(f, d.readers_.size());
            d.readers_.push_back(reader::open(p));
        }
        for (const auto& [name, f] : idx.weight_map) {
            const std::size_t s = slot.at(f);
            require(d.readers_[s].contains(name), index.string(), ": tensor '", name, "' is listed in shard '", f,
                    "', which does not contain it");
            d.where_.emplace(name, s);
        }
        return d;
    }

    /// The directory.
    [[nodiscard]] const std::filesystem::path& path() const noexcept { return dir_; }
    /// True if some shard holds `name`.
    [[nodiscard]] bool contains(std::string_view name) const { return where_.find(name) != where_.end(); }
    /// The reader of the shard holding `name`; throws naming the tensor and directory.
    [[nodiscard]] const reader& shard_of(std::string_view name) const {
        const auto it = where_.find(name);
        require(it != where_.end(), dir_.string(), ": tensor '", name, "' is missing from the checkpoint");
        return readers_[it->second];
    }
    /// All tensor names, sorted.
    [[nodiscard]] std::vector<std::string> names() const {
        std::vector<std::string> out;
        for (const auto& [n, s] : where_) out.push_back(n);
        return out;
    }
    /// Number of shard files.
    [[nodiscard]] std::size_t shard_count() const noexcept { return readers_.size(); }

    /// Checks that `name` exists with exactly `shape` and a float dtype (F32,
    /// F16 or BF16); errors name the tensor and the file.
    void expect(std::string_view name, const std::vector<index_t>& shape) const {
        const auto& r = shard_of(name);
        const auto& t = r.info(name);
        require(t.type == dtype::F32 || t.type == dtype::F16 || t.type == dtype::BF16, r.source(), ": tensor '", name,
                "' has dtype ", dtype_name(t.type), ", expected F32, F16 or BF16");
        require(t.shape == shape, r.source(), ": tensor '", name, "' has shape ", detail::shape_string(t.shape),
                ", the config implies ", detail::shape_string(shape));
    }

    /// Converts tensor `name` to fp32 into `out` (size numel).
    void to_float(std::string_view name, std::span<float> out) const { shard_of(name).to_float(name, out); }

    /// Whole text of a small file; throws naming it.
    [[nodiscard]] static std::string read_text(const std::filesystem::path& p) {
        std::ifstream in(p, std::ios::binary);
        require(static_cast<bool>(in), p.string(), ": cannot open for reading");
        std::ostringstream ss;
        ss << in.rdbuf();
        require(!in.bad(), p.string(), ": read failed");
        return ss.str();
    }

private:
    std::filesystem::path dir_;
    std::vector<reader> readers_;
    std::map<std::string, std::size_t, std::less<>> where_;
};

/// One tensor to write: float values stored as `type`.
struct tensor_out {
    std::string name;             ///< checkpoint name
    std::vector<index_t> shape;   ///< dimensions
    std::function<void(std::span<float>)> fill;  ///< writes numel values (called once, when its shard is written)
};

/// Writes a checkpoint directory atomically: `extra` files (name → text, e.g.
/// config.json) and the tensors as `type`, in the given order, in shards of
/// at most `max_shard_bytes` of tensor data (a tensor larger than the limit
/// gets a shard of its own). One shard is `model.safetensors`; several are
/// `model-XXXXX-of-YYYYY.safetensors` plus the index. `dir` must not exist
/// or be empty; everything is written to `dir` + ".partial" and renamed at
/// the end, so a failure leaves nothing under `dir`.
inline void write_directory(const std::filesystem::path& dir, const std::vector<tensor_out>& tensors, dtype type,
                            std::uint64_t max_shard_bytes,
                            const std::vector<std::pair<std::string, std::string>>& extra) {
    namespace fs = std::filesystem;
    require(type == dtype::F32 || type == dtype::F16 || type == dtype::BF16, dir.string(),
            ": checkpoints are written as F32, F16 or BF16, not ", dtype_name(type));
    std::error_code ec;
    if (fs::exists(dir, ec))
        require(fs::is_directory(dir, ec) && fs::is_empty(dir, ec), dir.string(),
                ": output exists and is not an empty directory");
    auto numel = [](const tensor_out& t) {
        std::uint64_t n = 1;
        for (index_t d : t.shape) n *= static_cast<std::uint64_t>(d);
        return n;
    };
    // Group into shards, in order.
    std::vector<std::vector<std::size_t>> groups;
    std::uint64_t cur = 0, total = 0;
    for (std::size_t i = 0; i < tensors.size(); ++i) {
        const std::uint64_t b = numel(tensors[i]) * dtype_size(type);
        if (groups.empty() || (cur + b > max_shard_bytes && cur > 0)) {
            groups.emplace_back();
            cur = 0;
        }
        groups.back().push_back(i);
        cur += b;
        total += b;
    }
    fs::path tmp = dir;
    tmp += ".partial";
    fs::remove_all(tmp, ec);
    fs::create_directories(tmp, ec);
    require(!ec, dir.string(), ": cannot create '", tmp.string(), "': ", ec.message());
    try {
        for (const auto& [name, text] : extra) {
            std::ofstream os(tmp / name, std::ios::binary | std::ios::trunc);
            os << text;
            os.close();
            require(!os.fail(), (dir / name).string(), ": write failed");
        }
        const std::size_t n = groups.size();
        nlohmann::ordered_json wm = nlohmann::ordered_json::object();
        for (std::size_t g = 0; g < n; ++g) {
            char buf[64];
            std::snprintf(buf, sizeof buf, "model-%05zu-of-%05zu.safetensors", g + 1, n);
            const std::string fname = n == 1 ? std::string(single_file_name) : std::string(buf);
            writer w;
            for (std::size_t i : groups[g]) {
                const auto& t = tensors[i];
                std::vector<float> v(static_cast<std::size_t>(numel(t)));
                t.fill(v);
                w.add_as(t.name, v, t.shape, type);
                wm[t.name] = fname;
            }
            w.set_metadata("format", "pt");
            w.write(tmp / fname);
        }
        if (n > 1) {
            nlohmann::ordered_json idx;
            idx["metadata"] = {{"total_size", total}};
            idx["weight_map"] = wm;
            std::ofstream os(tmp / index_file_name, std::ios::binary | std::ios::trunc);
            os << idx.dump(2) << '\n';
            os.close();
            require(!os.fail(), (dir / index_file_name).string(), ": write failed");
        }
        if (fs::exists(dir, ec)) fs::remove(dir, ec);  // empty, checked above
        fs::rename(tmp, dir, ec);
        require(!ec, dir.string(), ": cannot rename '", tmp.string(), "': ", ec.message());
    } catch (...) {
        fs::remove_all(tmp, ec);
        throw;
    }
}

}  // namespace tcq::safetensors
