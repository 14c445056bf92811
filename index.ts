/** sfmpi: impromptu clusters for programs. The clone runtime; the MPI layer is `sfmpi/mpi`. */
export * from './runtime/index.js';
