// MPI handles that mpi.h defines as macros over OpenMPI's internal globals (MPI_COMM_WORLD,
// MPI_FLOAT, MPI_SUM, MPI_IN_PLACE, ...). Swift imports only plain constant macros, so each
// handle is returned by a one-line function. Nothing else belongs here.
#ifndef ACQ_MPI_SHIMS_H
#define ACQ_MPI_SHIMS_H

#include <mpi.h>

MPI_Comm acq_mpi_comm_world(void);
MPI_Datatype acq_mpi_float(void);
MPI_Datatype acq_mpi_double(void);
MPI_Datatype acq_mpi_int64(void);
MPI_Datatype acq_mpi_uint8(void);
MPI_Datatype acq_mpi_int(void);
MPI_Op acq_mpi_sum(void);
MPI_Errhandler acq_mpi_errors_return(void);
MPI_Request acq_mpi_request_null(void);
void *acq_mpi_in_place(void);
MPI_Status *acq_mpi_status_ignore(void);

#endif
