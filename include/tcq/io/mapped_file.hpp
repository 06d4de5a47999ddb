#pragma once
/// @file mapped_file.hpp
/// @brief Read-only, 64-byte aligned bytes of a file: a memory mapping on
/// POSIX systems, otherwise (or on request) an owned aligned copy. The one
/// file mapping of the library (the tcq file, safetensors).

#include <cstddef>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <new>
#include <span>
#include <string>

#include "tcq/core/error.hpp"

#if defined(__unix__) || defined(__APPLE__)
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
/// 1: POSIX mmap is available, so mapped_file can map files zero-copy.
#define TCQ_HAS_MMAP 1
#else
/// 0: no mmap on this platform; mapped_file always reads into an aligned buffer.
#define TCQ_HAS_MMAP 0
#endif

namespace tcq {

/// Owns read-only bytes whose start is 64-byte aligned. Move-only.
class mapped_file {
public:
    mapped_file() = default;
    mapped_file(const mapped_file&) = delete;
    mapped_file& operator=(const mapped_file&) = delete;
    /// Takes over `o`'s bytes; `o` is left empty.
    mapped_file(mapped_file&& o) noexcept { swap(o); }
    /// Releases the current bytes and takes over `o`'s; `o` is left empty.
    mapped_file& operator=(mapped_file&& o) noexcept {
        mapped_file t(std::move(o));
        swap(t);
        return *this;
    }
    ~mapped_file() { release(); }

    /// Maps `path` read-only (`use_mmap`), or reads it into an aligned buffer.
    /// Only regular files are accepted (a FIFO or device is refused without
    /// blocking). Errors are tcq::error "<what>: ..." (default: the path).
    static mapped_file open(const std::filesystem::path& path, bool use_mmap = true, std::string what = {}) {
        if (what.empty()) what = detail::cat("'", path.string(), "'");
#if TCQ_HAS_MMAP
        // O_NONBLOCK: opening a FIFO must not hang; it is rejected below as not a regular file.
        const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
        require(fd >= 0, what, ": cannot open: ", std::strerror(errno));
        struct stat st {};
        if (::fstat(fd, &st) != 0) {
            const int e = errno;
            ::close(fd);
            fail(what, ": cannot stat: ", std::strerror(e));
        }
        if (!S_ISREG(st.st_mode)) {
            ::close(fd);
            fail(what, ": not a regular file");
        }
        const auto size = static_cast<std::size_t>(st.st_size);
        if (use_mmap) {
            mapped_file m;
            m.size_ = size;
            if (m.size_ > 0) {
                void* p = ::mmap(nullptr, m.size_, PROT_READ, MAP_PRIVATE, fd, 0);
                const int e = errno;
                ::close(fd);  // the mapping keeps the file referenced
                require(p != MAP_FAILED, what, ": mmap failed: ", std::strerror(e));
                m.data_ = static_cast<const std::byte*>(p);
                m.mapped_ = true;
            } else {
                ::close(fd);
            }
            return m;
        }
        ::close(fd);
#else
        std::error_code ec;
        require(std::filesystem::is_regular_file(path, ec), what, ": not a regular file");
#endif
        std::ifstream f(path, std::ios::binary | std::ios::ate);
        require(f.good(), what, ": cannot open");
        const auto n = static_cast<std::size_t>(f.tellg());
        mapped_file m = allocate(n);
        f.seekg(0);
        f.read(reinterpret_cast<char*>(const_cast<std::byte*>(m.data_)), static_cast<std::streamsize>(n));
        require(f.good() || n == 0, what, ": read failed");
        return m;
    }

    /// Aligned owned copy of `bytes`.
    static mapped_file copy(std::span<const std::byte> bytes) {
        mapped_file m = allocate(bytes.size());
        if (!bytes.empty()) std::memcpy(const_cast<std::byte*>(m.data_), bytes.data(), bytes.size());
        return m;
    }

    /// The bytes (64-byte aligned start).
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept { return {data_, size_}; }
    /// True when the bytes are a memory mapping of the file (zero-copy).
    [[nodiscard]] bool mapped() const noexcept { return mapped_; }

private:
    static mapped_file allocate(std::size_t n) {
        mapped_file m;
        m.size_ = n;
        m.data_ = static_cast<const std::byte*>(::operator new(n ? n : 1, std::align_val_t{64}));
        return m;
    }
    void release() noexcept {
        if (!data_) return;
#if TCQ_HAS_MMAP
        if (mapped_) {
            ::munmap(const_cast<std::byte*>(data_), size_);
            data_ = nullptr;
            return;
        }
#endif
        ::operator delete(const_cast<std::byte*>(data_), std::align_val_t{64});
        data_ = nullptr;
    }
    void swap(mapped_file& o) noexcept {
        std::swap(data_, o.data_);
        std::swap(size_, o.size_);
        std::swap(mapped_, o.mapped_);
    }

    const std::byte* data_ = nullptr;
    std::size_t size_ = 0;
    bool mapped_ = false;
};

}  // namespace tcq
