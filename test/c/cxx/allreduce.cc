// allreduce.cc: a C++ MPI program (containers, templates, exceptions off the MPI path) that
// uses only the C API, as MPI-3 programs do. Prints "cxx sum S of N ranks" from rank 0.
#include <mpi.h>

#include <iostream>
#include <numeric>
#include <vector>

template <typename T> MPI_Datatype mpi_type();
template <> MPI_Datatype mpi_type<double>() { return MPI_DOUBLE; }
template <> MPI_Datatype mpi_type<long long>() { return MPI_LONG_LONG; }

template <typename T> T global_sum(const std::vector<T> &local, MPI_Comm comm) {
  T mine = std::accumulate(local.begin(), local.end(), T(0)), all = T(0);
  MPI_Allreduce(&mine, &all, 1, mpi_type<T>(), MPI_SUM, comm);
  return all;
}

int main(int argc, char **argv) {
  MPI_Init(&argc, &argv);
  int rank = 0, size = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::vector<long long> v(100);
  std::iota(v.begin(), v.end(), 100LL * rank);
  long long s = global_sum(v, MPI_COMM_WORLD);
  long long n = 100LL * size, want = n * (n - 1) / 2;
  if (rank == 0) std::cout << "cxx sum " << s << " of " << size << " ranks" << (s == want ? " ok" : " WRONG") << std::endl;
  MPI_Finalize();
  return s == want ? 0 : 1;
}
