import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The kernel threads: the caller plus `threads - 1` workers of its own, kept for the process.
///
/// A job's piece i always runs on participant i % threads (the caller is participant 0), so the
/// pieces of consecutive kernels over the same split (`Compute.ranges` of the batch) run on the
/// same threads: each reads what its own core wrote, and each worker's scratch (Winograd's)
/// stays in its core's cache. libdispatch's `concurrentPerform` handed piece 1 to whichever of
/// its pool's threads came first (two or three alternating), so the scratch of each was cold
/// half the time. Workers spin briefly between jobs (a training step's kernels follow each other
/// within microseconds) and then sleep on a semaphore.
final class WorkerPool: @unchecked Sendable {
    let threads: Int
    private let workers: [Worker]
    /// Bumped for every job; a worker runs a job when it sees a generation it has not run.
    private let generation = Atomic<Int>(0)
    /// Pieces of the current job still running on workers.
    private let pending = Atomic<Int>(0)
    /// Whether a job is in flight: a call while one is (from a worker's piece, or another
    /// thread) runs its pieces itself.
    private let busy = Atomic<Bool>(false)
    // The current job, written before `generation` is bumped and read after it is seen.
    nonisolated(unsafe) private var body: ((Int) -> Void)?
    nonisolated(unsafe) private var pieces = 0

    private final class Worker: @unchecked Sendable {
        let index: Int
        let wake = DispatchSemaphore(value: 0)
        let sleeping = Atomic<Bool>(false)
        init(index: Int) { self.index = index }
    }

    init(threads: Int) {
        self.threads = threads
        workers = (1..<max(threads, 2)).map { Worker(index: $0) }
        for worker in workers {
            let thread = Thread { [unowned self] in self.run(worker) }
            thread.name = "acq-dist kernel \(worker.index)"
            thread.start()
        }
    }

    /// Runs body(0 ..< pieces), piece i on participant i % threads; returns when all are done.
    func run(_ pieces: Int, _ body: (Int) -> Void) {
        guard pieces > 1, threads > 1, busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else {
            for i in 0..<pieces { body(i) }
            return
        }
        defer { busy.store(false, ordering: .releasing) }
        withoutActuallyEscaping(body) { escaping in
            self.body = escaping
            self.pieces = pieces
            // Every worker answers every job (those without a piece at once), so none can still
            // be reading this job's fields when the next one is written.
            pending.store(workers.count, ordering: .relaxed)
            generation.add(1, ordering: .sequentiallyConsistent)
            for worker in workers where worker.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                worker.wake.signal()
            }
            var i = 0
            while i < pieces { escaping(i); i += threads }
            var spins = 0
            while pending.load(ordering: .acquiring) > 0 {
                spins += 1
                if spins > 64 { sched_yield() }
            }
            self.body = nil
        }
    }

    private func run(_ worker: Worker) {
        var seen = 0
        while true {
            // Spin a little for the next job, then yield the core for a while, then sleep until
            // woken.
            var spins = 0
            var now = generation.load(ordering: .acquiring)
            while now == seen {
                spins += 1
                if spins < 4_000 {
                    if spins > 2_000 { sched_yield() }
                } else {
                    worker.sleeping.store(true, ordering: .sequentiallyConsistent)
                    // A job published after the store above finds the flag and signals.
                    if generation.load(ordering: .sequentiallyConsistent) == seen { worker.wake.wait() }
                    else if !worker.sleeping.exchange(false, ordering: .sequentiallyConsistent) {
                        // The publisher cleared the flag and signalled: take that signal.
                        worker.wake.wait()
                    }
                    spins = 0
                }
                now = generation.load(ordering: .acquiring)
            }
            seen = now
            if let body = self.body {
                var i = worker.index
                while i < pieces { body(i); i += threads }
            }
            pending.subtract(1, ordering: .releasing)
        }
    }
}

extension WorkerPool {
    /// One pool per thread count, made on first use and kept.
    static func shared(threads: Int) -> WorkerPool {
        poolsLock.lock()
        defer { poolsLock.unlock() }
        if let pool = pools[threads] { return pool }
        let pool = WorkerPool(threads: threads)
        pools[threads] = pool
        return pool
    }

    private static let poolsLock = NSLock()
    nonisolated(unsafe) private static var pools: [Int: WorkerPool] = [:]
}
