#include "CMPIShims.h"

MPI_Comm acq_mpi_comm_world(void) { return MPI_COMM_WORLD; }
MPI_Datatype acq_mpi_float(void) { return MPI_FLOAT; }
MPI_Datatype acq_mpi_double(void) { return MPI_DOUBLE; }
MPI_Datatype acq_mpi_int64(void) { return MPI_INT64_T; }
MPI_Datatype acq_mpi_uint8(void) { return MPI_UINT8_T; }
MPI_Datatype acq_mpi_int(void) { return MPI_INT; }
MPI_Op acq_mpi_sum(void) { return MPI_SUM; }
MPI_Errhandler acq_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
MPI_Request acq_mpi_request_null(void) { return MPI_REQUEST_NULL; }
void *acq_mpi_in_place(void) { return MPI_IN_PLACE; }
MPI_Status *acq_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
