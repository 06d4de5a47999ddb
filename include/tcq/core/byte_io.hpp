#pragma once
/// @file byte_io.hpp
/// @brief Little-endian serialization of integers and strings: one writer and
/// one bounds-checked reader, used by every binary format of the library
/// (the tcq file's metadata, score histograms, boundary candidates).

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tcq/core/error.hpp"

namespace tcq {

/// Appends little-endian integers and length-prefixed strings to a byte
/// vector of `Byte` (std::byte or std::uint8_t).
template <class Byte>
class byte_writer {
    static_assert(sizeof(Byte) == 1, "byte_writer writes bytes");

public:
    /// Appends the sizeof(T) little-endian bytes of the unsigned integer `v`.
    template <class T>
    byte_writer& put(T v) {
        static_assert(std::is_integral_v<T> && std::is_unsigned_v<T>, "put takes unsigned integers");
        for (std::size_t i = 0; i < sizeof(T); ++i) out_.push_back(static_cast<Byte>((v >> (8 * i)) & 0xffu));
        return *this;
    }
    /// Appends a u32 byte count and the bytes of `s`.
    byte_writer& put_str(std::string_view s) {
        put(static_cast<std::uint32_t>(s.size()));
        return put_bytes(s.data(), s.size());
    }
    /// Appends n raw bytes.
    byte_writer& put_bytes(const void* p, std::size_t n) {
        const auto* b = static_cast<const unsigned char*>(p);
        for (std::size_t i = 0; i < n; ++i) out_.push_back(static_cast<Byte>(b[i]));
        return *this;
    }
    /// The bytes written so far.
    [[nodiscard]] const std::vector<Byte>& bytes() const noexcept { return out_; }
    /// Moves the bytes out.
    [[nodiscard]] std::vector<Byte> take() && { return std::move(out_); }

private:
    std::vector<Byte> out_;
};

/// Reads little-endian integers and strings from a byte span, in order. Any
/// read past the end is a tcq::error "<what>: truncated at byte <pos> of <n>".
template <class Byte>
class byte_reader {
    static_assert(sizeof(Byte) == 1, "byte_reader reads bytes");

public:
    /// Reader over `bytes`; `what` names the object in error messages.
    byte_reader(std::span<const Byte> bytes, std::string what) : in_(bytes), what_(std::move(what)) {}

    /// The next sizeof(T) bytes as a little-endian unsigned integer.
    template <class T>
    T take() {
        static_assert(std::is_integral_v<T> && std::is_unsigned_v<T>, "take returns unsigned integers");
        need(sizeof(T));
        T v = 0;
        for (std::size_t i = 0; i < sizeof(T); ++i)
            v |= static_cast<T>(static_cast<T>(static_cast<unsigned char>(in_[pos_ + i])) << (8 * i));
        pos_ += sizeof(T);
        return v;
    }
    /// The next n bytes as a string view (valid while the bytes live).
    std::string_view take_str(std::size_t n) {
        need(n);
        std::string_view v(reinterpret_cast<const char*>(in_.data() + pos_), n);
        pos_ += n;
        return v;
    }
    /// Bytes consumed so far.
    [[nodiscard]] std::size_t pos() const noexcept { return pos_; }
    /// Bytes left.
    [[nodiscard]] std::size_t remaining() const noexcept { return in_.size() - pos_; }
    /// The name used in error messages.
    [[nodiscard]] const std::string& what() const noexcept { return what_; }
    /// Throws unless every byte was consumed.
    void expect_end() const {
        require(pos_ == in_.size(), what_, ": ", in_.size() - pos_, " trailing bytes");
    }

private:
    void need(std::size_t n) const {
        require(in_.size() - pos_ >= n, what_, ": truncated at byte ", pos_, " of ", in_.size(), " (", n,
                " more needed)");
    }
    std::span<const Byte> in_;
    std::size_t pos_ = 0;
    std::string what_;
};

}  // namespace tcq
