#pragma once
/// @file communicator.hpp
/// @brief RAII MPI environment and communicator whose collectives cannot hang
/// on a mismatch or a failed rank (docs/distributed.md, "Agreement").
///
/// Every collective first runs one small agreement: an MPI_MAX allreduce of a
/// fixed 12-word descriptor (sequence number, kind, element count, datatype,
/// root, each also bit-inverted so the max yields the min too, plus a failure
/// word). Every rank sees the same result, so either all ranks go on to the
/// collective or all throw: a shape or kind mismatch, or a rank that entered
/// its phase check after a failure (guard.hpp), turns into a tcq::error on
/// every rank instead of a deadlock. MPI errors (MPI_ERRORS_RETURN) become
/// tcq::error naming the rank and MPI's error string.

#include <mpi.h>

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "tcq/core/error.hpp"

namespace tcq::mpi {

/// Raised on every rank at once when an agreement fails (a rank failed, or the
/// ranks called different collectives); all ranks have left the collective.
class collective_error : public error {
public:
    /// Error with message `m`; `failed_rank` ≥ 0 names the rank that failed first.
    collective_error(const std::string& m, int failed_rank) : error(m), failed_rank_(failed_rank) {}
    /// Lowest failing rank, or −1 for a plain mismatch.
    [[nodiscard]] int failed_rank() const noexcept { return failed_rank_; }

private:
    int failed_rank_;
};

/// MPI's text for error code `code`.
[[nodiscard]] inline std::string error_string(int code) {
    char buf[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(code, buf, &len) != MPI_SUCCESS) return "MPI error " + std::to_string(code);
    return std::string(buf, static_cast<std::size_t>(len));
}

/// Initializes MPI (MPI_THREAD_FUNNELED) unless already done, finalizes it if it did.
class environment {
public:
    /// MPI_Init_thread on argc/argv.
    environment(int& argc, char**& argv) {
        int done = 0;
        MPI_Initialized(&done);
        if (done) return;
        int provided = 0;
        const int rc = MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
        require(rc == MPI_SUCCESS, "mpi: MPI_Init_thread failed: ", error_string(rc));
        owner_ = true;
        // Errors of calls on MPI_COMM_WORLD itself (MPI_Abort excepted) return too.
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    }
    environment(const environment&) = delete;
    environment& operator=(const environment&) = delete;
    ~environment() {
        int fin = 0;
        MPI_Finalized(&fin);
        if (owner_ && !fin) MPI_Finalize();
    }

private:
    bool owner_ = false;
};

/// Element types the collectives move.
template <class T>
inline MPI_Datatype datatype_of() {
    if constexpr (std::is_same_v<T, float>) return MPI_FLOAT;
    else if constexpr (std::is_same_v<T, double>) return MPI_DOUBLE;
    else if constexpr (std::is_same_v<T, std::uint8_t>) return MPI_UINT8_T;
    else if constexpr (std::is_same_v<T, std::int32_t>) return MPI_INT32_T;
    else if constexpr (std::is_same_v<T, std::uint32_t>) return MPI_UINT32_T;
    else if constexpr (std::is_same_v<T, std::int64_t>) return MPI_INT64_T;
    else if constexpr (std::is_same_v<T, std::uint64_t>) return MPI_UINT64_T;
    else static_assert(sizeof(T) == 0, "tcq::mpi: unsupported element type");
}

/// Small id of an element type, compared by the agreement.
template <class T>
constexpr std::uint64_t dtype_id() {
    if constexpr (std::is_same_v<T, float>) return 1;
    else if constexpr (std::is_same_v<T, double>) return 2;
    else if constexpr (std::is_same_v<T, std::uint8_t>) return 3;
    else if constexpr (std::is_same_v<T, std::int32_t>) return 4;
    else if constexpr (std::is_same_v<T, std::uint32_t>) return 5;
    else if constexpr (std::is_same_v<T, std::int64_t>) return 6;
    else if constexpr (std::is_same_v<T, std::uint64_t>) return 7;
    else static_assert(sizeof(T) == 0, "tcq::mpi: unsupported element type");
}

/// Kinds of collectives, compared by the agreement.
enum class op : std::uint64_t {
    phase = 1,       ///< phase boundary (guard.hpp): carries the failure word
    barrier,         ///< MPI_Barrier
    allreduce_sum,   ///< integer sum
    allreduce_max,   ///< max
    bcast,           ///< broadcast of a fixed count
    bcast_bytes,     ///< broadcast of a byte string (length sent first)
    allgather_bytes, ///< every rank's bytes to every rank
    gather_bytes,    ///< every rank's bytes to one root
};

/// Name of a collective kind.
[[nodiscard]] inline const char* to_string(op k) {
    switch (k) {
        case op::phase: return "phase check";
        case op::barrier: return "barrier";
        case op::allreduce_sum: return "allreduce(sum)";
        case op::allreduce_max: return "allreduce(max)";
        case op::bcast: return "bcast";
        case op::bcast_bytes: return "bcast(bytes)";
        case op::allgather_bytes: return "allgather(bytes)";
        case op::gather_bytes: return "gather(bytes)";
    }
    return "unknown collective";
}

/// Size-agnostic count for collectives whose counts legitimately differ per rank.
inline constexpr std::uint64_t any_count = ~std::uint64_t{0};

/// An owned duplicate of an MPI communicator with MPI_ERRORS_RETURN and
/// agreed collectives; freed on destruction.
class communicator {
public:
    /// Duplicates `base` (MPI must be initialized).
    explicit communicator(MPI_Comm base = MPI_COMM_WORLD) {
        int init = 0;
        MPI_Initialized(&init);
        require(init != 0, "mpi::communicator: MPI is not initialized (create a tcq::mpi::environment first)");
        check(MPI_Comm_dup(base, &comm_), "MPI_Comm_dup");
        check(MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN), "MPI_Comm_set_errhandler");
        check(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
        check(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
    }
    communicator(const communicator&) = delete;
    communicator& operator=(const communicator&) = delete;
    ~communicator() {
        int fin = 0;
        MPI_Finalized(&fin);
        if (comm_ != MPI_COMM_NULL && !fin) MPI_Comm_free(&comm_);
    }

    /// This process's rank.
    [[nodiscard]] int rank() const noexcept { return rank_; }
    /// Number of ranks.
    [[nodiscard]] int size() const noexcept { return size_; }
    /// The MPI handle (for calls tcq does not wrap).
    [[nodiscard]] MPI_Comm native() const noexcept { return comm_; }
    /// Collectives run so far (each agreement counts one).
    [[nodiscard]] std::uint64_t collectives() const noexcept { return seq_; }
    /// Payload bytes of the collectives this rank logically sent to or received
    /// from other ranks (a root's broadcast counts once per other rank; the
    /// agreements are not counted); 0 on one rank.
    [[nodiscard]] std::uint64_t bytes_moved() const noexcept { return bytes_; }

    /// Throws tcq::error naming this rank, `what` and MPI's error string unless rc is MPI_SUCCESS.
    void check(int rc, std::string_view what) const {
        if (rc != MPI_SUCCESS) fail("mpi: rank ", rank_, ": ", what, " failed: ", error_string(rc));
    }

    /// The agreement (see file doc). `failure` non-empty marks this rank as
    /// failed with that cause. Throws collective_error on every rank if any
    /// rank failed or the descriptors differ.
    void agree(op kind, std::uint64_t count, std::uint64_t dtype, std::uint64_t root, std::string_view what,
               std::string_view failure = {}) {
        const std::array<std::uint64_t, 5> d{seq_, static_cast<std::uint64_t>(kind), count, dtype, root};
        std::array<std::uint64_t, 12> v{};
        for (std::size_t i = 0; i < d.size(); ++i) {
            v[i] = d[i];
            v[i + 5] = ~d[i];
        }
        // Lowest failing rank wins the max.
        v[10] = failure.empty() ? 0 : static_cast<std::uint64_t>(size_ - rank_);
        v[11] = failure.empty() ? 0 : 1;
        std::array<std::uint64_t, 12> r{};
        check(MPI_Allreduce(v.data(), r.data(), 12, MPI_UINT64_T, MPI_MAX, comm_), "agreement allreduce");
        ++seq_;
        if (r[10] != 0) {
            const int bad = size_ - static_cast<int>(r[10]);
            // Every rank knows `bad`: its cause is broadcast, then all throw the same message.
            std::string cause(rank_ == bad ? failure : std::string_view{});
            std::uint64_t n = cause.size();
            check(MPI_Bcast(&n, 1, MPI_UINT64_T, bad, comm_), "failure broadcast");
            cause.resize(static_cast<std::size_t>(n));
            if (n) check(MPI_Bcast(cause.data(), static_cast<int>(n), MPI_CHAR, bad, comm_), "failure broadcast");
            throw collective_error(detail::cat("rank ", bad, " failed: ", cause), bad);
        }
        static constexpr const char* field[] = {"collective sequence number", "collective kind", "element count",
                                                "element type", "root"};
        for (std::size_t i = 0; i < d.size(); ++i) {
            const std::uint64_t hi = r[i], lo = ~r[i + 5];
            if (hi == lo) continue;
            if (i == 2 && (hi == any_count || lo == any_count)) continue;
            std::string m = detail::cat("mpi: rank ", rank_, ": ranks disagree on the ", field[i], " of ", what, " (",
                                        to_string(kind), " here");
            if (i == 1)
                m += detail::cat("; kinds range over ", to_string(static_cast<op>(lo)), " .. ",
                                 to_string(static_cast<op>(hi)), ")");
            else
                m += detail::cat("; min ", lo, ", max ", hi, ", this rank ", d[i], ")");
            throw collective_error(m, -1);
        }
    }

    /// Barrier.
    void barrier(std::string_view what = "barrier") {
        agree(op::barrier, 0, 0, 0, what);
        check(MPI_Barrier(comm_), "MPI_Barrier");
    }

    /// Element-wise integer sum over ranks, in place (exact, so order-free).
    template <class T>
    void allreduce_sum(std::span<T> v, std::string_view what) {
        static_assert(std::is_integral_v<T>, "allreduce_sum: integers only (float sums depend on the order)");
        agree(op::allreduce_sum, v.size(), dtype_id<T>(), 0, what);
        check(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), datatype_of<T>(), MPI_SUM, comm_),
              what);
        if (size_ > 1) bytes_ += 2 * v.size_bytes();
    }
    /// Element-wise max over ranks, in place.
    template <class T>
    void allreduce_max(std::span<T> v, std::string_view what) {
        agree(op::allreduce_max, v.size(), dtype_id<T>(), 0, what);
        check(MPI_Allreduce(MPI_IN_PLACE, v.data(), static_cast<int>(v.size()), datatype_of<T>(), MPI_MAX, comm_),
              what);
        if (size_ > 1) bytes_ += 2 * v.size_bytes();
    }

    /// Broadcasts v (same size on every rank) from `root`.
    template <class T>
    void bcast(std::span<T> v, int root, std::string_view what) {
        agree(op::bcast, v.size(), dtype_id<T>(), static_cast<std::uint64_t>(root), what);
        for (std::size_t off = 0; off < v.size(); off += max_count) {
            const std::size_t n = std::min(max_count, v.size() - off);
            check(MPI_Bcast(v.data() + off, static_cast<int>(n), datatype_of<T>(), root, comm_), what);
        }
        count_bcast(v.size_bytes(), root);
    }

    /// Broadcasts a byte string of any length from `root` (resized elsewhere).
    void bcast_bytes(std::vector<std::uint8_t>& v, int root, std::string_view what) {
        agree(op::bcast_bytes, any_count, dtype_id<std::uint8_t>(), static_cast<std::uint64_t>(root), what);
        std::uint64_t n = v.size();
        check(MPI_Bcast(&n, 1, MPI_UINT64_T, root, comm_), what);
        v.resize(static_cast<std::size_t>(n));
        for (std::size_t off = 0; off < v.size(); off += max_count) {
            const std::size_t m = std::min(max_count, v.size() - off);
            check(MPI_Bcast(v.data() + off, static_cast<int>(m), MPI_UINT8_T, root, comm_), what);
        }
        count_bcast(v.size(), root);
    }

    /// Every rank's bytes, in rank order, on every rank.
    [[nodiscard]] std::vector<std::vector<std::uint8_t>> allgather_bytes(std::span<const std::uint8_t> mine,
                                                                         std::string_view what) {
        agree(op::allgather_bytes, any_count, dtype_id<std::uint8_t>(), 0, what);
        std::vector<std::uint64_t> sizes(static_cast<std::size_t>(size_));
        std::uint64_t n = mine.size();
        check(MPI_Allgather(&n, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, comm_), what);
        std::vector<std::vector<std::uint8_t>> out(static_cast<std::size_t>(size_));
        std::uint64_t total = 0;
        for (int r = 0; r < size_; ++r) {
            out[static_cast<std::size_t>(r)].resize(static_cast<std::size_t>(sizes[static_cast<std::size_t>(r)]));
            total += sizes[static_cast<std::size_t>(r)];
        }
        // One broadcast per rank keeps counts within int and needs no displacement arrays.
        for (int r = 0; r < size_; ++r) {
            auto& buf = out[static_cast<std::size_t>(r)];
            if (r == rank_) std::copy(mine.begin(), mine.end(), buf.begin());
            for (std::size_t off = 0; off < buf.size(); off += max_count) {
                const std::size_t m = std::min(max_count, buf.size() - off);
                check(MPI_Bcast(buf.data() + off, static_cast<int>(m), MPI_UINT8_T, r, comm_), what);
            }
        }
        bytes_ += (total - mine.size()) + mine.size() * static_cast<std::size_t>(size_ - 1);
        return out;
    }

    /// Every rank's bytes, in rank order, at `root` (empty elsewhere).
    [[nodiscard]] std::vector<std::vector<std::uint8_t>> gather_bytes(std::span<const std::uint8_t> mine, int root,
                                                                      std::string_view what) {
        agree(op::gather_bytes, any_count, dtype_id<std::uint8_t>(), static_cast<std::uint64_t>(root), what);
        std::vector<std::uint64_t> sizes(static_cast<std::size_t>(size_));
        std::uint64_t n = mine.size();
        check(MPI_Gather(&n, 1, MPI_UINT64_T, sizes.data(), 1, MPI_UINT64_T, root, comm_), what);
        std::vector<std::vector<std::uint8_t>> out;
        if (rank_ == root) {
            out.resize(static_cast<std::size_t>(size_));
            for (int r = 0; r < size_; ++r) out[static_cast<std::size_t>(r)].resize(sizes[static_cast<std::size_t>(r)]);
            out[static_cast<std::size_t>(rank_)].assign(mine.begin(), mine.end());
        }
        // Point-to-point in rank order: agreed above, so every rank is in this call.
        constexpr int tag = 0x7c9;
        for (int r = 0; r < size_; ++r) {
            if (r == root) continue;
            if (rank_ == root) {
                auto& buf = out[static_cast<std::size_t>(r)];
                for (std::size_t off = 0; off < buf.size(); off += max_count) {
                    const std::size_t m = std::min(max_count, buf.size() - off);
                    check(MPI_Recv(buf.data() + off, static_cast<int>(m), MPI_UINT8_T, r, tag, comm_, MPI_STATUS_IGNORE),
                          what);
                }
                bytes_ += buf.size();
            } else if (rank_ == r) {
                for (std::size_t off = 0; off < mine.size(); off += max_count) {
                    const std::size_t m = std::min(max_count, mine.size() - off);
                    check(MPI_Send(mine.data() + off, static_cast<int>(m), MPI_UINT8_T, root, tag, comm_), what);
                }
                bytes_ += mine.size();
            }
        }
        return out;
    }

private:
    void count_bcast(std::size_t n, int root) {
        bytes_ += rank_ == root ? n * static_cast<std::size_t>(size_ - 1) : n;
    }

    static constexpr std::size_t max_count = std::size_t{1} << 30;  // elements per MPI call (int counts)

    MPI_Comm comm_ = MPI_COMM_NULL;
    int rank_ = 0, size_ = 1;
    std::uint64_t seq_ = 0;
    std::uint64_t bytes_ = 0;
};

}  // namespace tcq::mpi
