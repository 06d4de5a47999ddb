#pragma once
/// @file world.hpp
/// @brief The MPI world of a `tcq` run under mpirun (when the tool is built
/// with tcq::mpi): main() starts MPI only when a launcher set the job up, so
/// a plain `tcq ...` never touches MPI.

#include <cstdlib>

#ifdef TCQ_CLI_MPI
#include "tcq/mpi/communicator.hpp"
#endif

namespace tcq::cli {

/// True when an MPI launcher (OpenMPI's mpirun, or a PMI/PMIx one) started this process.
[[nodiscard]] inline bool launched_by_mpi() {
    return std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMIX_RANK") || std::getenv("PMI_RANK");
}

#ifdef TCQ_CLI_MPI
/// The world communicator while main() runs under MPI; null otherwise.
inline mpi::communicator*& world() {
    static mpi::communicator* w = nullptr;
    return w;
}
#endif

/// This process's rank (0 without MPI).
[[nodiscard]] inline int world_rank() {
#ifdef TCQ_CLI_MPI
    if (world()) return world()->rank();
#endif
    return 0;
}

/// Processes in the job (1 without MPI).
[[nodiscard]] inline int world_size() {
#ifdef TCQ_CLI_MPI
    if (world()) return world()->size();
#endif
    return 1;
}

}  // namespace tcq::cli
