import CBLAS
import Dispatch
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How many threads the kernels of this process use.
///
/// Kernels split their work (mostly the batch) over this many threads and call BLAS
/// single-threaded inside each piece: small per-image GEMMs parallelise far better across images
/// than inside one GEMM. Under MPI the launcher sets one thread per rank.
public enum Compute {
    nonisolated(unsafe) static var defaultThreads = 1
    /// A scoped override (tests, or work that must run single-threaded); task-local, so
    /// concurrent tasks do not see each other's.
    @TaskLocal static var threadOverride: Int?

    public static var threads: Int { threadOverride ?? defaultThreads }

    /// Runs `body` with `n` kernel threads in this task only.
    public static func withThreads<R>(_ n: Int, _ body: () throws -> R) rethrows -> R {
        precondition(n >= 1, "thread count must be at least 1, got \(n)")
        return try $threadOverride.withValue(n) { try body() }
    }

    /// Sets the kernel thread count; OpenBLAS itself is kept at one thread.
    public static func setThreads(_ n: Int) {
        precondition(n >= 1, "thread count must be at least 1, got \(n)")
        defaultThreads = n
        openblas_set_num_threads(1)
        #if canImport(Glibc)
        // Activations are a few MB each and freed every step; glibc would hand them back to the
        // kernel (mmap/munmap) and fault every page in again next step. Keep them in the heap.
        _ = glibcMallopt(-3 /* M_MMAP_THRESHOLD */, 512 << 20)
        _ = glibcMallopt(-1 /* M_TRIM_THRESHOLD */, 1 << 30)
        #endif
    }

    /// Which convolution kernels run: AVX-512 kernels of our own where the processor has the
    /// instruction set, OpenBLAS GEMM on im2col otherwise (or when asked).
    public static var convolutionKernels: ConvolutionKernels {
        get { kernelOverride ?? defaultKernels }
        set { defaultKernels = newValue }
    }
    nonisolated(unsafe) static var defaultKernels: ConvolutionKernels = .detect()
    @TaskLocal static var kernelOverride: ConvolutionKernels?

    /// Runs `body` with the given convolution kernels in this task only.
    public static func withConvolutionKernels<R>(_ kernels: ConvolutionKernels, _ body: () throws -> R) rethrows -> R {
        try $kernelOverride.withValue(kernels) { try body() }
    }

    /// Whether kernels must compute each sample's result on its own, so that it does not depend
    /// on which other samples share the call (one GEMM per image, one product per row): BLAS
    /// picks its blocking, and so its rounding, by matrix size. A data-parallel run whose
    /// result must not depend on the number of ranks (`SampleTree`) runs its steps so.
    public static var sampleIndependent: Bool { sampleIndependentOverride }
    @TaskLocal static var sampleIndependentOverride = false

    /// Runs `body` with sample-independent kernels in this task only.
    public static func withSampleIndependentKernels<R>(_ body: () throws -> R) rethrows -> R {
        try $sampleIndependentOverride.withValue(true) { try body() }
    }

    /// Runs `body(chunk)` for `chunks` pieces of work on the `threads` kernel threads, chunk i on
    /// thread i % threads (the caller is thread 0: see `WorkerPool`).
    public static func parallelFor(_ chunks: Int, _ body: (Int) -> Void) {
        let n = threads
        if chunks <= 1 || n == 1 {
            for i in 0..<chunks { body(i) }
        } else {
            WorkerPool.shared(threads: n).run(chunks, body)
        }
    }

    /// Runs `body(item)` for items 0..<count, `threads` items at a time, each on one thread with
    /// the caller's kernel settings (kernels, sample independence) and one kernel thread inside:
    /// for work cut into independent pieces that each run a whole computation (a network on a
    /// few images) rather than one kernel over the whole batch.
    public static func parallelItems(_ count: Int, _ body: (Int) -> Void) {
        let pieces = ranges(count)
        let (kernels, independent) = (convolutionKernels, sampleIndependent)
        parallelFor(pieces.count) { piece in
            // Task-local settings do not follow the work onto the pool's threads: set them again.
            $kernelOverride.withValue(kernels) {
                $sampleIndependentOverride.withValue(independent) {
                    $threadOverride.withValue(1) {
                        for item in pieces[piece] { body(item) }
                    }
                }
            }
        }
    }

    /// Splits `0..<n` into at most `threads` contiguous ranges of near-equal size.
    public static func ranges(_ n: Int, pieces: Int? = nil) -> [Range<Int>] {
        let p = Swift.max(1, Swift.min(n, pieces ?? threads))
        return (0..<p).map { i in (n * i / p)..<(n * (i + 1) / p) }
    }
}

#if canImport(Glibc)
// malloc.h is not part of Swift's Glibc module; mallopt's C signature is int(int, int).
@_silgen_name("mallopt")
func glibcMallopt(_ parameter: Int32, _ value: Int32) -> Int32
#endif

public enum ConvolutionKernels: String, CaseIterable, Sendable {
    case blas, avx512

    /// AVX-512 when the processor reports every feature the kernels are compiled for.
    public static func detect() -> ConvolutionKernels { processorHasAVX512 ? .avx512 : .blas }

    /// The kernels are built with `-target-cpu skylake-avx512`: F, CD, BW, DQ and VL.
    public static let processorHasAVX512: Bool = {
        #if os(Linux) && arch(x86_64)
        guard let info = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
              let flagsLine = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return false }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        return ["avx512f", "avx512cd", "avx512bw", "avx512dq", "avx512vl"].allSatisfy(flags.contains)
        #else
        return false
        #endif
    }()
}
