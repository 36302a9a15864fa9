import Testing
import TensorCore
import Foundation
#if canImport(Glibc)
import Glibc
#endif

// The kernel threads: every piece exactly once, piece i on the thread of piece i % threads,
// nested and concurrent calls complete (serialized: the concurrent test holds the workers most
// of the time, and the spread test needs them free).
@Suite(.serialized) struct WorkerPoolTests {
    @Test(arguments: [2, 3])
    func everyPieceOnceOnAFixedThread(_ threads: Int) {
        for pieces in [2, 3, 37] {
            var runs = [Int](repeating: 0, count: pieces)
            var owner = [UInt](repeating: 0, count: pieces)
            runs.withUnsafeMutableBufferPointer { r in
                owner.withUnsafeMutableBufferPointer { o in
                    let (r, o) = (r, o)
                    Compute.withThreads(threads) {
                        Compute.parallelFor(pieces) { i in
                            r[i] += 1
                            o[i] = UInt(pthread_self())
                        }
                    }
                }
            }
            #expect(runs == [Int](repeating: 1, count: pieces), "\(threads) threads, \(pieces) pieces")
            for i in 0..<pieces {
                #expect(owner[i] == owner[i % threads], "piece \(i) ran on another thread than piece \(i % threads)")
            }
            // (How many threads ran depends on whether another test held the workers: a call
            // while they are busy runs its pieces itself.)
            #expect(Set(owner).count <= min(threads, pieces))
            #expect(owner[0] == UInt(pthread_self()), "piece 0 runs on the caller")
        }
    }

    @Test(arguments: [2, 3])
    func piecesSpreadOverTheThreads(_ threads: Int) {
        // Another test may hold the workers (then a call runs alone): try until one call got them.
        var used = 0
        for _ in 0..<200 where used < threads {
            var owner = [UInt](repeating: 0, count: 8)
            owner.withUnsafeMutableBufferPointer { o in
                let o = o
                Compute.withThreads(threads) { Compute.parallelFor(8) { i in o[i] = UInt(pthread_self()) } }
            }
            used = Set(owner).count
        }
        #expect(used == threads)
    }

    @Test func nestedAndConcurrentCallsComplete() async {
        // Kernels called from inside a piece (they run their pieces themselves) and from several
        // tasks at once (one of them gets the workers, the others run alone).
        let totals = await withTaskGroup(of: Int.self) { group in
            for t in 0..<4 {
                group.addTask {
                    var sums = [Int](repeating: 0, count: 6)
                    sums.withUnsafeMutableBufferPointer { s in
                        let s = s
                        Compute.withThreads(2) {
                            for _ in 0..<200 {
                                Compute.parallelFor(6) { i in
                                    var inner = [Int](repeating: 0, count: 4)
                                    inner.withUnsafeMutableBufferPointer { b in
                                        let b = b
                                        Compute.parallelFor(4) { j in b[j] = j + t }
                                    }
                                    s[i] += inner.reduce(0, +)
                                }
                            }
                        }
                    }
                    return sums.reduce(0, +)
                }
            }
            var all: [Int] = []
            for await total in group { all.append(total) }
            return all.sorted()
        }
        #expect(totals == (0..<4).map { t in 200 * 6 * (6 + 4 * t) })
    }
}
