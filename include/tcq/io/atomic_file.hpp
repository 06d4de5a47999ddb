#pragma once
/// @file atomic_file.hpp
/// @brief Writing a file so that it is either complete or absent: the bytes go
/// to `<path>.tmp` first, which is renamed over `<path>` only after the
/// stream was flushed and closed without error. Every writer of the library
/// and its tools (safetensors, the tcq file, reports, checkpoints) uses it.

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

#include "tcq/core/error.hpp"

namespace tcq {

/// The temporary path write_atomically() writes first: `<path>.tmp`.
inline std::filesystem::path atomic_temp_path(const std::filesystem::path& path) {
    std::filesystem::path tmp = path;
    tmp += ".tmp";
    return tmp;
}

/// Fails now, before any long work, if write_atomically(path) could not
/// create its temporary: creates `<path>.tmp` and removes it again. A
/// directory at `path` is refused too.
inline void check_writable(const std::filesystem::path& path, std::string_view what) {
    std::error_code ec;
    require(!std::filesystem::is_directory(path, ec), what, ": '", path.string(), "' is a directory");
    const std::filesystem::path tmp = atomic_temp_path(path);
    {
        std::ofstream os(tmp, std::ios::binary | std::ios::out | std::ios::trunc);
        require(static_cast<bool>(os), what, ": cannot write '", tmp.string(), "' (", std::strerror(errno), ")");
    }
    std::filesystem::remove(tmp, ec);
}

/// Fails now, before any long work, unless `dir` can become an output
/// directory: absent or empty, with an existing parent.
inline void check_output_dir(const std::filesystem::path& dir) {
    std::error_code ec;
    if (std::filesystem::exists(dir, ec))
        require(std::filesystem::is_directory(dir, ec) && std::filesystem::is_empty(dir, ec), dir.string(),
                ": output exists and is not an empty directory");
    const auto parent = std::filesystem::absolute(dir).parent_path();
    require(std::filesystem::is_directory(parent, ec), dir.string(), ": parent directory ", parent.string(),
            " does not exist");
}

/// Calls `emit(std::ostream&)` on `<path>.tmp`, then renames it to `path`.
/// On any failure (open, a write, `emit` throwing, rename) the temporary is
/// removed and `path` is left as it was; the tcq::error names `what`.
template <class Emit>
void write_atomically(const std::filesystem::path& path, std::string_view what, Emit&& emit,
                      std::ios::openmode mode = std::ios::binary) {
    const std::filesystem::path tmp = atomic_temp_path(path);
    try {
        {
            std::ofstream os(tmp, mode | std::ios::out | std::ios::trunc);
            require(static_cast<bool>(os), what, ": cannot open '", tmp.string(), "' for writing");
            emit(static_cast<std::ostream&>(os));
            os.close();
            require(!os.fail(), what, ": write to '", tmp.string(), "' failed");
        }
        std::error_code ec;
        std::filesystem::rename(tmp, path, ec);
        require(!ec, what, ": cannot rename '", tmp.string(), "' to '", path.string(), "': ", ec.message());
    } catch (...) {
        std::error_code ec;
        std::filesystem::remove(tmp, ec);
        throw;
    }
}

}  // namespace tcq
