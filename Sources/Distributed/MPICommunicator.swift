import CMPI
import CMPIShims
import Foundation

/// The job's processes as OpenMPI's MPI_COMM_WORLD. The only code that talks to MPI.
///
/// Errors are set to return (MPI_ERRORS_RETURN) and become `MPIError`s naming the rank and the
/// call. Calls may come from any thread, one at a time (MPI_THREAD_SERIALIZED); the kernel
/// threads never communicate.
public final class MPICommunicator: Communicator {
    public let rank: Int
    public let size: Int
    private let comm: MPI_Comm
    private var finalized = false

    /// Whether this process was started by OpenMPI's `mpirun` (it then has the launcher's
    /// environment); a process started on its own runs single-process instead.
    public static var isLaunchedByMPI: Bool {
        ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"] != nil
    }

    /// Initialises MPI. Call once per process, before any other MPI use.
    public init() throws {
        // OpenMPI 4.1's non-blocking all-reduce (libnbc) picks binomial or recursive-doubling
        // trees by default, which on 1 MiB of gradients took 4-9x as long as the blocking
        // MPI_Allreduce; its ring algorithm matched it. Chosen unless the user set it (with
        // `--mca coll_libnbc_iallreduce_algorithm N` or the environment variable).
        setenv("OMPI_MCA_coll_libnbc_iallreduce_algorithm", "1", 0)
        var provided: Int32 = 0
        let required = Int32(MPI_THREAD_SERIALIZED)
        let initCode = MPI_Init_thread(nil, nil, required, &provided)
        guard initCode == MPI_SUCCESS else {
            // No rank from MPI yet: the one mpirun announced (0 for a process started alone).
            let announced = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_RANK"].flatMap { Int($0) } ?? 0
            throw MPIError(rank: announced, call: "MPI_Init_thread", code: initCode, text: Self.errorText(initCode))
        }
        comm = acq_mpi_comm_world()
        var r: Int32 = 0, s: Int32 = 0
        MPI_Comm_rank(comm, &r)
        MPI_Comm_size(comm, &s)
        rank = Int(r)
        size = Int(s)
        try check(MPI_Comm_set_errhandler(comm, acq_mpi_errors_return()), "MPI_Comm_set_errhandler")
        guard provided >= required else {
            throw MPIError(rank: rank, call: "MPI_Init_thread", code: 0,
                           text: "the MPI library offers thread level \(provided), acq-dist needs MPI_THREAD_SERIALIZED (\(required))")
        }
    }

    /// Ends MPI; every rank calls it once, after its last collective.
    public func finalize() throws {
        guard !finalized else { return }
        finalized = true
        try check(MPI_Finalize(), "MPI_Finalize")
    }

    public func allReduceSum<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws {
        try check(MPI_Allreduce(acq_mpi_in_place(), buffer.baseAddress, count(buffer.count, "MPI_Allreduce"),
                                Self.datatype(T.self), acq_mpi_sum(), comm), "MPI_Allreduce of \(buffer.count) values")
    }

    public func startAllReduceSum<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>) throws -> PendingOperation {
        var request: MPI_Request? = acq_mpi_request_null()
        try check(MPI_Iallreduce(acq_mpi_in_place(), buffer.baseAddress, count(buffer.count, "MPI_Iallreduce"),
                                 Self.datatype(T.self), acq_mpi_sum(), comm, &request),
                  "MPI_Iallreduce of \(buffer.count) values")
        return MPIPendingOperation(request: request, owner: self, call: "MPI_Iallreduce of \(buffer.count) values")
    }

    public func broadcast<T: CommunicatorScalar>(_ buffer: UnsafeMutableBufferPointer<T>, root: Int) throws {
        precondition(root >= 0 && root < size, "broadcast from rank \(root) of \(size)")
        try check(MPI_Bcast(buffer.baseAddress, count(buffer.count, "MPI_Bcast"), Self.datatype(T.self),
                            Int32(root), comm), "MPI_Bcast of \(buffer.count) values from rank \(root)")
    }

    public func allGather<T: CommunicatorScalar>(_ values: [T]) throws -> [[T]] {
        // Lengths first, so that each rank may contribute a different number of values.
        var lengths = [Int64](repeating: 0, count: size)
        var mine = Int64(values.count)
        try check(MPI_Allgather(&mine, 1, Self.datatype(Int64.self), &lengths, 1, Self.datatype(Int64.self), comm),
                  "MPI_Allgather of lengths")
        let total = lengths.reduce(0, +)
        var counts = try lengths.map { try count(Int($0), "MPI_Allgatherv") }
        var displacements = [Int32](repeating: 0, count: size)
        for i in 1..<max(size, 1) { displacements[i] = displacements[i - 1] + counts[i - 1] }
        var gathered = [T](repeating: 0, count: Int(total))
        let localCount = try count(values.count, "MPI_Allgatherv")
        try values.withUnsafeBufferPointer { local in
            try gathered.withUnsafeMutableBufferPointer { all in
                try check(MPI_Allgatherv(local.baseAddress, localCount, Self.datatype(T.self),
                                         all.baseAddress, &counts, &displacements, Self.datatype(T.self), comm),
                          "MPI_Allgatherv of \(total) values")
            }
        }
        return (0..<size).map { i in
            let start = Int(displacements[i])
            return Array(gathered[start..<(start + Int(counts[i]))])
        }
    }

    public func barrier() throws {
        try check(MPI_Barrier(comm), "MPI_Barrier")
    }

    public func abort(_ message: String) -> Never {
        FileHandle.standardError.write(Data("acq-dist: error: \(message)\n".utf8))
        MPI_Abort(comm, 1)
        // MPI_Abort does not return when it works; if it did, ending this process still makes
        // mpirun end the others.
        exit(1)
    }

    /// Turns a return code into an `MPIError` naming this rank and the call.
    func check(_ code: Int32, _ call: @autoclosure () -> String) throws {
        guard code != MPI_SUCCESS else { return }
        throw MPIError(rank: rank, call: call(), code: code, text: Self.errorText(code))
    }

    private func count(_ n: Int, _ call: String) throws -> Int32 {
        guard n <= Int(Int32.max) else {
            throw MPIError(rank: rank, call: call, code: 0, text: "\(n) elements exceed MPI's 32-bit count")
        }
        return Int32(n)
    }

    static func errorText(_ code: Int32) -> String {
        var buffer = [CChar](repeating: 0, count: Int(MPI_MAX_ERROR_STRING) + 1)
        var length: Int32 = 0
        guard MPI_Error_string(code, &buffer, &length) == MPI_SUCCESS else { return "unknown MPI error" }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static func datatype<T: CommunicatorScalar>(_: T.Type) -> MPI_Datatype {
        switch T.communicatorKind {
        case .float32: return acq_mpi_float()
        case .float64: return acq_mpi_double()
        case .int64: return acq_mpi_int64()
        case .uint8: return acq_mpi_uint8()
        }
    }
}

/// An MPI request of a non-blocking collective.
final class MPIPendingOperation: PendingOperation {
    private var request: MPI_Request?
    private var done = false
    private let owner: MPICommunicator
    private let call: String

    init(request: MPI_Request?, owner: MPICommunicator, call: String) {
        self.request = request
        self.owner = owner
        self.call = call
    }

    func test() throws -> Bool {
        guard !done else { return true }
        var flag: Int32 = 0
        try owner.check(MPI_Test(&request, &flag, acq_mpi_status_ignore()), "MPI_Test of \(call)")
        done = flag != 0
        return done
    }

    func wait() throws {
        guard !done else { return }
        try owner.check(MPI_Wait(&request, acq_mpi_status_ignore()), "MPI_Wait of \(call)")
        done = true
    }
}
